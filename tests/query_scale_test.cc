// Llama 4's attention-temperature tuning (ropekit/query_scale.h): the per-position query scale of
// the NoPE layers, against a re-implementation of transformers' Llama4TextAttention expression
// (`log(floor((cache_position + 1) / floor_scale) + 1) * attn_scale + 1`, then
// `(query * scale).to(query.dtype)`), and the config keys that turn it on.
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ropekit/dtype.h"
#include "ropekit/error.h"
#include "ropekit/hf_config.h"
#include "ropekit/query_scale.h"
#include "test_util.h"

namespace ropekit {
namespace {

// The reference expression in double, in transformers' order of operations.
double ref_scale(std::int64_t p, double floor_scale = 8192.0, double attn_scale = 0.1) {
  return std::log(std::floor((static_cast<double>(p) + 1.0) / floor_scale) + 1.0) * attn_scale +
         1.0;
}
// The same chain in float32, as torch evaluates it on a float32 cache_position.
float ref_scale_f32(std::int64_t p, float floor_scale = 8192.0f, float attn_scale = 0.1f) {
  const float k = std::floor((static_cast<float>(p) + 1.0f) / floor_scale);
  return std::log(k + 1.0f) * attn_scale + 1.0f;
}
double ulp_f32(float v) {
  return std::nextafter(v, std::numeric_limits<float>::infinity()) - static_cast<double>(v);
}

const std::vector<std::int64_t> kPositions = {
    0,     1,      8190,    8191,          8192,      16382,      16383,     16384,
    24575, 100000, 1 << 20, (1 << 24) - 1, 123456789, 2147483646, 2147483647};

TEST(QueryScale, MatchesTheReferenceExpressionWithinOneUlp) {
  for (const std::int64_t p : kPositions) {
    const float got = query_position_scale(QueryPositionScale{}, p);
    const double want = ref_scale(p);
    EXPECT_LE(std::abs(got - want), 0.5 * ulp_f32(got)) << p;  // double, rounded once
    // transformers' float32 chain: within 1 ulp while float32(p + 1) is exact (p < 2^24).
    if (p < (1 << 24)) {
      EXPECT_LE(std::abs(got - ref_scale_f32(p)), ulp_f32(got)) << p;
    }
  }
  // Past 2^24, float32(p) + 1 rounds: at p = 2^31 − 2 transformers' floor reaches the next
  // multiple of 8192 one token early; ropekit floors the exact quotient (documented).
  EXPECT_EQ(ref_scale_f32(2147483646), static_cast<float>(1.0 + 0.1 * std::log(262145.0)));
  EXPECT_EQ(query_position_scale(QueryPositionScale{}, 2147483646),
            static_cast<float>(1.0 + 0.1 * std::log(262144.0)));
}

TEST(QueryScale, IsOneBelowTheFirstFloorAndStepsAtEachMultiple) {
  const QueryPositionScale s;  // floor_scale 8192, attn_scale 0.1, offset 1 (Llama 4)
  EXPECT_EQ(query_position_scale(s, 0), 1.0f);
  EXPECT_EQ(query_position_scale(s, 8190), 1.0f);  // (8190 + 1) / 8192 < 1
  EXPECT_EQ(query_position_scale(s, 8191), static_cast<float>(1.0 + 0.1 * std::log(2.0)));
  EXPECT_EQ(query_position_scale(s, 16382), query_position_scale(s, 8191));
  EXPECT_EQ(query_position_scale(s, 16383), static_cast<float>(1.0 + 0.1 * std::log(3.0)));
  // Other constants: a non-power-of-two floor and position offset 0.
  const QueryPositionScale t{1000.0, 0.25, 0};
  EXPECT_EQ(query_position_scale(t, 999), 1.0f);
  EXPECT_EQ(query_position_scale(t, 1000), static_cast<float>(1.0 + 0.25 * std::log(2.0)));
  EXPECT_EQ(query_position_scale(t, 2147483647),
            static_cast<float>(1.0 + 0.25 * std::log1p(std::floor(2147483647.0 / 1000.0))));
}

// Every element of q: one float32 product with the float32 scale, rounded once to the dtype.
void expect_scaled(DType dt) {
  const int tokens = static_cast<int>(kPositions.size()), heads = 3, hd = 10;
  std::vector<double> x(static_cast<std::size_t>(tokens) * heads * hd);
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = round_to_dtype(dt, 3.0 * std::sin(0.37 * static_cast<double>(i) + 0.1));
  std::vector<unsigned char> buf(x.size() * static_cast<std::size_t>(dtype_size(dt)));
  for (std::size_t i = 0; i < x.size(); ++i)
    store_from_double(dt, buf.data() + i * dtype_size(dt), x[i]);
  scale_queries(QueryPositionScale{}, TensorView::contiguous(buf.data(), dt, tokens, heads, hd),
                Positions::per_token(std::span<const std::int64_t>(kPositions)));
  for (int t = 0; t < tokens; ++t) {
    const float s = static_cast<float>(ref_scale(kPositions[static_cast<std::size_t>(t)]));
    for (int e = 0; e < heads * hd; ++e) {
      const std::size_t i = static_cast<std::size_t>(t) * heads * hd + e;
      const double want = round_to_dtype(dt, static_cast<float>(x[i]) * s);
      EXPECT_EQ(load_as_double(dt, buf.data() + i * dtype_size(dt)), want)
          << dtype_name(dt) << " token " << t << " element " << e;
    }
  }
}
TEST(QueryScale, ScalesF32) { expect_scaled(DType::kF32); }
TEST(QueryScale, ScalesBF16) { expect_scaled(DType::kBF16); }
TEST(QueryScale, ScalesF16) { expect_scaled(DType::kF16); }

// Ministral 3: the scale is rounded to q's dtype first, then one rounding of the product.
TEST(QueryScale, ScaleInQueryDtypeRoundsTheScaleFirst) {
  const QueryPositionScale s{8192.0, 0.1, 0, true};
  const std::vector<std::int64_t> pos{0, 8191, 8192, 100000, 2147483647};
  for (const DType dt : {DType::kBF16, DType::kF16, DType::kF32}) {
    std::vector<unsigned char> buf(pos.size() * 3 * static_cast<std::size_t>(dtype_size(dt)));
    std::vector<double> x(pos.size() * 3);
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = round_to_dtype(dt, 1.0 + 0.37 * static_cast<double>(i));
      store_from_double(dt, buf.data() + i * dtype_size(dt), x[i]);
    }
    scale_queries(s, TensorView::contiguous(buf.data(), dt, 5, 1, 3),
                  Positions::per_token(std::span<const std::int64_t>(pos)));
    for (std::size_t i = 0; i < x.size(); ++i) {
      // transformers: 1 + beta·log(1 + floor(p / 8192)), .to(q.dtype), q · scale in q's dtype.
      const double p = static_cast<double>(pos[i / 3]);
      const double sd = round_to_dtype(
          dt, static_cast<float>(1.0 + 0.1 * std::log(1.0 + std::floor(p / 8192.0))));
      EXPECT_EQ(load_as_double(dt, buf.data() + i * dtype_size(dt)), round_to_dtype(dt, x[i] * sd))
          << dtype_name(dt) << " " << i;
    }
  }
  EXPECT_EQ(query_position_scale(s, 8191), 1.0f);  // offset 0: the step is at p = 8192
  EXPECT_EQ(query_position_scale(s, 8192), static_cast<float>(1.0 + 0.1 * std::log(2.0)));
}

TEST(QueryScale, OffsetPerSequenceAndBatchedStridedViews) {
  // [batch 2][heads 2][seq 3][hd 4] (heads before tokens), offset 8190: every sequence has
  // positions 8190, 8191, 8192.
  const int batch = 2, heads = 2, seq = 3, hd = 4;
  std::vector<float> q(static_cast<std::size_t>(batch) * heads * seq * hd, 2.0f);
  TensorView v{q.data(), DType::kF32, seq, heads, hd, hd, seq * hd, 1};
  v.batch = batch;
  v.stride_batch = heads * seq * hd;
  scale_queries(QueryPositionScale{}, v, Positions::offset(8190));
  for (int b = 0; b < batch; ++b)
    for (int h = 0; h < heads; ++h)
      for (int t = 0; t < seq; ++t)
        for (int d = 0; d < hd; ++d)
          EXPECT_EQ(q[static_cast<std::size_t>(((b * heads + h) * seq + t) * hd + d)],
                    2.0f * static_cast<float>(ref_scale(8190 + t)));
  // Ragged: sequences of 2 and 1 tokens at offsets 0 and 16383.
  std::vector<float> r(3 * 1 * 2, 1.0f);
  const std::vector<std::int64_t> indptr{0, 2, 3}, offsets{0, 16383};
  scale_queries(QueryPositionScale{}, TensorView::contiguous(r.data(), DType::kF32, 3, 1, 2),
                Positions::per_sequence(indptr, offsets));
  EXPECT_EQ(r[0], 1.0f);
  EXPECT_EQ(r[2], 1.0f);
  EXPECT_EQ(r[4], static_cast<float>(ref_scale(16383)));
}

TEST(QueryScale, ErrorsNameTheArgument) {
  std::vector<float> q(4, 1.0f);
  const TensorView v = TensorView::contiguous(q.data(), DType::kF32, 2, 1, 2);
  auto message = [&](auto&& call) {
    try {
      call();
    } catch (const ArgumentError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::vector<std::int64_t> neg{0, -1};
  EXPECT_NE(message([&] {
              scale_queries(QueryPositionScale{}, v, Positions::per_token(std::span(neg)));
            }).find("positions[1]"),
            std::string::npos);
  const std::vector<std::int64_t> rows{0, 1, 0, 1, 0, 1};
  EXPECT_NE(message([&] {
              scale_queries(QueryPositionScale{}, v, Positions::mrope(std::span(rows), 2));
            }).find("3 position rows"),
            std::string::npos);
  EXPECT_NE(message([&] {
              scale_queries(QueryPositionScale{0.0, 0.1, 1}, v, Positions::offset(0));
            }).find("floor_scale"),
            std::string::npos);
  EXPECT_NE(message([&] {
              (void)query_position_scale(QueryPositionScale{}, 2147483648LL);
            }).find("position"),
            std::string::npos);
  EXPECT_EQ(q, std::vector<float>(4, 1.0f));  // nothing written by a refused call
}

// ---- config keys ----------------------------------------------------------------------------

TEST(QueryScaleConfig, Llama4ScoutTurnsItOnForItsNoPELayers) {
  const ModelRope m = load_hf_config(test::data_path("models/llama-4-scout-17b-16e.json"));
  ASSERT_TRUE(m.query_scale.has_value());
  EXPECT_EQ(m.query_scale->floor_scale, 8192.0);
  EXPECT_EQ(m.query_scale->attn_scale, 0.1);
  EXPECT_EQ(m.query_scale->position_offset, 1);
  ASSERT_EQ(m.layer_scales_queries.size(), 48u);
  for (std::size_t i = 0; i < 48; ++i)
    EXPECT_EQ(m.layer_scales_queries[i], (i + 1) % 4 == 0) << i;  // exactly the NoPE layers
}

TEST(QueryScaleConfig, Ministral3ScalesEveryLayerWithItsBeta) {
  const ModelRope m = load_hf_config(test::data_path("models/devstral-small-2-24b-instruct.json"));
  ASSERT_TRUE(m.query_scale.has_value());
  EXPECT_EQ(m.query_scale->attn_scale, 0.1);      // llama_4_scaling_beta
  EXPECT_EQ(m.query_scale->floor_scale, 8192.0);  // original_max_position_embeddings
  EXPECT_EQ(m.query_scale->position_offset, 0);
  EXPECT_TRUE(m.query_scale->scale_in_query_dtype);
  EXPECT_EQ(m.layer_scales_queries, std::vector<bool>(40, true));
  EXPECT_TRUE(m.warnings.empty());  // the key is read, not reported as unknown
  // A Mistral (not Ministral 3) text tower does not read the key.
  const ModelRope mistral =
      parse_hf_config(R"({"model_type":"mistral","hidden_size":64,"num_attention_heads":1,)"
                      R"("rope_parameters":{"rope_type":"default","rope_theta":10000.0,)"
                      R"("llama_4_scaling_beta":0.1}})");
  EXPECT_FALSE(mistral.query_scale);
  try {
    (void)parse_hf_config(R"({"model_type":"ministral3","hidden_size":64,"num_attention_heads":1,)"
                          R"("rope_parameters":{"rope_type":"default","rope_theta":10000.0,)"
                          R"("llama_4_scaling_beta":0.1}})");
    ADD_FAILURE() << "no original_max_position_embeddings";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("original_max_position_embeddings"), std::string::npos);
  }
}

std::string llama4(const std::string& extra) {
  return R"({"model_type":"llama4_text","hidden_size":64,"num_attention_heads":1,)"
         R"("num_hidden_layers":4,"max_position_embeddings":4096,"rope_theta":500000.0)" +
         extra + "}";
}

TEST(QueryScaleConfig, KeysDefaultsAndErrors) {
  // Absent: transformers' Llama4TextConfig defaults (on, 8192, 0.1); layer 3 is NoPE.
  const ModelRope d = parse_hf_config(llama4(""));
  ASSERT_TRUE(d.query_scale.has_value());
  EXPECT_EQ(d.layer_scales_queries, (std::vector<bool>{false, false, false, true}));
  const ModelRope c = parse_hf_config(
      llama4(R"(,"attn_temperature_tuning":true,"floor_scale":31,"attn_scale":0.2)"));
  EXPECT_EQ(c.query_scale->floor_scale, 31.0);
  EXPECT_EQ(c.query_scale->attn_scale, 0.2);
  EXPECT_FALSE(parse_hf_config(llama4(R"(,"attn_temperature_tuning":0)")).query_scale);
  EXPECT_FALSE(parse_hf_config(llama4(R"(,"attn_temperature_tuning":false)")).query_scale);
  EXPECT_FALSE(parse_hf_config(R"({"model_type":"llama","hidden_size":64,)"
                               R"("num_attention_heads":1,"attn_temperature_tuning":true})")
                   .query_scale);
  for (const auto& [json, path] :
       {std::pair{llama4(R"(,"attn_temperature_tuning":"yes")"), "attn_temperature_tuning"},
        std::pair{llama4(R"(,"floor_scale":0)"), "floor_scale"},
        std::pair{llama4(R"(,"floor_scale":-8192)"), "floor_scale"}}) {
    try {
      (void)parse_hf_config(json);
      ADD_FAILURE() << json;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace ropekit
