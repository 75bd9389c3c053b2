// Models whose decoder layers use different RoPEs or roles, each against a re-implementation of
// its reference written here: DeepSeek-V4's per-layer plans (transformers DeepseekV4Config and
// DeepseekV4RotaryEmbedding: "main" = default RoPE with rope_theta on the sliding-window layers,
// "compress" = YaRN with compress_rope_theta and attention factor 1 on the compressed ones) and
// GLM-5's DeepSeek-V3.2-style indexer with its `indexer_rope_interleave` layout.
#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ropekit/apply.h"
#include "ropekit/error.h"
#include "ropekit/frequencies.h"
#include "ropekit/hf_config.h"
#include "test_util.h"

namespace ropekit {
namespace {

// transformers' default inverse frequencies in double: theta^(-2i/d).
std::vector<double> default_inv(double theta, int d) {
  std::vector<double> v;
  for (int i = 0; i < d / 2; ++i) v.push_back(std::pow(theta, -2.0 * i / d));
  return v;
}

// transformers' _compute_yarn_parameters (truncate = true), in double.
std::vector<double> yarn_inv(double theta, int d, double factor, double orig, double beta_fast,
                             double beta_slow) {
  auto corr = [&](double rot) {
    return d * std::log(orig / (rot * 2 * std::numbers::pi)) / (2 * std::log(theta));
  };
  double low = std::max(std::floor(corr(beta_fast)), 0.0);
  double high = std::min(std::ceil(corr(beta_slow)), static_cast<double>(d - 1));
  if (low == high) high += 0.001;
  std::vector<double> v;
  for (int i = 0; i < d / 2; ++i) {
    const double pos = std::pow(theta, 2.0 * i / d);
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    const double extrap = 1.0 - ramp;
    v.push_back(1.0 / (factor * pos) * (1.0 - extrap) + 1.0 / pos * extrap);
  }
  return v;
}

void expect_within_one_ulp(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const float w = static_cast<float>(want[i]);
    const double ulp = std::nextafter(w, 2.0f * w + 1.0f) - static_cast<double>(w);
    EXPECT_LE(std::abs(got[i] - want[i]), ulp) << i;
  }
}

// Interleaved (complex-form) rotation of the first `rot` features in float64; the rest pass.
std::vector<double> rotate_interleaved(const std::vector<float>& x, int tokens, int heads, int hd,
                                       int rot, const std::vector<float>& inv,
                                       const std::vector<std::int64_t>& pos, bool half = false) {
  std::vector<double> y(x.begin(), x.end());
  for (int t = 0; t < tokens; ++t)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < rot / 2; ++i) {
        const std::size_t base = (static_cast<std::size_t>(t) * heads + h) * hd;
        const std::size_t a = base + (half ? i : 2 * i),
                          b = base + (half ? i + rot / 2 : 2 * i + 1);
        const double ang = static_cast<double>(pos[static_cast<std::size_t>(t)]) * inv[i];
        y[a] = x[a] * std::cos(ang) - x[b] * std::sin(ang);
        y[b] = x[b] * std::cos(ang) + x[a] * std::sin(ang);
      }
  return y;
}

// ---- DeepSeek-V4 ------------------------------------------------------------------------------

TEST(DeepSeekV4, FlashHasMainAndCompressPlansPerLayer) {
  const ModelRope m = load_hf_config(test::data_path("models/deepseek-v4-flash.json"));
  ASSERT_EQ(m.layers.size(), 2u);
  const RopeConfig& main = m.layer("main");
  const RopeConfig& comp = m.layer("compress");
  for (const RopeConfig* c : {&main, &comp}) {
    EXPECT_EQ(c->head_dim, 64);  // qk_rope_head_dim: the RoPE slice of each 512-wide head
    EXPECT_EQ(c->rotary_dim, 64);
    EXPECT_EQ(c->layout, PairLayout::kInterleaved);
  }
  EXPECT_EQ(main.rope_theta, 10000.0);
  EXPECT_EQ(scaling_type_name(main.scaling), "default");
  EXPECT_EQ(comp.rope_theta, 160000.0);
  EXPECT_EQ(scaling_type_name(comp.scaling), "yarn");
  const FrequencyPlan pm = build_frequency_plan(main);
  const FrequencyPlan pc = build_frequency_plan(comp);
  expect_within_one_ulp(pm.inv_freq, default_inv(10000.0, 64));
  expect_within_one_ulp(pc.inv_freq, yarn_inv(160000.0, 64, 16.0, 65536.0, 32.0, 1.0));
  EXPECT_EQ(pm.attention_factor, 1.0);
  EXPECT_EQ(pc.attention_factor, 1.0);  // the reference rotates with unit-magnitude cos/sin
  // compress_ratios: 0, 0, then 4/128 alternating; the 44th entry (the MTP block) is dropped.
  ASSERT_EQ(m.layer_types.size(), 43u);
  for (std::size_t i = 0; i < 43; ++i)
    EXPECT_EQ(m.layer_types[i], i < 2 ? "main" : "compress") << i;
}

