// The llama.cpp numerics preset (Numerics::llama_cpp(), AngleMode::kGgml) through the public
// apply API, against ggml's CPU loop written out again here from ggml-cpu's ops.cpp
// (ggml_rope_cache_init, ggml_mrope_cache_init, rope_yarn, rope_yarn_ramp,
// ggml_rope_yarn_corr_dims, rotate_pairs): every mode, YaRN's mix and built-in magnitude,
// freq_factors, the error growth of the float32 running product, and GGUF files end to end in
// f32, bf16 and f16.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <random>
#include <variant>

#include "ggml_test_loop.h"
#include "gguf_test_writer.h"
#include "reference/ggml_math.h"
#include "ropekit/apply.h"
#include "ropekit/cos_sin_cache.h"
#include "ropekit/dtype.h"
#include "ropekit/error.h"
#include "ropekit/frequencies.h"
#include "ropekit/ggml_rope.h"
#include "ropekit/gguf.h"
#include "ropekit/hf_config.h"
#include "ropekit/numerics.h"
#include "ropekit/thread_pool.h"
#include "test_util.h"

namespace ropekit {
namespace {

using test::ggml_loop;
using test::partners;
using test::Pos4;
using test::RefCache;

// ---- the cases -------------------------------------------------------------------------------
RopeConfig base_config(int head, int rotary, PairLayout layout, double theta) {
  return test::plain_config(head, rotary, layout, theta, 32768);
}

struct Case {
  const char* name;
  RopeConfig config;
  int rows;  // position rows (0: 1-D)
};

std::vector<Case> cases() {
  std::vector<Case> v;
  {
    RopeConfig c = base_config(64, 64, PairLayout::kInterleaved, 10000.0);
    YarnScaling y;
    y.factor = 4;
    y.original_max_position_embeddings = 4096;
    c.scaling = y;
    v.push_back({"normal_yarn", c, 0});
  }
  {
    RopeConfig c = base_config(80, 64, PairLayout::kHalf, 500000.0);  // partial rotary
    c.scaling = Llama3Scaling{};
    c.max_position_embeddings = 131072;
    v.push_back({"neox_llama3_partial", c, 0});
  }
  {
    RopeConfig c = base_config(128, 128, PairLayout::kHalf, 1000000.0);
    c.mrope = MRopeSpec{{16, 24, 24}, MRopeAssignment::kSections};
    v.push_back({"mrope", c, 3});
  }
  {
    RopeConfig c = base_config(128, 128, PairLayout::kHalf, 5000000.0);
    c.mrope = MRopeSpec{{24, 20, 20}, MRopeAssignment::kInterleavedThw};
    v.push_back({"imrope", c, 3});
  }
  {
    RopeConfig c = base_config(64, 64, PairLayout::kHalf, 10000.0);
    c.vision2d = Vision2dSpec{Vision2dKind::kQwenVl};
    c.layer_type = "vision";
    v.push_back({"vision", c, 2});
  }
  return v;
}

GgmlRopeMode expected_mode(const Case& c) {
  if (c.config.vision2d) return GgmlRopeMode::kVision;
  if (c.config.mrope)
    return c.config.mrope->assignment == MRopeAssignment::kSections ? GgmlRopeMode::kMrope
                                                                    : GgmlRopeMode::kImrope;
  return c.config.layout == PairLayout::kHalf ? GgmlRopeMode::kNeox : GgmlRopeMode::kNormal;
}

// Positions of `tokens` tokens: 1-D ids or `rows` rows, spread up to 2^31 − 1 and negative.
std::vector<std::int64_t> make_positions(int rows, std::int64_t tokens) {
  const std::int64_t base[] = {0, 1, 7, 4095, -3, 131071, 2147483647, 1000003};
  std::vector<std::int64_t> ids;
  for (int r = 0; r < std::max(rows, 1); ++r)
    for (std::int64_t t = 0; t < tokens; ++t) ids.push_back(base[(t + r) % 8] - r * 5);
  return ids;
}

Pos4 streams_of(const std::vector<std::int64_t>& ids, int rows, std::int64_t tokens,
                std::int64_t t) {
  if (rows == 0) return {ids[t], ids[t], ids[t], ids[t]};
  Pos4 s{};
  for (int a = 0; a < 4; ++a) s[a] = ids[static_cast<std::size_t>((a < rows ? a : 0) * tokens + t)];
  return s;
}

ApplyOptions preset_options(Backend b) {
  ApplyOptions o = with_numerics(ApplyOptions{}, Numerics::llama_cpp());
  o.backend = b;
  return o;
}

Positions positions_of(const std::vector<std::int64_t>& ids, int rows, std::int64_t tokens) {
  if (rows == 0) return Positions::per_token(std::span<const std::int64_t>(ids));
  return Positions::rows(std::span<const std::int64_t>(ids), tokens, rows);
}

// ---- tests -----------------------------------------------------------------------------------
TEST(GgmlNumerics, PresetByName) {
  for (const char* n : {"llama.cpp", "llama-cpp", "llama_cpp", "ggml"})
    EXPECT_EQ(numerics_preset(n), Numerics::llama_cpp()) << n;
  EXPECT_NE(std::string(kNumericsPresetNames).find("llama.cpp"), std::string::npos);
  EXPECT_EQ(Numerics::llama_cpp().angles, AngleMode::kGgml);
  EXPECT_EQ(Numerics::llama_cpp().arithmetic, FrequencyArithmetic::kGgml);
}

// cos/sin bit for bit: a unit input (1 at feature a, 0 at b) comes out as (cos, sin) exactly,
// so the outputs are ggml's cache values themselves. Both backends, every mode.
TEST(GgmlNumerics, EveryModeGivesGgmlsCosSinBitForBit) {
  for (const Case& k : cases()) {
    SCOPED_TRACE(k.name);
    const FrequencyPlan plan = build_frequency_plan(k.config, std::nullopt, Numerics::llama_cpp());
    ASSERT_TRUE(plan.ggml.has_value());
    EXPECT_EQ(plan.ggml->mode, expected_mode(k));
    const GgmlRopeParams& g = *plan.ggml;
    const int pairs = plan.rotary_dim / 2;
    const std::int64_t tokens = 8, head = plan.head_dim;
    const std::vector<std::int64_t> ids = make_positions(k.rows, tokens);
    for (const Backend b : {Backend::kReference, Backend::kAuto}) {
      SCOPED_TRACE(b == Backend::kReference ? "reference" : "auto");
      std::vector<float> x(static_cast<std::size_t>(tokens * head), 0.0f);
      for (std::int64_t t = 0; t < tokens; ++t)
        for (int i = 0; i < pairs; ++i)
          x[static_cast<std::size_t>(t * head + partners(g, i).first)] = 1.0f;
      const TensorView q = TensorView::contiguous(x.data(), DType::kF32, tokens, 1, head);
      apply_rope(plan, q, TensorView{}, positions_of(ids, k.rows, tokens), preset_options(b));
      for (std::int64_t t = 0; t < tokens; ++t) {
        const RefCache ref = ggml_loop(g, streams_of(ids, k.rows, tokens, t));
        for (int i = 0; i < pairs; ++i) {
          const auto [a, bb] = partners(g, i);
          ASSERT_EQ(x[static_cast<std::size_t>(t * head + a)], ref.c[static_cast<std::size_t>(i)])
              << "token " << t << " pair " << i;
          ASSERT_EQ(x[static_cast<std::size_t>(t * head + bb)], ref.s[static_cast<std::size_t>(i)])
              << "token " << t << " pair " << i;
        }
      }
    }
  }
}

// Arguments set by hand (a YaRN mix other than 1, freq_factors, a magnitude, beta values): the
// rotation of random inputs against rotate_pairs' formula on ggml's cos/sin. The reference
// backend rounds once from double: bit-exact with x0·c − x1·s in double; the SIMD one computes
// in float32 and stays within one float32 ulp of (|x0| + |x1|)·(|c| + |s|). Pass-through
// features are copied.
TEST(GgmlNumerics, HandSetArgumentsRotateAsRotatePairs) {
  RopeConfig c = base_config(96, 64, PairLayout::kInterleaved, 10000.0);
  FrequencyPlan plan = build_frequency_plan(c, std::nullopt, Numerics::llama_cpp());
  GgmlRopeParams& g = *plan.ggml;
  g.freq_scale = 0.125f;
  g.ext_factor = 0.6f;
  g.n_ctx_orig = 8192;
  g.attn_factor = 0.8f;
  g.beta_fast = 24.0f;
  g.beta_slow = 2.0f;
  for (int i = 0; i < 32; ++i) g.freq_factors.push_back(1.0f + 0.25f * static_cast<float>(i % 5));
  const std::int64_t tokens = 40, heads = 3, head = 96;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.5f, 1.5f);
  std::vector<float> x(static_cast<std::size_t>(tokens * heads * head));
  for (float& v : x) v = u(rng);
  const std::vector<std::int64_t> ids = make_positions(0, tokens);
  for (const Backend b : {Backend::kReference, Backend::kAuto}) {
    for (const Direction dir : {Direction::kForward, Direction::kInverse}) {
      std::vector<float> y = x;
      ApplyOptions o = preset_options(b);
      o.direction = dir;
      apply_rope(plan, TensorView::contiguous(y.data(), DType::kF32, tokens, heads, head),
                 TensorView{}, Positions::per_token(std::span<const std::int64_t>(ids)), o);
      const double sign = dir == Direction::kInverse ? -1.0 : 1.0;
      for (std::int64_t t = 0; t < tokens; ++t) {
        const RefCache ref = ggml_loop(g, {ids[t], ids[t], ids[t], ids[t]});
        for (std::int64_t h = 0; h < heads; ++h) {
          const std::size_t row = static_cast<std::size_t>((t * heads + h) * head);
          for (int i = 0; i < 32; ++i) {
            const double x0 = x[row + 2 * i], x1 = x[row + 2 * i + 1];
            const double cs = ref.c[static_cast<std::size_t>(i)];
            const double sn = sign * ref.s[static_cast<std::size_t>(i)];
            const double w0 = x0 * cs - x1 * sn, w1 = x0 * sn + x1 * cs;
            if (b == Backend::kReference) {
              ASSERT_EQ(y[row + 2 * i], static_cast<float>(w0)) << t << " " << h << " " << i;
              ASSERT_EQ(y[row + 2 * i + 1], static_cast<float>(w1)) << t << " " << h << " " << i;
            } else {
              const double tol = std::ldexp(
                  (std::fabs(x0) + std::fabs(x1)) * (std::fabs(cs) + std::fabs(sn)), -23);
              ASSERT_NEAR(y[row + 2 * i], w0, tol) << t << " " << h << " " << i;
              ASSERT_NEAR(y[row + 2 * i + 1], w1, tol) << t << " " << h << " " << i;
            }
          }
          for (int d = 64; d < 96; ++d) ASSERT_EQ(y[row + d], x[row + d]);
        }
      }
    }
  }
}

// The float32 running product: its relative angle error grows with the pair index (about one
// rounding per step) where a direct double computation rounded once stays within half an ulp;
// its absolute error grows with the position; and so do the outputs' differences from exact
// angles.
TEST(GgmlNumerics, RunningProductErrorGrowsWithPairAndPosition) {
  GgmlRopeParams g;
  g.n_dims = 128;
  g.freq_base = 10000.0f;
  g.mode = GgmlRopeMode::kNeox;
  std::vector<float> theta(64);
  double early = 0, late = 0, direct_worst = 0;
  std::array<double, 4> abs_by_decade{};
  const std::int64_t starts[4] = {1 << 8, 1 << 12, 1 << 16, 1 << 20};
  for (int d = 0; d < 4; ++d) {
    for (std::int64_t p = starts[d]; p < starts[d] + 200; ++p) {
      detail::ggml_angles_into(g, {p, p, p, p}, theta.data());
      for (int i = 0; i < 64; ++i) {
        const double exact = static_cast<double>(p) * std::pow(10000.0, -2.0 * i / 128.0);
        const double err = std::fabs(theta[static_cast<std::size_t>(i)] - exact);
        const double rel = err / exact;
        ASSERT_LE(rel, (i + 2) * std::ldexp(1.0, -24)) << p << " " << i;
        if (i < 8) early += rel;
        if (i >= 56) late += rel;
        abs_by_decade[static_cast<std::size_t>(d)] = std::max(abs_by_decade[d], err);
        const double direct = static_cast<float>(exact);  // one rounding
        direct_worst = std::max(direct_worst, std::fabs(direct - exact) / exact);
      }
    }
  }
  EXPECT_GT(late, 4 * early);  // summed over the same number of (position, pair) samples
  EXPECT_LE(direct_worst, std::ldexp(1.0, -24));
  for (int d = 1; d < 4; ++d) EXPECT_GT(abs_by_decade[d], 4 * abs_by_decade[d - 1]) << d;

  // Outputs: the preset against exact angles, largest difference per position range.
  RopeConfig c = base_config(128, 128, PairLayout::kHalf, 10000.0);
  const FrequencyPlan ggml_plan = build_frequency_plan(c, std::nullopt, Numerics::llama_cpp());
  const FrequencyPlan exact_plan = build_frequency_plan(c, std::nullopt, Numerics::exact());
  std::array<double, 2> worst{};
  const std::int64_t at[2] = {16, 1 << 20};
  for (int r = 0; r < 2; ++r) {
    const std::int64_t tokens = 64;
    std::vector<float> a(static_cast<std::size_t>(tokens * 128), 0.5f), b = a;
    apply_rope(ggml_plan, TensorView::contiguous(a.data(), DType::kF32, tokens, 1, 128),
               TensorView{}, Positions::offset(at[r]), preset_options(Backend::kReference));
    apply_rope(exact_plan, TensorView::contiguous(b.data(), DType::kF32, tokens, 1, 128),
               TensorView{}, Positions::offset(at[r]), with_numerics({}, Numerics::exact()));
    for (std::size_t i = 0; i < a.size(); ++i)
      worst[static_cast<std::size_t>(r)] =
          std::max(worst[static_cast<std::size_t>(r)], static_cast<double>(std::fabs(a[i] - b[i])));
  }
  std::printf("largest |llama.cpp - exact| output difference: %.3g at p ~ 16, %.3g at p ~ 2^20\n",
              worst[0], worst[1]);
  EXPECT_LT(worst[0], 2e-5);  // float32 angles of at most ~80 rad
  EXPECT_GT(worst[1], 100 * worst[0]);
  EXPECT_GT(worst[1], 1e-3);
}

// llama.cpp's arguments for a GGUF, derived here from the keys as llama.cpp's loader and
// context set-up do (llama-model.cpp load_hparams, llama-context.cpp llama_context).
struct Gguf {
  test::GgufWriter w;
  GgmlRopeParams g;
};

Gguf qwen2_yarn() {
  Gguf f;
  f.w.str("general.architecture", "qwen2")
      .u32("qwen2.context_length", 131072)
      .u32("qwen2.embedding_length", 64 * 4)
      .u32("qwen2.attention.head_count", 4)
      .u32("qwen2.attention.key_length", 64)
      .f32("qwen2.rope.freq_base", 1000000.0f)
      .str("qwen2.rope.scaling.type", "yarn")
      .f32("qwen2.rope.scaling.factor", 4.0f)
      .u32("qwen2.rope.scaling.original_context_length", 32768);
  f.g.mode = GgmlRopeMode::kNeox;
  f.g.n_dims = 64;
  f.g.freq_base = 1000000.0f;
  f.g.freq_scale = 0.25f;
  f.g.ext_factor = 1.0f;
  f.g.n_ctx_orig = 32768;
  const float factor = 1.0f / f.g.freq_scale;
  f.g.attn_factor = (0.1f * std::log(factor) + 1.0f) * (1.0f / (1.0f + 0.1f * std::log(factor)));
  return f;
}

Gguf llama_rope_freqs() {
  Gguf f;
  std::vector<float> ff;
  for (int i = 0; i < 32; ++i)
    ff.push_back(i < 10 ? 1.0f : (i < 20 ? 1.0f + 0.7f * (i - 9) : 8.0f));
  f.w.str("general.architecture", "llama")
      .u32("llama.context_length", 131072)
      .u32("llama.embedding_length", 64 * 4)
      .u32("llama.attention.head_count", 4)
      .f32("llama.rope.freq_base", 500000.0f)
      .tensor("rope_freqs.weight", ff);
  f.g.mode = GgmlRopeMode::kNormal;
  f.g.n_dims = 64;
  f.g.freq_base = 500000.0f;
  f.g.freq_factors = ff;
  return f;
}

double ulp_distance_16(DType dt, std::uint16_t got, double want) {
  const float g = dt == DType::kBF16 ? bf16_to_f32(BF16{got}) : f16_to_f32(F16{got});
  // one ulp of the 16-bit type at `want`'s magnitude
  int e = 0;
  std::frexp(std::max(std::fabs(want), 1e-30), &e);
  const int mant = dt == DType::kBF16 ? 8 : 11;
  return std::fabs(g - want) / std::ldexp(1.0, e - mant);
}

TEST(GgmlNumerics, GgufEndToEndF32Bf16F16) {
  for (const Gguf& f : {qwen2_yarn(), llama_rope_freqs()}) {
    const ModelRope m = gguf_model_rope(parse_gguf_rope_metadata(f.w.bytes()));
    SCOPED_TRACE(m.model_type);
    const FrequencyPlan plan =
        build_frequency_plan(m.layers.at(0), std::nullopt, Numerics::llama_cpp());
    ASSERT_TRUE(plan.ggml);
    EXPECT_EQ(plan.ggml->mode, f.g.mode);
    EXPECT_EQ(plan.ggml->freq_base, f.g.freq_base);
    EXPECT_EQ(plan.ggml->freq_scale, f.g.freq_scale);
    EXPECT_EQ(plan.ggml->ext_factor, f.g.ext_factor);
    EXPECT_EQ(plan.ggml->freq_factors, f.g.freq_factors);
    // llama.cpp's magnitude is float arithmetic; ropekit folds the double of the same
    // formula into a float: within one float32 ulp.
    EXPECT_NEAR(plan.ggml->attn_factor, f.g.attn_factor, std::ldexp(1.0f, -23));
    GgmlRopeParams g = *plan.ggml;  // the loop below checks the arithmetic with these

    const std::int64_t tokens = 24, heads = 2, head = 64;
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> x(static_cast<std::size_t>(tokens * heads * head));
    for (float& v : x)  // exact in all three dtypes
      v = static_cast<float>(round_to_dtype(DType::kBF16, u(rng)));
    const std::vector<std::int64_t> ids = make_positions(0, tokens);
    for (const DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
      SCOPED_TRACE(dtype_name(dt));
      std::vector<float> y32 = x;
      std::vector<std::uint16_t> y16(x.size());
      for (std::size_t i = 0; i < x.size(); ++i)
        y16[i] = dt == DType::kBF16 ? f32_to_bf16(x[i]).bits : f32_to_f16(x[i]).bits;
      void* data = dt == DType::kF32 ? static_cast<void*>(y32.data()) : y16.data();
      apply_rope(plan, TensorView::contiguous(data, dt, tokens, heads, head), TensorView{},
                 Positions::per_token(std::span<const std::int64_t>(ids)),
                 preset_options(Backend::kAuto));
      for (std::int64_t t = 0; t < tokens; ++t) {
        const RefCache ref = ggml_loop(g, {ids[t], ids[t], ids[t], ids[t]});
        for (std::int64_t h = 0; h < heads; ++h) {
          const std::size_t row = static_cast<std::size_t>((t * heads + h) * head);
          for (int i = 0; i < 32; ++i) {
            const auto [a, b] = partners(g, i);
            const double x0 = x[row + a], x1 = x[row + b];
            const double cs = ref.c[static_cast<std::size_t>(i)],
                         sn = ref.s[static_cast<std::size_t>(i)];
            const double w[2] = {x0 * cs - x1 * sn, x0 * sn + x1 * cs};
            const std::size_t at[2] = {row + static_cast<std::size_t>(a),
                                       row + static_cast<std::size_t>(b)};
            for (int k = 0; k < 2; ++k) {
              if (dt == DType::kF32) {
                const double tol = std::ldexp(
                    (std::fabs(x0) + std::fabs(x1)) * (std::fabs(cs) + std::fabs(sn)), -23);
                ASSERT_NEAR(y32[at[k]], w[k], tol) << t << " " << i;
              } else {
                // one rounding to the 16-bit type (from an f32 or f64 value): within 1 ulp
                ASSERT_LE(ulp_distance_16(dt, y16[at[k]], w[k]), 1.0)
                    << t << " " << i << " want " << w[k];
              }
            }
          }
        }
      }
    }
  }
}

TEST(GgmlNumerics, ConfigJsonArgumentsAsLlamaCppConverts) {
  // Qwen2.5's YaRN block: freq_scale 1/4, ext_factor 1, n_ctx_orig 32768, the magnitude
  // cancelling ggml's built-in term so that the net factor is transformers' 0.1 ln 4 + 1.
  const ModelRope q = load_hf_config(test::data_path("models/qwen2.5-7b-instruct-yarn.json"));
  const FrequencyPlan p = build_frequency_plan(q.layers.at(0), std::nullopt, Numerics::llama_cpp());
  ASSERT_TRUE(p.ggml);
  EXPECT_EQ(p.ggml->freq_scale, 0.25f);
  EXPECT_EQ(p.ggml->ext_factor, 1.0f);
  EXPECT_EQ(p.ggml->n_ctx_orig, 32768);
  EXPECT_NEAR(detail::ggml_magnitude(*p.ggml), p.attention_factor, 1e-6);
  EXPECT_NEAR(p.attention_factor, 0.1 * std::log(4.0) + 1, 1e-9);
  // HunYuan's NTK-alpha: llama.cpp's loader bakes it into freq_base (float32, head width).
  const ModelRope hy = load_hf_config(test::data_path("models/hunyuan-7b-instruct.json"));
  const RopeConfig& hl = hy.layers.at(0);
  const auto& dyn = std::get<DynamicNtkScaling>(hl.scaling);
  ASSERT_TRUE(dyn.alpha);
  const FrequencyPlan hp = build_frequency_plan(hl, std::nullopt, Numerics::llama_cpp());
  const float dim = static_cast<float>(hl.head_dim);
  EXPECT_EQ(hp.ggml->freq_base, static_cast<float>(hl.rope_theta) *
                                    std::pow(static_cast<float>(*dyn.alpha), dim / (dim - 2.0f)));
  EXPECT_EQ(hp.ggml->attn_factor, 1.0f);
  // What llama.cpp cannot express is a ConfigError naming the field.
  const ModelRope internlm = load_hf_config(test::data_path("models/internlm2.5-7b-dynamic.json"));
  EXPECT_THROW(build_frequency_plan(internlm.layers.at(0), std::nullopt, Numerics::llama_cpp()),
               ConfigError);
  RopeConfig xd = base_config(128, 128, PairLayout::kHalf, 10000.0);
  xd.xdrope = XdRopeSpec{{16, 16, 16, 16}};
  EXPECT_THROW(build_frequency_plan(xd, std::nullopt, Numerics::llama_cpp()), ConfigError);
}

TEST(GgmlNumerics, MisuseIsAnArgumentErrorAndUnfoldedMagnitudeIsReturned) {
  RopeConfig c = base_config(64, 64, PairLayout::kHalf, 10000.0);
  YarnScaling y;
  y.factor = 8;
  y.original_max_position_embeddings = 4096;
  c.scaling = y;
  const FrequencyPlan exact = build_frequency_plan(c);
  std::vector<float> x(64 * 2, 0.25f);
  const TensorView q = TensorView::contiguous(x.data(), DType::kF32, 2, 1, 64);
  // A plan without ggml's arguments.
  EXPECT_THROW(
      apply_rope(exact, q, TensorView{}, Positions::offset(0), preset_options(Backend::kAuto)),
      ArgumentError);
  EXPECT_THROW(CosSinCache(exact, AngleMode::kGgml), ArgumentError);
  const FrequencyPlan plan = build_frequency_plan(c, std::nullopt, Numerics::llama_cpp());
  ApplyOptions o = preset_options(Backend::kAuto);
  o.position_scale = 2.0;
  EXPECT_THROW(apply_rope(plan, q, TensorView{}, Positions::offset(0), o), ArgumentError);
  o = preset_options(Backend::kAuto);
  o.rounding = Rounding::kTransformers;
  EXPECT_THROW(apply_rope(plan, q, TensorView{}, Positions::offset(0), o), ArgumentError);
  // Not folded: a pure rotation, ggml's magnitude returned.
  o = preset_options(Backend::kReference);
  o.fold_attention_factor = false;
  const ApplyResult r = apply_rope(plan, q, TensorView{}, Positions::offset(3), o);
  EXPECT_FLOAT_EQ(static_cast<float>(r.unapplied_attention_factor),
                  detail::ggml_magnitude(*plan.ggml));
  EXPECT_NEAR(r.unapplied_attention_factor, plan.attention_factor, 1e-6);
  for (int t = 0; t < 2; ++t)
    for (int i = 0; i < 32; ++i)
      EXPECT_NEAR(std::hypot(x[static_cast<std::size_t>(t * 64 + i)],
                             x[static_cast<std::size_t>(t * 64 + i + 32)]),
                  std::hypot(0.25, 0.25), 1e-6);
}

// Positions of every kind reach the table: offsets with a batch, ragged sequences.
TEST(GgmlNumerics, BatchesAndRaggedSequences) {
  RopeConfig c = base_config(64, 64, PairLayout::kHalf, 10000.0);
  const FrequencyPlan plan = build_frequency_plan(c, std::nullopt, Numerics::llama_cpp());
  const std::int64_t seq = 5, batch = 3;
  std::vector<float> x(static_cast<std::size_t>(batch * seq * 64), 0.0f);
  for (std::size_t t = 0; t < static_cast<std::size_t>(batch * seq); ++t) x[t * 64] = 1.0f;
  TensorView q = TensorView::contiguous(x.data(), DType::kF32, seq, 1, 64);
  q.batch = batch;
  q.stride_batch = seq * 64;
  std::vector<float> a = x;
  q.data = a.data();
  apply_rope(plan, q, TensorView{}, Positions::offset(100), preset_options(Backend::kAuto));
  for (std::int64_t t = 0; t < batch * seq; ++t) {
    const std::int64_t p = 100 + t % seq;
    EXPECT_EQ(a[static_cast<std::size_t>(t * 64)], ggml_loop(*plan.ggml, {p, p, p, p}).c[0]);
    EXPECT_EQ(a[static_cast<std::size_t>(t * 64 + 32)], ggml_loop(*plan.ggml, {p, p, p, p}).s[0]);
  }
  std::vector<float> b = x;
  const TensorView flat = TensorView::contiguous(b.data(), DType::kF32, batch * seq, 1, 64);
  const std::vector<std::int64_t> indptr = {0, 4, 4, 15}, offsets = {7, 0, 123456};
  apply_rope(plan, flat, TensorView{}, Positions::per_sequence(indptr, offsets),
             preset_options(Backend::kAuto));
  for (std::int64_t t = 0; t < batch * seq; ++t) {
    const std::int64_t p = t < 4 ? 7 + t : 123456 + (t - 4);
    EXPECT_EQ(b[static_cast<std::size_t>(t * 64 + 32)], ggml_loop(*plan.ggml, {p, p, p, p}).s[0])
        << t;
  }
}

// A long call's table is built on several threads (rows per position for a prefill, per token
// for scattered positions and for M-RoPE rows): the same values as ggml's loop everywhere.
TEST(GgmlNumerics, LongCallsBuildTheTableOnThePool) {
  ThreadPool pool(4);
  for (const Case& k : cases()) {
    SCOPED_TRACE(k.name);
    const FrequencyPlan plan = build_frequency_plan(k.config, std::nullopt, Numerics::llama_cpp());
    const GgmlRopeParams& g = *plan.ggml;
    const int pairs = plan.rotary_dim / 2;
    const std::int64_t tokens = 3000, head = plan.head_dim;
    std::vector<std::int64_t> scattered;
    for (std::int64_t t = 0; t < tokens * std::max(k.rows, 1); ++t)
      scattered.push_back((t * 7919) % 1000003 - 500);
    for (const bool prefill : {true, false}) {
      if (prefill && k.rows > 0) continue;
      std::vector<float> x(static_cast<std::size_t>(tokens * head), 0.0f);
      for (std::int64_t t = 0; t < tokens; ++t)
        for (int i = 0; i < pairs; ++i)
          x[static_cast<std::size_t>(t * head + partners(g, i).first)] = 1.0f;
      ApplyOptions o = preset_options(Backend::kAuto);
      o.pool = &pool;
      apply_rope(plan, TensorView::contiguous(x.data(), DType::kF32, tokens, 1, head), TensorView{},
                 prefill ? Positions::offset(1000) : positions_of(scattered, k.rows, tokens), o);
      for (std::int64_t t = 0; t < tokens; t += 97) {
        const Pos4 s = prefill ? Pos4{1000 + t, 1000 + t, 1000 + t, 1000 + t}
                               : streams_of(scattered, k.rows, tokens, t);
        const RefCache ref = ggml_loop(g, s);
        for (int i = 0; i < pairs; ++i) {
          ASSERT_EQ(x[static_cast<std::size_t>(t * head + partners(g, i).first)],
                    ref.c[static_cast<std::size_t>(i)])
              << t << " " << i;
          ASSERT_EQ(x[static_cast<std::size_t>(t * head + partners(g, i).second)],
                    ref.s[static_cast<std::size_t>(i)])
              << t << " " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace ropekit
