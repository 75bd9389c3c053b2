// NTK-alpha (HunYuan): the config forms, the frequencies against a re-implementation of
// transformers' HunYuanDenseV1RotaryEmbedding written here, the sequence-length rule past
// max_position_embeddings, and apply_rope with the resulting plan.
#include <gtest/gtest.h>

#include <cmath>
#include <variant>

#include "ropekit/ropekit.h"
#include "rotation_check.h"
#include "test_util.h"

namespace ropekit {
namespace {

// transformers: base = rope_theta * alpha ** (dim / (dim - 2)) (Python floats), then
// inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)) (float32 tensors).
std::vector<double> hunyuan_inv_freq_f64(double theta, double alpha, int dim) {
  const double base = theta * std::pow(alpha, static_cast<double>(dim) / (dim - 2));
  std::vector<double> inv;
  for (int i = 0; i < dim; i += 2)
    inv.push_back(1.0 / std::pow(base, static_cast<double>(i) / dim));
  return inv;
}
std::vector<float> hunyuan_inv_freq_torch_f32(double theta, double alpha, int dim) {
  const double base = theta * std::pow(alpha, static_cast<double>(dim) / (dim - 2));
  std::vector<float> inv;
  for (int i = 0; i < dim; i += 2) {
    const float e = static_cast<float>(i) / static_cast<float>(dim);
    const float p = static_cast<float>(std::pow(static_cast<double>(static_cast<float>(base)), e));
    inv.push_back(1.0f / p);
  }
  return inv;
}

ModelRope hunyuan() { return load_hf_config(test::data_path("models/hunyuan-7b-instruct.json")); }

TEST(NtkAlpha, BuiltInConfigReadsAlphaWithoutWarning) {
  const ModelRope m = hunyuan();
  for (const auto& w : m.warnings) EXPECT_EQ(w.path.find("alpha"), std::string::npos) << w.message;
  const auto& s = std::get<DynamicNtkScaling>(m.layers.at(0).scaling);
  ASSERT_TRUE(s.alpha);
  EXPECT_EQ(*s.alpha, 1000.0);
  EXPECT_EQ(s.factor, 1.0);
}

TEST(NtkAlpha, FrequenciesMatchTheHunYuanFormula) {
  const ModelRope m = hunyuan();
  const RopeConfig& c = m.layers.at(0);
  const FrequencyPlan p = build_frequency_plan(c);
  const std::vector<double> want = hunyuan_inv_freq_f64(10000.0, 1000.0, 128);
  ASSERT_EQ(p.inv_freq.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_LE(test::ulps(p.inv_freq[i], static_cast<float>(want[i])), 1.0) << i;
  EXPECT_NEAR(p.info.effective_theta, 10000.0 * std::pow(1000.0, 128.0 / 126.0), 1e-3);
  EXPECT_EQ(p.attention_factor, 1.0);
  const FrequencyPlan hf = build_frequency_plan(c, std::nullopt, Numerics::transformers());
  const std::vector<float> torch = hunyuan_inv_freq_torch_f32(10000.0, 1000.0, 128);
  for (std::size_t i = 0; i < torch.size(); ++i)
    EXPECT_LE(test::ulps(hf.inv_freq[i], torch[i]), 1.0) << i;
}

TEST(NtkAlpha, RopeParametersFormIsReadToo) {
  const ModelRope m = parse_hf_config(R"({"model_type":"hunyuan_v1_dense","head_dim":128,
    "hidden_size":4096,"num_attention_heads":32,"max_position_embeddings":32768,
    "rope_parameters":{"rope_type":"dynamic","rope_theta":10000.0,"alpha":1000.0,"factor":1.0}})");
  EXPECT_TRUE(m.warnings.empty());
  EXPECT_EQ(build_frequency_plan(m.layers.at(0)).inv_freq,
            build_frequency_plan(hunyuan().layers.at(0)).inv_freq);
}

TEST(NtkAlpha, BadAlphaIsAConfigError) {
  try {
    parse_hf_config(R"({"model_type":"hunyuan_v1_dense","head_dim":128,"hidden_size":4096,
      "num_attention_heads":32,"max_position_embeddings":32768,"rope_theta":10000.0,
      "rope_scaling":{"type":"dynamic","alpha":-1.0,"factor":1.0}})");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "rope_scaling.alpha");
  }
}

// transformers' dynamic update past max_position_embeddings calls the plain dynamic formula
// (no alpha); mlx-lm's and vLLM's HunYuan keep the alpha base at every length.
TEST(NtkAlpha, PastMaxPositionTransformersDropsAlpha) {
  const ModelRope m = hunyuan();
  const RopeConfig& c = m.layers.at(0);
  const double alpha_theta = 10000.0 * std::pow(1000.0, 128.0 / 126.0);
  EXPECT_NEAR(build_frequency_plan(c, 32768).info.effective_theta, alpha_theta, 1e-3);
  const FrequencyPlan grown = build_frequency_plan(c, 65536);
  EXPECT_NEAR(grown.info.effective_theta, 10000.0 * std::pow(2.0, 128.0 / 126.0), 1e-6);
  const FrequencyPlan mlx = build_frequency_plan(c, 65536, Numerics::mlx_lm());
  EXPECT_NEAR(mlx.info.effective_theta, alpha_theta, 1e-3);
  RopeState s(c);
  EXPECT_NEAR(s.plan_for(100).info.effective_theta, alpha_theta, 1e-3);
  EXPECT_EQ(s.plan_for(65536).info.effective_theta, grown.info.effective_theta);
  EXPECT_NEAR(s.plan_for(100).info.effective_theta, alpha_theta, 1e-3);  // reset below the max
}

TEST(NtkAlpha, ApplyMatchesFloat64Rotation) {
  const FrequencyPlan plan = build_frequency_plan(hunyuan().layers.at(0));
  test::RotationCase c;
  c.head_dim = 128;
  const std::vector<double> want = hunyuan_inv_freq_f64(10000.0, 1000.0, 128);
  for (std::size_t i = 0; i < want.size(); ++i)  // the formula rounded once (checked above)
    ASSERT_LE(test::ulps(plan.inv_freq[i], static_cast<float>(want[i])), 1.0);
  c.inv_freq = plan.inv_freq;
  c.tokens = 6;
  c.rows = {0, 1, 17, 4095, 32767, 131071};
  test::check_rotation(c, [&](const TensorView& q, const ApplyOptions& o) {
    apply_rope(plan, q, TensorView{}, Positions::per_token(std::span<const std::int64_t>(c.rows)),
               o);
  });
}

}  // namespace
}  // namespace ropekit
