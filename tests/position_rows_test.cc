// Position rows beyond M-RoPE: XD-RoPE (HunyuanOCR / HunYuan-VL) read from its config and
// applied with four rows, against a re-implementation of vLLM's XDRotaryEmbedding written here;
// the row-count checks of apply_rope.
#include <gtest/gtest.h>

#include <cmath>
#include <variant>

#include "ropekit/ropekit.h"
#include "rotation_check.h"
#include "test_util.h"

namespace ropekit {
namespace {

ModelRope hunyuan_ocr() { return load_hf_config(test::data_path("models/hunyuanocr.json")); }

TEST(XdRope, ConfigReadsSectionsAndAlpha) {
  const ModelRope m = hunyuan_ocr();
  EXPECT_TRUE(m.warnings.empty()) << m.warnings.front().path << ": " << m.warnings.front().message;
  const RopeConfig& c = m.layers.at(0);
  ASSERT_TRUE(c.xdrope);
  EXPECT_EQ(c.xdrope->section, (std::vector<int>{16, 16, 16, 16}));
  EXPECT_FALSE(c.mrope);
  const auto& s = std::get<DynamicNtkScaling>(c.scaling);
  ASSERT_TRUE(s.alpha);
  EXPECT_EQ(*s.alpha, 1000.0);
  const FrequencyPlan p = build_frequency_plan(c);
  EXPECT_EQ(p.position_rows, 4);
  ASSERT_EQ(p.pair_axis.size(), 64u);
  for (int k = 0; k < 64; ++k) EXPECT_EQ(p.pair_axis[static_cast<std::size_t>(k)], k / 16) << k;
}

TEST(XdRope, TransformersV5FormWithFourEntryMropeSection) {
  // transformers v5 saves xdrope as rope_type "dynamic" with a 4-entry mrope_section.
  const ModelRope m =
      parse_hf_config(R"({"model_type":"hunyuan_vl","head_dim":128,"hidden_size":1024,
    "num_attention_heads":16,"max_position_embeddings":131072,
    "rope_parameters":{"rope_type":"dynamic",
    "rope_theta":10000.0,"alpha":1000.0,"mrope_section":[16,16,16,16]}})");
  ASSERT_TRUE(m.layers.at(0).xdrope);
  EXPECT_EQ(build_frequency_plan(m.layers.at(0)).pair_axis,
            build_frequency_plan(hunyuan_ocr().layers.at(0)).pair_axis);
}

TEST(XdRope, BadSectionsAreConfigErrors) {
  for (const char* sec : {"[16,16,16]", "[16,16,16,15]", "[8,8,8,8,32]", "[16,16,-1,33]"}) {
    SCOPED_TRACE(sec);
    try {
      parse_hf_config(std::string(R"({"model_type":"hunyuan_vl","head_dim":128,"hidden_size":1024,
        "num_attention_heads":16,"max_position_embeddings":4096,
        "rope_parameters":{"rope_type":"xdrope",
        "rope_theta":10000.0,"alpha":1000.0,"xdrope_section":)") +
                      sec + "}}");
      FAIL() << "expected a ConfigError";
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.path().rfind("rope_parameters.xdrope_section", 0), 0u) << e.path();
    }
  }
}

// vLLM XDRotaryEmbedding: base = theta * alpha ** (rd / (rd - 2)), inv_freq = 1 / base **
// (arange(0, rd, 2) / rd); cos/sin of the [4, tokens] positions split by xdrope_section along
// the pairs, section j taken from row j.
TEST(XdRope, ApplyMatchesFloat64RotationWithFourRows) {
  const FrequencyPlan plan = build_frequency_plan(hunyuan_ocr().layers.at(0));
  test::RotationCase c;
  c.head_dim = 128;
  const double base = 10000.0 * std::pow(1000.0, 128.0 / 126.0);
  for (int i = 0; i < 128; i += 2) {
    const float want = static_cast<float>(1.0 / std::pow(base, i / 128.0));
    ASSERT_LE(test::ulps(plan.inv_freq[static_cast<std::size_t>(i / 2)], want), 1.0) << i;
  }
  c.inv_freq = plan.inv_freq;
  for (int k = 0; k < 64; ++k) c.pair_row.push_back(k / 16);
  c.tokens = 5;
  c.rows = {7, 8, 9, 10, 11,      // row 0 (P)
            0, 1, 2, 3,  40000,   // row 1
            5, 5, 6, 6,  131071,  // row 2
            1, 0, 3, 2,  9};      // row 3
  for (const bool i32 : {false, true}) {
    std::vector<std::int32_t> rows32(c.rows.begin(), c.rows.end());
    test::check_rotation(c, [&](const TensorView& q, const ApplyOptions& o) {
      const Positions pos =
          i32 ? Positions::rows(std::span<const std::int32_t>(rows32), c.tokens, 4)
              : Positions::rows(std::span<const std::int64_t>(c.rows), c.tokens, 4);
      apply_rope(plan, q, TensorView{}, pos, o);
    });
  }
}

TEST(PositionRows, RowCountMustMatchThePlan) {
  const FrequencyPlan plan = build_frequency_plan(hunyuan_ocr().layers.at(0));
  std::vector<float> q(2 * 128, 0.5f);
  const TensorView qv = TensorView::contiguous(q.data(), DType::kF32, 2, 1, 128);
  std::vector<std::int64_t> three(6, 1);
  try {
    apply_rope(plan, qv, TensorView{}, Positions::mrope(std::span<const std::int64_t>(three), 2));
    FAIL() << "expected an ArgumentError";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("4 position rows"), std::string::npos) << e.what();
  }
  std::vector<std::int64_t> four(8, 1);
  EXPECT_NO_THROW(apply_rope(plan, qv, TensorView{},
                             Positions::rows(std::span<const std::int64_t>(four), 2, 4)));
}

// Every row count 1 to 4 and a random pair -> row map: the SIMD backend agrees with the
// reference (tests/simd_test.cc covers every compiled target).
TEST(PositionRows, AnyRowCountAgreesWithTheFloat64Rotation) {
  std::mt19937 rng(7);
  for (int rows = 1; rows <= 4; ++rows) {
    SCOPED_TRACE(rows);
    FrequencyPlan plan;
    plan.head_dim = 64;
    plan.rotary_dim = 48;
    plan.layout = rows % 2 ? PairLayout::kHalf : PairLayout::kInterleaved;
    test::RotationCase c;
    c.head_dim = 64;
    c.layout = plan.layout;
    for (int i = 0; i < 24; ++i) {
      plan.inv_freq.push_back(static_cast<float>(std::pow(10000.0, -2.0 * i / 48)));
      plan.pair_axis.push_back(static_cast<std::uint8_t>(rng() % static_cast<unsigned>(rows)));
      c.pair_row.push_back(plan.pair_axis.back());
    }
    plan.position_rows = rows;
    c.inv_freq = plan.inv_freq;
    c.tokens = 9;
    for (int i = 0; i < rows * 9; ++i)
      c.rows.push_back(static_cast<std::int64_t>(rng() % 100000) - 500);
    test::check_rotation(c, [&](const TensorView& q, const ApplyOptions& o) {
      apply_rope(plan, q, TensorView{},
                 Positions::rows(std::span<const std::int64_t>(c.rows), c.tokens, rows), o);
    });
  }
}

}  // namespace
}  // namespace ropekit
