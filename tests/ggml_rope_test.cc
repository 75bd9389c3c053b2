// The llama.cpp numerics (ropekit/ggml_rope.h) against the formulas of ggml's CPU kernel,
// written out here independently: the float32 running product and its error growth, YaRN's ramp
// and built-in magnitude, freq_factors as divisors, and every mode's pairs and position streams.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "gguf_test_convert.h"
#include "ropekit/apply.h"
#include "ropekit/error.h"
#include "ropekit/frequencies.h"
#include "ropekit/ggml_rope.h"
#include "ropekit/gguf.h"
#include "test_util.h"

namespace ropekit {
namespace {

GgmlRopeParams neox(int n_dims, float base) {
  GgmlRopeParams p;
  p.n_dims = n_dims;
  p.freq_base = base;
  return p;
}

TEST(GgmlRope, RunningProductIsReplayedBitForBitAndItsErrorGrowsWithThePair) {
  const GgmlRopeParams p = neox(128, 500000.0f);
  const std::int64_t pos = 32768;
  const std::vector<float> got = ggml_rope_angles(p, {pos, 0, 0, 0});
  // ggml's loop, written again: theta *= theta_scale in float.
  const float scale = std::pow(500000.0f, -2.0f / 128.0f);
  float theta = static_cast<float>(pos);
  double early = 0, late = 0;
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(got[static_cast<std::size_t>(i)], theta) << i;
    const double exact = static_cast<double>(pos) * std::pow(500000.0, -2.0 * i / 128.0);
    const double rel = std::fabs(got[static_cast<std::size_t>(i)] - exact) / exact;
    EXPECT_LE(rel, (i + 2) * std::ldexp(1.0, -24)) << i;  // about one rounding per step
    (i < 8 ? early : late) = std::max(i < 8 ? early : late, rel);
    theta *= scale;
  }
  // The direct double computation (and ropekit's exact plan) has one rounding: the running
  // product's error grows with the pair index.
  EXPECT_GT(late, 4 * early);
  EXPECT_GT(late, 1e-6);
}

TEST(GgmlRope, YarnRampAndBuiltInMagnitude) {
  GgmlRopeParams p = neox(128, 1000000.0f);
  p.freq_scale = 0.25f;
  p.ext_factor = 1.0f;
  p.n_ctx_orig = 32768;
  p.attn_factor = 0.9f;
  const std::int64_t pos = 1000;
  const std::vector<float> th = ggml_rope_angles(p, {pos, 0, 0, 0});
  auto corr = [](double beta) {
    return 128 * std::log(32768 / (beta * 2 * std::numbers::pi)) / (2 * std::log(1e6));
  };
  const double low = std::max(0.0, std::floor(corr(32))),
               high = std::min(127.0, std::ceil(corr(1)));
  for (int i = 0; i < 64; ++i) {
    const double extrap = pos * std::pow(1e6, -2.0 * i / 128);
    const double mix = 1 - std::clamp((i - low) / std::max(0.001, high - low), 0.0, 1.0);
    const double want = 0.25 * extrap * (1 - mix) + extrap * mix;
    EXPECT_NEAR(th[static_cast<std::size_t>(i)] / want, 1.0, 1e-5) << i;
  }
  const std::vector<float> c = ggml_rope_cache(p, {pos, 0, 0, 0});
  const double mscale = 0.9 * (1 + 0.1 * std::log(4.0));
  EXPECT_NEAR(std::hypot(c[0], c[1]), mscale, 1e-6);
  const std::vector<float> back = ggml_rope_cache(p, {pos, 0, 0, 0}, true);
  EXPECT_EQ(back[1], -c[1]);
  // No ext_factor: no ramp, no built-in term.
  p.ext_factor = 0;
  const std::vector<float> lin = ggml_rope_angles(p, {pos, 0, 0, 0});
  EXPECT_FLOAT_EQ(lin[0], 0.25f * static_cast<float>(pos));
  EXPECT_NEAR(
      std::hypot(ggml_rope_cache(p, {pos, 0, 0, 0})[0], ggml_rope_cache(p, {pos, 0, 0, 0})[1]), 0.9,
      1e-6);
}

TEST(GgmlRope, FreqFactorsDivide) {
  GgmlRopeParams p = neox(8, 10000.0f);
  p.freq_factors = {1, 2, 4, 8};
  const std::vector<float> a = ggml_rope_angles(p, {100, 0, 0, 0});
  const std::vector<float> b = ggml_rope_angles(neox(8, 10000.0f), {100, 0, 0, 0});
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(a[static_cast<std::size_t>(i)],
              b[static_cast<std::size_t>(i)] / p.freq_factors[static_cast<std::size_t>(i)]);
}

// Rotates a row with each mode and checks which features pair, against hand-written pairs.
std::vector<float> rotate_one(const GgmlRopeParams& p, int head_dim,
                              std::vector<std::int32_t> pos) {
  std::vector<float> x(static_cast<std::size_t>(head_dim));
  for (int d = 0; d < head_dim; ++d)
    x[static_cast<std::size_t>(d)] = 0.1f * static_cast<float>(d + 1);
  ggml_rope_apply(p, x, 1, 1, head_dim, pos);
  return x;
}

TEST(GgmlRope, NormalAndNeoxPairs) {
  GgmlRopeParams p = neox(8, 10000.0f);
  p.mode = GgmlRopeMode::kNormal;
  const std::vector<float> n = rotate_one(p, 10, {3});
  const std::vector<float> c = ggml_rope_cache(p, {3, 0, 0, 0});
  for (int i = 0; i < 4; ++i) {
    const float x0 = 0.1f * static_cast<float>(2 * i + 1),
                x1 = 0.1f * static_cast<float>(2 * i + 2);
    EXPECT_FLOAT_EQ(
        n[static_cast<std::size_t>(2 * i)],
        x0 * c[static_cast<std::size_t>(2 * i)] - x1 * c[static_cast<std::size_t>(2 * i + 1)]);
  }
  EXPECT_FLOAT_EQ(n[8], 0.9f);  // past n_dims: untouched
  p.mode = GgmlRopeMode::kNeox;
  const std::vector<float> x = rotate_one(p, 10, {3});
  for (int i = 0; i < 4; ++i) {
    const float x0 = 0.1f * static_cast<float>(i + 1), x1 = 0.1f * static_cast<float>(i + 5);
    EXPECT_FLOAT_EQ(
        x[static_cast<std::size_t>(i + 4)],
        x0 * c[static_cast<std::size_t>(2 * i + 1)] + x1 * c[static_cast<std::size_t>(2 * i)]);
  }
}

TEST(GgmlRope, MropeImropeAndVisionStreams) {
  GgmlRopeParams p = neox(24, 10000.0f);  // 12 pairs
  p.sections = {4, 4, 4, 0};
  const std::array<std::int64_t, 4> pos{10, 200, 3000, 0};
  const float scale = std::pow(10000.0f, -2.0f / 24.0f);
  auto running = [&](std::int64_t start, int i) {
    float t = static_cast<float>(start);
    for (int k = 0; k < i; ++k) t *= scale;
    return t;
  };
  p.mode = GgmlRopeMode::kMrope;
  auto m = ggml_rope_angles(p, pos);
  for (int i = 0; i < 12; ++i)
    EXPECT_EQ(m[static_cast<std::size_t>(i)], running(pos[static_cast<std::size_t>(i / 4)], i))
        << i;
  p.mode = GgmlRopeMode::kImrope;
  m = ggml_rope_angles(p, pos);
  for (int i = 0; i < 12; ++i)
    EXPECT_EQ(m[static_cast<std::size_t>(i)], running(pos[static_cast<std::size_t>(i % 3)], i))
        << i;
  // Vision: 2-D, n_dims = head_dim/2 pairs, each section restarts its stream.
  GgmlRopeParams v = neox(8, 10000.0f);
  v.mode = GgmlRopeMode::kVision;
  v.sections = {4, 4, 0, 0};
  const auto a = ggml_rope_angles(v, {5, 7, 0, 0});
  const float vs = std::pow(10000.0f, -2.0f / 8.0f);
  float t = 5, h = 7;
  for (int i = 0; i < 8; ++i) {
    if (i == 4) h = 7;  // restarted (its running product had advanced with t)
    EXPECT_EQ(a[static_cast<std::size_t>(i)], i < 4 ? t : h) << i;
    t *= vs, h *= vs;
  }
  std::vector<float> x(16, 1.0f);
  EXPECT_NO_THROW(ggml_rope_apply(v, x, 1, 1, 16, std::vector<std::int32_t>{5, 7, 0, 0}));
  EXPECT_THROW(ggml_rope_apply(v, x, 1, 1, 16, std::vector<std::int32_t>{5}), ArgumentError);
}

TEST(GgmlRope, ParamsFromGgufConfigsRotateLikeThePlanAtSmallPositions) {
  // From GGUF-resolved configs: llama.cpp's arguments give the plan's rotation (up to the float32
  // angle error, small at position 100) and its magnitude.
  for (const auto& [name, arch] :
       std::vector<std::pair<std::string, std::string>>{{"llama-3.1-8b-instruct", "llama"},
                                                        {"qwen2.5-7b-instruct-yarn", "qwen2"},
                                                        {"phi-3.5-mini-instruct", "phi3"},
                                                        {"deepseek-v3", "deepseek2"}}) {
    SCOPED_TRACE(name);
    const ModelRope g = gguf_model_rope(parse_gguf_rope_metadata(
        test::convert_rope(load_hf_config(test::data_path("models/" + name + ".json")), arch)
            .bytes()));
    const RopeConfig& c = g.layers.front();
    const FrequencyPlan plan = build_frequency_plan(c, c.max_position_embeddings);
    const GgmlRopeParams p = ggml_rope_params(c);
    const std::vector<float> cache = ggml_rope_cache(p, {100, 0, 0, 0});
    for (std::size_t i = 0; i < plan.inv_freq.size(); ++i) {
      const double angle = 100.0 * plan.inv_freq[i];
      EXPECT_NEAR(cache[2 * i], plan.attention_factor * std::cos(angle), 2e-5) << i;
      EXPECT_NEAR(cache[2 * i + 1], plan.attention_factor * std::sin(angle), 2e-5) << i;
    }
  }
}

}  // namespace
}  // namespace ropekit
