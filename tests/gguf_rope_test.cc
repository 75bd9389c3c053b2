// The GGUF front-end against the config front-end: for each architecture of the table, a GGUF
// written from the model's config.json as llama.cpp's converter writes it (tests/
// gguf_test_convert.h) gives the same plan as the config: inverse frequencies within one float32
// ulp, attention factor within 1e-6, and the pair layout and rotary width llama.cpp uses.
#include <gtest/gtest.h>

#include <cmath>
#include <variant>

#include "gguf_test_convert.h"
#include "ropekit/error.h"
#include "ropekit/frequencies.h"
#include "ropekit/gguf.h"
#include "test_util.h"

namespace ropekit {
namespace {

using test::GgufWriter;

ModelRope hf(const std::string& name) {
  return load_hf_config(test::data_path("models/" + name + ".json"));
}
ModelRope gguf(const GgufWriter& w) { return gguf_model_rope(parse_gguf_rope_metadata(w.bytes())); }

int ulps(float a, float b) {
  int n = 0;
  while (a != b && n < 10) a = std::nextafter(a, b), ++n;
  return n;
}

// The plan of every layer type of `g` matches the same layer type of `h` (at the extended
// context, where LongRoPE uses its long factors in both).
void expect_same_plan(const ModelRope& h, const ModelRope& g, PairLayout gguf_layout) {
  ASSERT_EQ(h.layers.size(), g.layers.size());
  for (const RopeConfig& gl : g.layers) {
    const RopeConfig& hl = h.layers.size() == 1 ? h.layers.front() : h.layer(gl.layer_type);
    SCOPED_TRACE(gl.layer_type);
    const auto seq = hl.max_position_embeddings;
    const FrequencyPlan hp = build_frequency_plan(hl, seq);
    const FrequencyPlan gp = build_frequency_plan(gl, seq);
    EXPECT_EQ(gp.rotary_dim, hp.rotary_dim);
    EXPECT_EQ(gp.head_dim, hp.head_dim);
    EXPECT_EQ(gp.layout, gguf_layout);
    ASSERT_EQ(gp.inv_freq.size(), hp.inv_freq.size());
    for (std::size_t i = 0; i < hp.inv_freq.size(); ++i)
      EXPECT_LE(ulps(gp.inv_freq[i], hp.inv_freq[i]), 1) << "pair " << i;
    EXPECT_NEAR(gp.attention_factor, hp.attention_factor, 1e-6);
    EXPECT_NEAR(gp.info.softmax_scale_multiplier, hp.info.softmax_scale_multiplier, 1e-6);
    EXPECT_EQ(gp.pair_axis, hp.pair_axis);
  }
}

struct Case {
  const char* model;
  const char* arch;
  PairLayout layout;
};

class GgufArchitectures : public ::testing::TestWithParam<Case> {};

TEST_P(GgufArchitectures, SamePlanAsTheConfig) {
  const Case& c = GetParam();
  const ModelRope h = hf(c.model);
  const ModelRope g = gguf(test::convert_rope(h, c.arch));
  EXPECT_EQ(g.model_type, c.arch);
  expect_same_plan(h, g, c.layout);
}

INSTANTIATE_TEST_SUITE_P(
    Models, GgufArchitectures,
    ::testing::Values(Case{"llama-3.1-8b-instruct", "llama", PairLayout::kInterleaved},
                      Case{"llama-3.2-3b-instruct", "llama", PairLayout::kInterleaved},
                      Case{"mistral-7b-instruct-v0.3", "llama", PairLayout::kInterleaved},
                      Case{"llama-2-7b-longlora-32k-ft-linear", "llama", PairLayout::kInterleaved},
                      Case{"qwen2.5-7b-instruct-yarn", "qwen2", PairLayout::kHalf},
                      Case{"qwen2.5-3b", "qwen2", PairLayout::kHalf},
                      Case{"qwen3-8b", "qwen3", PairLayout::kHalf},
                      Case{"qwen2-vl-7b-instruct", "qwen2vl", PairLayout::kHalf},
                      Case{"qwen3-vl-8b-instruct", "qwen3vl", PairLayout::kHalf},
                      Case{"gemma-3-4b-text", "gemma3", PairLayout::kHalf},
                      Case{"gemma-3-1b-it", "gemma3", PairLayout::kHalf},
                      Case{"phi-3.5-mini-instruct", "phi3", PairLayout::kHalf},
                      Case{"phi-4-mini-instruct", "phi3", PairLayout::kHalf},
                      Case{"deepseek-v3", "deepseek2", PairLayout::kInterleaved},
                      Case{"deepseek-v2-lite", "deepseek2", PairLayout::kInterleaved},
                      Case{"phi-2", "phi2", PairLayout::kHalf}),
    [](const auto& p) {
      std::string n = p.param.model;
      for (char& ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

TEST(GgufRope, LayoutsAreLlamaCppsAndTheTableSaysWhichArePermuted) {
  EXPECT_TRUE(find_gguf_architecture("llama")->permuted_from_half);
  EXPECT_FALSE(find_gguf_architecture("deepseek2")->permuted_from_half);
  EXPECT_EQ(find_gguf_architecture("qwen2vl")->mrope, MRopeAssignment::kSections);
  EXPECT_EQ(find_gguf_architecture("qwen3vl")->mrope, MRopeAssignment::kInterleavedThw);
  EXPECT_EQ(find_gguf_architecture("nonesuch"), nullptr);
  for (const auto& a : gguf_architectures()) EXPECT_FALSE(a.model_type.empty()) << a.name;
}

TEST(GgufRope, Llama31IsTheRopeFreqsTensor) {
  const ModelRope g = gguf(test::convert_rope(hf("llama-3.1-8b-instruct"), "llama"));
  const auto* s = std::get_if<GgmlScaling>(&g.layers.at(0).scaling);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->freq_factors.size(), 64u);
  EXPECT_EQ(s->freq_factors.front(), 1.0);
  EXPECT_EQ(s->freq_factors.back(), 8.0);
}

TEST(GgufRope, GemmaSlidingLayersAndPattern) {
  const ModelRope g = gguf(test::convert_rope(hf("gemma-3-4b-text"), "gemma3"));
  ASSERT_EQ(g.layers.size(), 2u);
  EXPECT_EQ(g.layer("sliding_attention").rope_theta, 10000.0);
  EXPECT_TRUE(std::holds_alternative<DefaultScaling>(g.layer("sliding_attention").scaling));
  ASSERT_EQ(g.layer_types.size(), 12u);
  EXPECT_EQ(g.layer_types[5], "full_attention");
  EXPECT_EQ(g.layer_types[4], "sliding_attention");
}

TEST(GgufRope, GptOssIsYarnWithLlamaCppsTruncatedRamp) {
  // transformers' gpt-oss keeps the fractional correction range (truncate false); ggml always
  // floors and ceils it, so llama.cpp rotates the ramp pairs differently. Everything else
  // agrees, and the plan equals the config's with truncate = true.
  const ModelRope h = hf("gpt-oss-20b");
  const ModelRope g = gguf(test::convert_rope(h, "gpt-oss"));
  ASSERT_EQ(g.layers.size(), 1u);
  RopeConfig truncated = h.layers.front();
  std::get<YarnScaling>(truncated.scaling).truncate = true;
  ModelRope ht = h;
  ht.layers = {truncated};
  expect_same_plan(ht, g, PairLayout::kHalf);
  const auto a = build_frequency_plan(h.layers.front()).inv_freq;
  const auto b = build_frequency_plan(g.layers.front()).inv_freq;
  EXPECT_NE(a, b);
}

ModelRope parse(const std::string& json) { return parse_hf_config(json); }

TEST(GgufRope, HunyuanAlphaScalesTheBase) {
  // tencent/Hunyuan-7B-Instruct's config.json (RoPE fields as published): rope_theta 10000,
  // rope_scaling {"type": "dynamic", "alpha": 1000, "factor": 1}, hidden 4096, 32 heads,
  // head_dim 128. transformers' HunYuan model uses base = rope_theta · alpha^(d/(d−2)), a
  // static base; llama.cpp's hunyuan-dense loader applies the same to rope.freq_base.
  GgufWriter w;
  w.str("general.architecture", "hunyuan-dense")
      .u32("hunyuan-dense.context_length", 262144)
      .u32("hunyuan-dense.embedding_length", 4096)
      .u32("hunyuan-dense.attention.head_count", 32)
      .u32("hunyuan-dense.attention.key_length", 128)
      .f32("hunyuan-dense.rope.freq_base", 10000.0f)
      .f32("hunyuan-dense.rope.scaling.alpha", 1000.0f);
  const ModelRope g = gguf(w);
  // llama.cpp computes it in float32 (powf): within float32 rounding of the double value, and
  // the config with that float32 base gives the same plan.
  const double exact_base = 10000.0 * std::pow(1000.0, 128.0 / 126.0);
  const double base = static_cast<double>(10000.0f * std::pow(1000.0f, 128.0f / 126.0f));
  EXPECT_NEAR(base / exact_base, 1.0, 1e-6);
  const ModelRope h = parse(R"({"model_type":"llama","hidden_size":4096,"num_attention_heads":32,
    "head_dim":128,"max_position_embeddings":262144,"rope_theta":)" +
                            std::to_string(base) + "}");
  EXPECT_EQ(g.layers.at(0).rope_theta, base);
  expect_same_plan(h, g, PairLayout::kHalf);
}

// llama.cpp's hunyuan-vl loader (load_arch_hparams, reused by hunyuan-dense):
//   rope_freq_base_train *= powf(alpha, (float)dim / (float)(dim − 2)),  dim = n_embd_head_k
// in float32, with the head width even when rope.dimension_count says otherwise; and it is
// the same base as the config's DynamicNtkScaling{alpha} (theta · alpha^(h/(h−2)), h the head).
TEST(GgufRope, HunyuanAlphaUsesTheHeadWidthInFloat32AsLlamaCpp) {
  GgufWriter w;
  w.str("general.architecture", "hunyuan-dense")
      .u32("hunyuan-dense.context_length", 32768)
      .u32("hunyuan-dense.embedding_length", 2048)
      .u32("hunyuan-dense.attention.head_count", 16)
      .u32("hunyuan-dense.attention.key_length", 128)
      .u32("hunyuan-dense.rope.dimension_count", 64)
      .f32("hunyuan-dense.rope.freq_base", 10000.0f)
      .f32("hunyuan-dense.rope.scaling.alpha", 50.0f);
  const ModelRope g = gguf(w);
  const float want = 10000.0f * std::pow(50.0f, 128.0f / 126.0f);
  EXPECT_EQ(g.layers.at(0).rope_theta, static_cast<double>(want));
  // The config form gives the same base (up to float32 rounding).
  RopeConfig c = g.layers.at(0);
  c.rope_theta = 10000.0;
  c.scaling = DynamicNtkScaling{1.0, 50.0};
  EXPECT_NEAR(build_frequency_plan(c).info.effective_theta / want, 1.0, 1e-6);
  // Not for other architectures (the key is read generically but only HunYuan applies it).
  GgufWriter q;
  q.str("general.architecture", "qwen2")
      .u32("qwen2.context_length", 32768)
      .u32("qwen2.embedding_length", 2048)
      .u32("qwen2.attention.head_count", 16)
      .f32("qwen2.rope.freq_base", 10000.0f)
      .f32("qwen2.rope.scaling.alpha", 50.0f);
  EXPECT_EQ(gguf(q).layers.at(0).rope_theta, 10000.0);
}

GgufWriter yarn_file(const std::string& arch) {
  GgufWriter w;
  w.str("general.architecture", arch)
      .u32(arch + ".context_length", 131072)
      .u32(arch + ".embedding_length", 1024)
      .u32(arch + ".attention.head_count", 8)
      .u32(arch + ".attention.key_length", 128)
      .f32(arch + ".rope.freq_base", 1000000.0f)
      .str(arch + ".rope.scaling.type", "yarn")
      .f32(arch + ".rope.scaling.factor", 4.0f)
      .u32(arch + ".rope.scaling.original_context_length", 32768);
  return w;
}

double magnitude_of(const ModelRope& m) {
  return build_frequency_plan(m.layers.at(0)).attention_factor;
}

bool warns_about(const ModelRope& m, const std::string& key) {
  for (const auto& w : m.warnings)
    if (w.path == key) return true;
  return false;
}

// rope.scaling.yarn_log_multiplier is read only by some architectures' loaders in llama.cpp
// (deepseek2 and the MLA models built like it, which divide it by 0.1; mistral3, which takes it
// as it is); llama.cpp's generic load_hparams does not read it, so for qwen2 it changes nothing.
TEST(GgufRope, YarnLogMultiplierOnlyWhereLlamaCppReadsIt) {
  const double plain = 0.1 * std::log(4.0) + 1;
  GgufWriter q = yarn_file("qwen2");
  q.f32("qwen2.rope.scaling.yarn_log_multiplier", 0.707f);
  const ModelRope mq = gguf(q);
  EXPECT_NEAR(magnitude_of(mq), plain, 1e-9);
  EXPECT_TRUE(warns_about(mq, "qwen2.rope.scaling.yarn_log_multiplier"));
  // mistral3: mscale 1, mscale_all_dim = the key: get_mscale(4, 1) / get_mscale(4, 0.707).
  GgufWriter m = yarn_file("mistral3");
  m.f32("mistral3.rope.scaling.yarn_log_multiplier", 0.707f);
  const ModelRope mm = gguf(m);
  EXPECT_NEAR(magnitude_of(mm), plain / (0.1 * static_cast<double>(0.707f) * std::log(4.0) + 1),
              1e-9);
  EXPECT_FALSE(warns_about(mm, "mistral3.rope.scaling.yarn_log_multiplier"));
  // deepseek2: the key is 0.1 · mscale_all_dim; mscale = mscale_all_dim, ratio 1.
  GgufWriter d = yarn_file("deepseek2");
  d.u32("deepseek2.rope.dimension_count", 64)
      .f32("deepseek2.rope.scaling.yarn_log_multiplier", 0.0707f);
  EXPECT_NEAR(magnitude_of(gguf(d)), 1.0, 1e-9);
}

// rope.scaling.yarn_attn_factor: llama.cpp's context set-up starts from it (when the
// architecture's loader reads it: grok) and, with YaRN, replaces it by the automatic magnitude;
// rope.scaling.attn_factor multiplies in both cases.
TEST(GgufRope, YarnAttnFactorIsReplacedUnderYarnAsInLlamaCpp) {
  const double plain = 0.1 * std::log(4.0) + 1;
  GgufWriter q = yarn_file("qwen2");
  q.f32("qwen2.rope.scaling.yarn_attn_factor", 0.5f);
  const ModelRope mq = gguf(q);
  EXPECT_NEAR(magnitude_of(mq), plain, 1e-9);
  EXPECT_TRUE(warns_about(mq, "qwen2.rope.scaling.yarn_attn_factor"));
  GgufWriter gy = yarn_file("grok");
  gy.f32("grok.rope.scaling.yarn_attn_factor", 0.5f).f32("grok.rope.scaling.attn_factor", 2.0f);
  EXPECT_NEAR(magnitude_of(gguf(gy)), plain * 2.0, 1e-9);
  // No YaRN: grok's yarn_attn_factor is the magnitude, times attn_factor.
  GgufWriter gn;
  gn.str("general.architecture", "grok")
      .u32("grok.context_length", 8192)
      .u32("grok.embedding_length", 1024)
      .u32("grok.attention.head_count", 8)
      .f32("grok.rope.scaling.yarn_attn_factor", 0.5f)
      .f32("grok.rope.scaling.attn_factor", 3.0f);
  const ModelRope mg = gguf(gn);
  EXPECT_NEAR(magnitude_of(mg), 1.5, 1e-9);
  EXPECT_FALSE(warns_about(mg, "grok.rope.scaling.yarn_attn_factor"));
}

TEST(GgufRope, GptNeoxAndFalconPartialAndFullRotary) {
  // EleutherAI/pythia-1.4b: rotary_pct 0.25 of head 128, base 10000 → rope.dimension_count 32.
  const ModelRope pythia = parse(R"({"model_type":"gpt_neox","hidden_size":2048,
    "num_attention_heads":16,"rotary_pct":0.25,"rotary_emb_base":10000,"max_position_embeddings":2048})");
  expect_same_plan(pythia, gguf(test::convert_rope(pythia, "gptneox", 16)), PairLayout::kHalf);
  // tiiuae/falcon-7b: hidden 4544, 71 heads (head 64), full rotary, base 10000.
  const ModelRope falcon = parse(R"({"model_type":"falcon","hidden_size":4544,
    "num_attention_heads":71,"max_position_embeddings":2048})");
  expect_same_plan(falcon, gguf(test::convert_rope(falcon, "falcon", 71)), PairLayout::kHalf);
}

TEST(GgufRope, DefaultsFollowLlamaCpp) {
  // No rope keys: freq_base 10000, the whole head, linear type with no factor = plain RoPE.
  GgufWriter w;
  w.str("general.architecture", "qwen2")
      .u32("qwen2.context_length", 32768)
      .u32("qwen2.embedding_length", 1024)
      .u32("qwen2.attention.head_count", 16);
  const ModelRope g = gguf(w);
  EXPECT_EQ(g.layers.at(0).rope_theta, 10000.0);
  EXPECT_EQ(g.layers.at(0).rotary_dim, 64);
  EXPECT_TRUE(std::holds_alternative<DefaultScaling>(g.layers.at(0).scaling));
}

TEST(GgufRope, GgmlScalingFormulaAndItsJsonForm) {
  // inv_i = base_i / factor · (1 − r_i) + base_i · r_i with base_i = θ^(−2i/d) / ff_i; here no
  // YaRN mix (r = 0): base / ff / factor.
  const ModelRope m = parse(R"({"model_type":"llama","hidden_size":64,"num_attention_heads":8,
    "max_position_embeddings":4096,"rope_theta":10000,"rope_scaling":{"rope_type":"ggml",
    "factor":2,"freq_factors":[1,2,4,8],"attention_factor":0.5}})");
  const FrequencyPlan p = build_frequency_plan(m.layers.at(0));
  for (int i = 0; i < 4; ++i)
    EXPECT_FLOAT_EQ(p.inv_freq[static_cast<std::size_t>(i)],
                    static_cast<float>(std::pow(10000.0, -2.0 * i / 8) / (1 << i) / 2));
  EXPECT_EQ(p.attention_factor, 0.5);
  EXPECT_EQ(p.info.rope_type, "ggml");
  EXPECT_THROW(parse(R"({"model_type":"llama","hidden_size":64,"num_attention_heads":8,
    "rope_scaling":{"rope_type":"ggml","ext_factor":1}})"),
               ConfigError);  // a YaRN mix needs the original context
}