TEST(DeepSeekV4, ApplyMatchesFloat64AndTransformersAngles) {
  const ModelRope m = load_hf_config(test::data_path("models/deepseek-v4-flash.json"));
  const int tokens = 5, heads = 2, hd = 64;
  const std::vector<std::int64_t> pos{0, 1, 4095, 65537, 1048575};
  const auto x = test::hf_q(heads, tokens, hd);
  for (const char* layer : {"main", "compress"}) {
    SCOPED_TRACE(layer);
    const FrequencyPlan plan = build_frequency_plan(m.layer(layer));
    std::vector<float> y(x.size());
    ApplyOptions o;
    o.backend = Backend::kReference;
    apply_rope(plan, ConstTensorView::contiguous(x.data(), DType::kF32, tokens, heads, hd),
               TensorView::contiguous(y.data(), DType::kF32, tokens, heads, hd), {}, {},
               Positions::per_token(std::span<const std::int64_t>(pos)), o);
    const auto want = rotate_interleaved(x, tokens, heads, hd, hd, plan.inv_freq, pos);
    for (std::size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], want[i], 1e-5) << i;
    // hf angles: float32(float32(p) · inv), as transformers' V4 rotary computes them.
    o.angles = AngleMode::kHf;
    apply_rope(plan, ConstTensorView::contiguous(x.data(), DType::kF32, tokens, heads, hd),
               TensorView::contiguous(y.data(), DType::kF32, tokens, heads, hd), {}, {},
               Positions::per_token(std::span<const std::int64_t>(pos)), o);
    for (int t = 0; t < tokens; ++t)
      for (int h = 0; h < heads; ++h)
        for (int i = 0; i < hd / 2; ++i) {
          const std::size_t a = (static_cast<std::size_t>(t) * heads + h) * hd + 2 * i;
          const double ang = static_cast<float>(static_cast<float>(pos[t]) * plan.inv_freq[i]);
          EXPECT_NEAR(y[a], x[a] * std::cos(ang) - x[a + 1] * std::sin(ang), 2e-5);
          EXPECT_NEAR(y[a + 1], x[a + 1] * std::cos(ang) + x[a] * std::sin(ang), 2e-5);
        }
  }
}

std::string v4(const std::string& extra) {
  return R"({"model_type":"deepseek_v4","head_dim":512,"qk_rope_head_dim":64,"hidden_size":4096,)"
         R"("num_attention_heads":64,"num_hidden_layers":4,"max_position_embeddings":1048576,)"
         R"("rope_theta":10000)" +
         extra + "}";
}

