// ropekit/hf_config.h — read a Hugging Face config.json into typed RoPE configs.
//
// Accepts what released models ship and what transformers reads:
//   * legacy `rope_scaling` (type in "rope_type" or "type"; transformers' precedence: rope_type)
//     with `rope_theta` at top level, and the newer `rope_parameters` (flat, or one dict per
//     layer type, e.g. {"full_attention": {...}, "sliding_attention": {...}});
//   * head_dim from `head_dim`, else hidden_size / num_attention_heads;
//   * family conventions (see docs/variants.md, "Model families"): GPT-NeoX rotary_pct /
//     rotary_emb_base, Phi partial_rotary_factor (default 0.5), Phi-3 "su" and top-level
//     original_max_position_embeddings, Gemma 3 rope_local_base_freq (sliding layers, no
//     scaling), DeepSeek-V2/V3 qk_rope_head_dim and rope_interleave (default true), Llama 4
//     interleaved pairs, gpt-oss YaRN truncate, GLM partial rotary, and the multimodal
//     mrope_section of Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Qwen3.5, GLM-4.1V and ERNIE-4.5-VL;
//   * a `text_config` sub-object (multimodal checkpoints) is read when present.
//
// Anything that cannot give a correct rotation throws ConfigError naming the JSON path,
// the expectation and the value. What transformers only warns about and is still
// computable is returned in `warnings` (or thrown, with ParseOptions::strict).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ropekit/config.h"

namespace ropekit {

struct ConfigWarning {
  std::string path;     // JSON path of the key concerned
  std::string message;  // what transformers would say, and what ropekit does
};

struct ModelRope {
  std::string model_type;
  std::vector<RopeConfig> layers;  // one per layer type; "default" when there is only one
  std::vector<ConfigWarning> warnings;
  // Per decoder layer (index = layer number), when the config says: the layer type of each
  // layer (`layer_types`, or Gemma 3's sliding_window_pattern: every pattern-th layer is
  // full_attention), and whether it applies RoPE at all (`no_rope_layers`: 1 = RoPE, 0 = NoPE,
  // as Llama 4 and SmolLM3 ship it; for those families a missing or empty list is generated as
  // transformers does: every no_rope_layer_interval-th layer, default 4, is NoPE). Empty when the
  // config does not describe its layers.
  std::vector<std::string> layer_types;
  std::vector<bool> layer_uses_rope;
  // A per-position query scale (ropekit/config.h, QueryPositionScale) and the decoder layers
  // that apply it: Llama 4's attention-temperature tuning on its NoPE layers (config keys
  // `attn_temperature_tuning`, default on as in transformers' Llama4TextConfig, `floor_scale`
  // default 8192, `attn_scale` default 0.1), or Ministral 3's `llama_4_scaling_beta` on every
  // layer after RoPE. Empty when the model has none or turns it off.
  std::optional<QueryPositionScale> query_scale;
  std::vector<bool> layer_scales_queries;  // per decoder layer, when query_scale is set

  // The config of a layer type; throws ArgumentError listing the available names.
  const RopeConfig& layer(std::string_view name) const;
};

struct ParseOptions {
  bool strict = false;  // warnings become ConfigError
  // Inputs larger than this are refused before parsing (a config.json is a few KiB).
  std::size_t max_bytes = 16u << 20;
  int max_depth = 64;  // JSON nesting deeper than this is refused
};

// Parses config.json text. Throws ConfigError.
ModelRope parse_hf_config(std::string_view json_text, const ParseOptions& options = {});
// Reads and parses a file. Throws IoError (unreadable) or ConfigError.
ModelRope load_hf_config(const std::filesystem::path& path, const ParseOptions& options = {});

// The rope types ropekit understands (canonical names and aliases), for messages and docs.
const std::vector<std::string>& supported_rope_types();

}  // namespace ropekit