std::string gguf_error(const GgufWriter& w) {
  try {
    gguf(w);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(GgufRope, ErrorsNameTheKey) {
  GgufWriter base;
  base.str("general.architecture", "llama")
      .u32("llama.embedding_length", 512)
      .u32("llama.attention.head_count", 8);
  EXPECT_NE(gguf_error(base).find("llama.context_length: missing"), std::string::npos);
  GgufWriter t = base;
  t.u32("llama.context_length", 4096).str("llama.rope.scaling.type", "dynamic");
  EXPECT_NE(gguf_error(t).find("llama.rope.scaling.type: expected none, linear, yarn or longrope"),
            std::string::npos);
  GgufWriter d = base;
  d.u32("llama.context_length", 4096).u32("llama.rope.dimension_count", 100);
  EXPECT_NE(gguf_error(d).find("llama.rope.dimension_count"), std::string::npos);
  GgufWriter f = base;
  f.u32("llama.context_length", 4096).tensor("rope_freqs.weight", {1.0f, 2.0f});
  EXPECT_NE(gguf_error(f).find("rope_freqs.weight: expected 32 factors"), std::string::npos);
  GgufWriter s;
  s.str("general.architecture", "qwen2vl")
      .u32("qwen2vl.context_length", 4096)
      .u32("qwen2vl.embedding_length", 512)
      .u32("qwen2vl.attention.head_count", 8);
  EXPECT_NE(gguf_error(s).find("qwen2vl.rope.dimension_sections"), std::string::npos);
}

}  // namespace
}  // namespace ropekit