TEST(DeepSeekV4, LayerTypesNestedRopeParametersAndErrors) {
  // transformers v5 form: layer_types names and rope_parameters keyed main / compress.
  const ModelRope m = parse_hf_config(
      v4(R"(,"layer_types":["heavily_compressed_attention","sliding_attention",)"
         R"("compressed_sparse_attention","heavily_compressed_attention"],)"
         R"("rope_parameters":{"main":{"rope_type":"default","rope_theta":10000.0},)"
         R"("compress":{"rope_type":"yarn","rope_theta":160000.0,"factor":16,)"
         R"("original_max_position_embeddings":65536,"beta_fast":32,"beta_slow":1,)"
         R"("attention_factor":1.0}})"));
  EXPECT_EQ(m.layer_types, (std::vector<std::string>{"compress", "main", "compress", "compress"}));
  EXPECT_EQ(m.layer("compress").rope_theta, 160000.0);
  expect_within_one_ulp(build_frequency_plan(m.layer("compress")).inv_freq,
                        yarn_inv(160000.0, 64, 16.0, 65536.0, 32.0, 1.0));
  // Defaults: compress_rope_theta 160000; no rope_scaling gives plain RoPE on both.
  const ModelRope d = parse_hf_config(v4(R"(,"compress_ratios":[0,4,128,0])"));
  EXPECT_EQ(d.layer("compress").rope_theta, 160000.0);
  EXPECT_EQ(scaling_type_name(d.layer("compress").scaling), "default");
  EXPECT_EQ(d.layer_types, (std::vector<std::string>{"main", "compress", "compress", "main"}));
  for (const auto& [json, path] :
       {std::pair{v4(R"(,"compress_ratios":[0,4,128])"), "compress_ratios"},
        std::pair{v4(R"(,"compress_ratios":[0,4,-1,0])"), "compress_ratios[2]"},
        std::pair{v4(R"(,"layer_types":["full_attention","sliding_attention",)"
                     R"("sliding_attention","sliding_attention"])"),
                  "layer_types[0]"},
        std::pair{v4(R"(,"compress_rope_theta":0.5)"), "compress_rope_theta"}}) {
    try {
      (void)parse_hf_config(json);
      ADD_FAILURE() << json;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

// ---- GLM-5 indexer ----------------------------------------------------------------------------

std::string glm5(const std::string& model_type, const std::string& extra) {
  return R"({"model_type":")" + model_type +
         R"(","hidden_size":6144,"num_attention_heads":64,"qk_rope_head_dim":64,)"
         R"("qk_nope_head_dim":192,"index_head_dim":128,"index_n_heads":32,"index_topk":2048,)"
         R"("max_position_embeddings":202752,)"
         R"("rope_parameters":{"rope_theta":1000000,"rope_type":"default"})" +
         extra + "}";
}

TEST(Glm5Indexer, IndexerRopeInterleaveSelectsTheLayout) {
  const ModelRope m = parse_hf_config(glm5("glm_moe_dsa", R"(,"indexer_rope_interleave":true)"));
  ASSERT_EQ(m.layers.size(), 2u);
  const RopeConfig& mla = m.layer("default");
  const RopeConfig& idx = m.layer("indexer");
  EXPECT_EQ(mla.head_dim, 64);
  EXPECT_EQ(mla.layout, PairLayout::kInterleaved);
  EXPECT_EQ(idx.head_dim, 128);
  EXPECT_EQ(idx.rotary_dim, 64);
  EXPECT_EQ(idx.layout, PairLayout::kInterleaved);
  expect_within_one_ulp(build_frequency_plan(idx).inv_freq, default_inv(1000000.0, 64));
  // The key decides; absent, GLM-5 is interleaved and DeepSeek-V3.2 half-split.
  EXPECT_EQ(parse_hf_config(glm5("glm_moe_dsa", R"(,"indexer_rope_interleave":false)"))
                .layer("indexer")
                .layout,
            PairLayout::kHalf);
  EXPECT_EQ(parse_hf_config(glm5("glm_moe_dsa", "")).layer("indexer").layout,
            PairLayout::kInterleaved);
  EXPECT_EQ(parse_hf_config(glm5("deepseek_v32", "")).layer("indexer").layout, PairLayout::kHalf);
  EXPECT_EQ(parse_hf_config(glm5("deepseek_v32", R"(,"indexer_rope_interleave":true)"))
                .layer("indexer")
                .layout,
            PairLayout::kInterleaved);
}

TEST(Glm5Indexer, BuiltInGlm52) {
  const ModelRope m = load_hf_config(test::data_path("models/glm-5.2.json"));
  ASSERT_EQ(m.layers.size(), 2u);
  const RopeConfig& mla = m.layer("default");
  const RopeConfig& idx = m.layer("indexer");
  EXPECT_EQ(mla.head_dim, 64);  // qk_rope_head_dim, not head_dim 192 (GlmMoeDsaConfig)
  EXPECT_EQ(mla.rope_theta, 8000000.0);
  EXPECT_EQ(mla.layout, PairLayout::kInterleaved);
  EXPECT_EQ(idx.head_dim, 128);
  EXPECT_EQ(idx.rotary_dim, 64);
  EXPECT_EQ(idx.layout, PairLayout::kInterleaved);
  expect_within_one_ulp(build_frequency_plan(mla).inv_freq, default_inv(8000000.0, 64));
  EXPECT_EQ(build_frequency_plan(idx).inv_freq, build_frequency_plan(mla).inv_freq);
  EXPECT_TRUE(m.warnings.empty());
}

TEST(Glm5Indexer, RotatesTheFirstRopeFeaturesAndPassesTheRest) {
  const int tokens = 4, heads = 2, hd = 128;
  const std::vector<std::int64_t> pos{0, 3, 40000, 202751};
  const auto x = test::hf_q(heads, tokens, hd);
  for (const bool interleave : {true, false}) {
    SCOPED_TRACE(interleave);
    const ModelRope m =
        parse_hf_config(glm5("glm_moe_dsa", std::string(R"(,"indexer_rope_interleave":)") +
                                                (interleave ? "true" : "false")));
    const FrequencyPlan plan = build_frequency_plan(m.layer("indexer"));
    std::vector<float> y(x.size());
    apply_rope(plan, ConstTensorView::contiguous(x.data(), DType::kF32, tokens, heads, hd),
               TensorView::contiguous(y.data(), DType::kF32, tokens, heads, hd), {}, {},
               Positions::per_token(std::span<const std::int64_t>(pos)));
    const auto want = rotate_interleaved(x, tokens, heads, hd, 64, plan.inv_freq, pos, !interleave);
    for (std::size_t i = 0; i < y.size(); ++i) {
      if (i % hd >= 64)
        EXPECT_EQ(y[i], x[i]) << i;  // bit-identical pass-through
      else
        EXPECT_NEAR(y[i], want[i], 1e-5) << i;
    }
  }
}

}  // namespace
}  // namespace ropekit
