// The per-architecture RoPE conventions that a GGUF file does not carry, from llama.cpp's
// `llama_model_rope_type` (pair layout) and `load_hparams` (sliding-window layers, alpha,
// M-RoPE sections, DeepSeek's YaRN magnitude). One row per `general.architecture`; docs/gguf.md
// has the table in words.
#include <algorithm>

#include "ropekit/gguf.h"

namespace ropekit {
namespace {

constexpr PairLayout kNormal = PairLayout::kInterleaved;  // ggml NORMAL: pairs (2i, 2i+1)
constexpr PairLayout kNeox = PairLayout::kHalf;           // ggml NEOX: pairs (i, i + d/2)

GgufArchitecture row(const char* name, const char* model_type, PairLayout layout) {
  GgufArchitecture a;
  a.name = name;
  a.model_type = model_type;
  a.layout = layout;
  return a;
}

std::vector<GgufArchitecture> make_table() {
  std::vector<GgufArchitecture> t;
  // Llama and the models converted as "llama" (Mistral 7B, Llama 2/3/3.1/3.2): the converter
  // permutes q/k from the half-split order, llama.cpp rotates interleaved pairs.
  for (const char* n : {"llama", "mistral3", "granite"}) {
    GgufArchitecture a = row(n, n == std::string("llama") ? "llama" : n, kNormal);
    a.permuted_from_half = true;
    // Mistral 3's loader reads yarn_log_multiplier as mscale_all_dim (no 0.1 factor).
    a.reads_yarn_log_multiplier = n == std::string("mistral3");
    t.push_back(a);
  }
  {
    // Grok: NEOX; its loader reads the yarn_* keys, yarn_attn_factor included.
    GgufArchitecture a = row("grok", "grok-1", kNeox);
    a.reads_yarn_attn_factor = true;
    t.push_back(a);
  }
  for (const char* n : {"qwen2", "qwen2moe", "qwen3", "qwen3moe", "phi2", "phi3", "phimoe",
                        "falcon", "gptneox", "stablelm", "starcoder2", "olmo2", "exaone"})
    t.push_back(row(n, n, kNeox));
  {
    GgufArchitecture a = row("qwen2vl", "qwen2_vl", kNeox);
    a.mrope = MRopeAssignment::kSections;  // ggml MROPE
    t.push_back(a);
  }
  for (const char* n : {"qwen3vl", "qwen3vlmoe"}) {
    GgufArchitecture a = row(n, "qwen3_vl", kNeox);
    a.mrope = MRopeAssignment::kInterleavedThw;  // ggml IMROPE
    t.push_back(a);
  }
  {
    // Gemma 3: sliding-window layers use rope.freq_base_swa (10000) and no scaling; every 6th
    // layer is global.
    GgufArchitecture a = row("gemma3", "gemma3_text", kNeox);
    a.swa_rope = 2;
    a.swa_default_base = 10000.0;
    a.swa_default_period = 6;
    t.push_back(a);
  }
  {
    GgufArchitecture a = row("gemma2", "gemma2", kNeox);
    a.swa_rope = 1;
    a.swa_default_period = 2;
    t.push_back(a);
  }
  {
    // DeepSeek-V2/V3 (MLA): RoPE on the 64-feature q_pe/k_pe, interleaved as in the Hugging
    // Face checkpoint (no permutation); yarn_log_multiplier carries 0.1 · mscale_all_dim.
    GgufArchitecture a = row("deepseek2", "deepseek_v3", kNormal);
    a.deepseek_yarn = true;
    a.reads_yarn_log_multiplier = true;
    a.head_is_rotary = true;
    t.push_back(a);
  }
  {
    GgufArchitecture a = row("gpt-oss", "gpt_oss", kNeox);  // SWA layers keep the YaRN scaling
    a.swa_rope = 1;
    a.swa_default_period = 2;
    t.push_back(a);
  }
  for (const char* n : {"hunyuan-dense", "hunyuan-vl"}) {
    GgufArchitecture a = row(n, "hunyuan_v1_dense", kNeox);
    a.alpha = true;
    t.push_back(a);
  }
  return t;
}

}  // namespace

const std::vector<GgufArchitecture>& gguf_architectures() {
  static const std::vector<GgufArchitecture> table = make_table();
  return table;
}

const GgufArchitecture* find_gguf_architecture(std::string_view name) {
  const auto& t = gguf_architectures();
  const auto it = std::find_if(t.begin(), t.end(), [&](const auto& a) { return a.name == name; });
  return it == t.end() ? nullptr : &*it;
}

}  // namespace ropekit
