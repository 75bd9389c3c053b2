// Model-family conventions of the config parser, on configs in the shape released models ship
// (values from their published config.json files; see docs/variants.md "Model families").
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <variant>

#include "ropekit/ropekit.h"

namespace ropekit {
namespace {

bool has_warning(const ModelRope& m, const std::string& needle) {
  for (const auto& w : m.warnings)
    if ((w.path + ": " + w.message).find(needle) != std::string::npos) return true;
  return false;
}

TEST(ConfigFamilies, GptNeoxRotaryPctAndBase) {
  // EleutherAI/pythia-1.4b: rotary_pct 0.25, rotary_emb_base 10000
  const auto m =
      parse_hf_config(R"({"model_type":"gpt_neox","hidden_size":2048,"num_attention_heads":16,
    "rotary_pct":0.25,"rotary_emb_base":10000,"max_position_embeddings":2048})");
  const auto& c = m.layers.at(0);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.rotary_dim, 32);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.layout, PairLayout::kHalf);
}

TEST(ConfigFamilies, PhiDefaultsToHalfRotary) {
  const auto m = parse_hf_config(R"({"model_type":"phi","hidden_size":2048,"num_attention_heads":32,
    "max_position_embeddings":2048})");
  EXPECT_EQ(m.layers[0].head_dim, 64);
  EXPECT_EQ(m.layers[0].rotary_dim, 32);
}

std::string factors(int n, double v) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += (i ? "," : "") + std::to_string(v + 0.01 * i);
  return s + "]";
}

TEST(ConfigFamilies, Phi3LegacySuIsLongropeWithTopLevelOriginal) {
  // Phi-3-mini-128k-instruct (first release): "type": "su", top-level original 4096
  const std::string cfg = R"({"model_type":"phi3","hidden_size":3072,"num_attention_heads":32,
    "max_position_embeddings":131072,"original_max_position_embeddings":4096,"rope_theta":10000.0,
    "rope_scaling":{"type":"su","short_factor":)" +
                          factors(48, 1.0) + R"(,"long_factor":)" + factors(48, 2.0) + "}}";
  const auto m = parse_hf_config(cfg);
  const auto& c = m.layers.at(0);
  const auto* l = std::get_if<LongRopeScaling>(&c.scaling);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->original_max_position_embeddings, 4096);
  // attention factor sqrt(1 + ln 32 / ln 4096), short below the switch, long above
  const auto short_plan = build_frequency_plan(c, 4096);
  const auto long_plan = build_frequency_plan(c, 4097);
  EXPECT_NEAR(short_plan.attention_factor, std::sqrt(1 + std::log(32.0) / std::log(4096.0)), 1e-12);
  EXPECT_FALSE(short_plan.info.uses_long_factor);
  EXPECT_TRUE(long_plan.info.uses_long_factor);
  EXPECT_NEAR(long_plan.inv_freq[1], std::pow(10000.0, -2.0 / 96) / 2.01, 1e-7);
  // mlx-lm's policy: long factors at every length
  EXPECT_TRUE(build_frequency_plan(c, 8, SeqLenPolicy::kMlxLm).info.uses_long_factor);
}

TEST(ConfigFamilies, Gemma3LegacyLocalGlobal) {
  // google/gemma-3-4b-it text_config (legacy layout): linear 8 on global layers only
  const auto m =
      parse_hf_config(R"({"model_type":"gemma3_text","hidden_size":2560,"num_attention_heads":8,
    "head_dim":256,"rope_theta":1000000.0,"rope_local_base_freq":10000.0,
    "rope_scaling":{"factor":8.0,"rope_type":"linear"},"max_position_embeddings":131072})");
  ASSERT_EQ(m.layers.size(), 2u);
  const auto& full = m.layer("full_attention");
  const auto& local = m.layer("sliding_attention");
  EXPECT_EQ(full.rope_theta, 1e6);
  EXPECT_TRUE(std::holds_alternative<LinearScaling>(full.scaling));
  EXPECT_EQ(local.rope_theta, 1e4);
  EXPECT_TRUE(std::holds_alternative<DefaultScaling>(local.scaling));
  EXPECT_THROW((void)m.layer("nope"), ArgumentError);
}

TEST(ConfigFamilies, DeepSeekRotatesQkRopeHeadDimInterleaved) {
  const std::string base =
      R"({"model_type":"deepseek_v3","hidden_size":7168,"num_attention_heads":128,
    "qk_nope_head_dim":128,"qk_rope_head_dim":64,"max_position_embeddings":163840,"rope_theta":10000,
    "rope_scaling":{"beta_fast":32,"beta_slow":1,"factor":40,"mscale":1.0,"mscale_all_dim":1.0,
    "original_max_position_embeddings":4096,"type":"yarn"})";
  const auto m = parse_hf_config(base + "}");
  const auto& c = m.layers[0];
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.rotary_dim, 64);
  EXPECT_EQ(c.layout, PairLayout::kInterleaved);
  const auto p = build_frequency_plan(c);
  EXPECT_DOUBLE_EQ(p.attention_factor, 1.0);  // mscale / mscale_all_dim
  const double m_all = 0.1 * std::log(40.0) + 1.0;
  EXPECT_NEAR(p.info.softmax_scale_multiplier, m_all * m_all, 1e-12);  // 1.8738542070926265
  EXPECT_EQ(parse_hf_config(base + R"(,"rope_interleave":false})").layers[0].layout,
            PairLayout::kHalf);
}

TEST(ConfigFamilies, Llama4ScoutInterleavedEqualBandFactors) {
  // meta-llama/Llama-4-Scout-17B-16E: llama3 with low_freq_factor == high_freq_factor == 1
  const auto m =
      parse_hf_config(R"({"model_type":"llama4_text","hidden_size":5120,"num_attention_heads":40,
    "head_dim":128,"rope_theta":500000.0,"max_position_embeddings":10485760,
    "rope_scaling":{"factor":16.0,"high_freq_factor":1.0,"low_freq_factor":1.0,
    "original_max_position_embeddings":8192,"rope_type":"llama3"}})");
  const auto& c = m.layers[0];
  EXPECT_EQ(c.layout, PairLayout::kInterleaved);
  EXPECT_TRUE(c.hf_rounds_once);
  EXPECT_TRUE(has_warning(m, "high_freq_factor == low_freq_factor"));
  const auto p = build_frequency_plan(c);
  // every pair is either kept (wavelength < 8192) or divided by 16, no blend
  const auto base = unscaled_inv_freq(c);
  for (std::size_t i = 0; i < p.inv_freq.size(); ++i) {
    const double wl = 2 * std::numbers::pi / base[i];
    const double want = wl > 8192 ? base[i] / 16 : base[i];
    EXPECT_NEAR(p.inv_freq[i], want, want * 1e-7) << i;
  }
}

TEST(ConfigFamilies, GptOssYarnTruncateFalse) {
  // openai/gpt-oss-20b: yarn factor 32, original 4096, beta 32/1, truncate false, theta 150000
  const std::string cfg =
      R"({"model_type":"gpt_oss","hidden_size":2880,"num_attention_heads":64,"head_dim":64,
    "max_position_embeddings":131072,"rope_theta":150000,
    "rope_scaling":{"beta_fast":32.0,"beta_slow":1.0,"factor":32.0,"original_max_position_embeddings":4096,
    "rope_type":"yarn","truncate":TRUNC}})";
  auto with = [&](const char* t) {
    std::string s = cfg;
    s.replace(s.find("TRUNC"), 5, t);
    return build_frequency_plan(parse_hf_config(s).layers[0]);
  };
  const auto untruncated = with("false"), truncated = with("true");
  // fractional correction range: low = 8.09, high = 17.40 (vs 8 and 18)
  const double d = 64, theta = 150000;
  auto corr = [&](double r) {
    return d * std::log(4096 / (r * 2 * std::numbers::pi)) / (2 * std::log(theta));
  };
  const double low = corr(32), high = corr(1);
  EXPECT_NEAR(low, 8.09, 0.01);
  EXPECT_NEAR(high, 17.40, 0.01);
  int differ = 0;
  for (int i = 0; i < 32; ++i) {
    const double base = std::pow(theta, -2.0 * i / d);
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    const double want = base / 32 * ramp + base * (1 - ramp);
    EXPECT_NEAR(untruncated.inv_freq[static_cast<std::size_t>(i)], want, want * 2e-7) << i;
    differ += untruncated.inv_freq[static_cast<std::size_t>(i)] !=
              truncated.inv_freq[static_cast<std::size_t>(i)];
  }
  EXPECT_EQ(differ, 9);  // 9 of 32 frequencies differ (reference-semantics.md)
  EXPECT_NEAR(untruncated.attention_factor, 0.1 * std::log(32.0) + 1, 1e-12);
}

TEST(ConfigFamilies, Qwen35PartialRotaryInterleavedMRope) {
  const auto m =
      parse_hf_config(R"({"model_type":"qwen3_5","text_config":{"model_type":"qwen3_5_text",
    "head_dim":256,"hidden_size":4096,"num_attention_heads":16,"max_position_embeddings":262144,
    "rope_parameters":{"rope_type":"default","rope_theta":10000000,"partial_rotary_factor":0.25,
    "mrope_section":[11,11,10],"mrope_interleaved":true}}})");
  const auto& c = m.layers.at(0);
  EXPECT_EQ(c.rotary_dim, 64);
  ASSERT_TRUE(c.mrope);
  EXPECT_EQ(c.mrope->assignment, MRopeAssignment::kInterleavedThw);
  const auto p = build_frequency_plan(c);
  ASSERT_EQ(p.pair_axis.size(), 32u);
  EXPECT_EQ(p.pair_axis[0], 0);
  EXPECT_EQ(p.pair_axis[1], 1);
  EXPECT_EQ(p.pair_axis[2], 2);
  EXPECT_EQ(p.pair_axis[29], 2);  // 29 % 3 == 2 and 29 < 3·10
  EXPECT_EQ(p.pair_axis[30], 0);
  EXPECT_EQ(p.pair_axis[31], 1);  // 31 % 3 == 1 and 31 < 3·11
}

TEST(ConfigFamilies, Glm41vSectionsOverInterleavedPairs) {
  const auto m = parse_hf_config(R"({"model_type":"glm4v","text_config":{"model_type":"glm4v_text",
    "hidden_size":4096,"num_attention_heads":32,"max_position_embeddings":65536,"rope_theta":10000,
    "partial_rotary_factor":0.5,"rope_scaling":{"type":"default","mrope_section":[8,12,12]}}})");
  const auto& c = m.layers.at(0);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.rotary_dim, 64);
  EXPECT_EQ(c.layout, PairLayout::kInterleaved);
  ASSERT_TRUE(c.mrope);
  EXPECT_EQ(c.mrope->assignment, MRopeAssignment::kSections);
  const auto p = build_frequency_plan(c);
  EXPECT_EQ(p.pair_axis[7], 0);
  EXPECT_EQ(p.pair_axis[8], 1);
  EXPECT_EQ(p.pair_axis[19], 1);
  EXPECT_EQ(p.pair_axis[20], 2);
}

TEST(ConfigFamilies, ErnieVlHwAlternatingTLast) {
  const auto m = parse_hf_config(
      R"({"model_type":"ernie4_5_vl_moe","hidden_size":2560,"num_attention_heads":20,
    "head_dim":128,"max_position_embeddings":131072,"rope_theta":500000,
    "rope_scaling":{"type":"default","mrope_section":[22,22,20]}})");
  const auto& c = m.layers.at(0);
  EXPECT_EQ(c.layout, PairLayout::kInterleaved);
  EXPECT_TRUE(c.hf_rounds_once);
  const auto p = build_frequency_plan(c);
  EXPECT_EQ(p.pair_axis[0], 1);
  EXPECT_EQ(p.pair_axis[1], 2);
  EXPECT_EQ(p.pair_axis[43], 2);
  EXPECT_EQ(p.pair_axis[44], 0);
  EXPECT_EQ(p.pair_axis[63], 0);
}

TEST(ConfigFamilies, FlatRopeParametersV5AndPrecedence) {
  const auto m =
      parse_hf_config(R"({"model_type":"llama","hidden_size":4096,"num_attention_heads":32,
    "max_position_embeddings":131072,"rope_theta":1.0,
    "rope_parameters":{"rope_type":"llama3","type":"linear","rope_theta":500000.0,"factor":8.0,
    "low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}})");
  const auto& c = m.layers.at(0);
  EXPECT_EQ(c.rope_theta, 500000.0);                              // the dict's theta wins
  EXPECT_TRUE(std::holds_alternative<Llama3Scaling>(c.scaling));  // rope_type wins over type
  EXPECT_TRUE(has_warning(m, "rope_type \"llama3\" and type \"linear\" disagree"));
  EXPECT_TRUE(has_warning(m, "rope_theta differs"));
}

TEST(ConfigFamilies, HeadDimNullIsDerivedAndYarnFactorNullIsRatio) {
  const auto m =
      parse_hf_config(R"({"model_type":"qwen2","hidden_size":3584,"num_attention_heads":28,
    "head_dim":null,"max_position_embeddings":131072,"rope_theta":1000000.0,
    "rope_scaling":{"type":"yarn","factor":null,"original_max_position_embeddings":32768}})");
  const auto& c = m.layers.at(0);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_DOUBLE_EQ(std::get<YarnScaling>(c.scaling).factor, 4.0);
}

TEST(ConfigFamilies, DynamicNtkGrowsOnlyPastMaxPosition) {
  const auto m =
      parse_hf_config(R"({"model_type":"internlm2","hidden_size":4096,"num_attention_heads":32,
    "max_position_embeddings":32768,"rope_theta":1000000,"rope_scaling":{"type":"dynamic","factor":2.0}})");
  const auto& c = m.layers[0];
  EXPECT_EQ(build_frequency_plan(c, 32768).inv_freq, build_frequency_plan(c).inv_freq);
  const auto grown = build_frequency_plan(c, 65536);
  EXPECT_NEAR(grown.info.effective_theta, 1e6 * std::pow(2.0 * 65536 / 32768 - 1, 128.0 / 126),
              1e-3);
  RopeState s(c);
  EXPECT_EQ(s.plan_for(65536).info.effective_theta, grown.info.effective_theta);
  EXPECT_EQ(s.plan_for(49152).info.effective_theta,
            grown.info.effective_theta);               // keeps the larger base
  EXPECT_EQ(s.plan_for(8).info.effective_theta, 1e6);  // back below the original
}

}  // namespace
}  // namespace ropekit

namespace ropekit {
namespace {

TEST(ConfigFamilies, PerLayerMapsGemma3PatternAndLlama4NoPE) {
  const auto g =
      parse_hf_config(R"({"model_type":"gemma3_text","hidden_size":2560,"num_attention_heads":8,
    "head_dim":256,"num_hidden_layers":12,"rope_theta":1000000.0,"rope_local_base_freq":10000.0,
    "max_position_embeddings":131072})");
  ASSERT_EQ(g.layer_types.size(), 12u);
  EXPECT_EQ(g.layer_types[4], "sliding_attention");
  EXPECT_EQ(g.layer_types[5], "full_attention");
  EXPECT_EQ(g.layer_types[11], "full_attention");
  const auto l4 =
      parse_hf_config(R"({"model_type":"llama4_text","hidden_size":5120,"num_attention_heads":40,
    "head_dim":128,"num_hidden_layers":4,"max_position_embeddings":10485760,"no_rope_layers":[1,1,1,0]})");
  EXPECT_EQ(l4.layer_uses_rope, (std::vector<bool>{true, true, true, false}));
  // Missing or empty no_rope_layers: transformers generates (i + 1) % no_rope_layer_interval != 0
  // (interval default 4) for Llama 4 and SmolLM3; other families keep "not described".
  for (const char* list : {"", R"("no_rope_layers":[],)", R"("no_rope_layers":null,)"}) {
    SCOPED_TRACE(list);
    const auto d = parse_hf_config(
        std::string(R"({"model_type":"llama4_text","hidden_size":5120,"num_attention_heads":40,)") +
        list + R"("head_dim":128,"num_hidden_layers":9,"max_position_embeddings":1048576})");
    EXPECT_EQ(d.layer_uses_rope,
              (std::vector<bool>{true, true, true, false, true, true, true, false, true}));
  }
  const auto s3 =
      parse_hf_config(R"({"model_type":"smollm3","hidden_size":2048,"num_attention_heads":16,
    "num_hidden_layers":6,"no_rope_layer_interval":3,"rope_theta":5000000.0,"max_position_embeddings":65536})");
  EXPECT_EQ(s3.layer_uses_rope, (std::vector<bool>{true, true, false, true, true, false}));
  const auto plain =
      parse_hf_config(R"({"model_type":"llama","hidden_size":4096,"num_attention_heads":32,
    "num_hidden_layers":32,"max_position_embeddings":4096})");
  EXPECT_TRUE(plain.layer_uses_rope.empty());
  try {
    (void)parse_hf_config(R"({"model_type":"llama4_text","hidden_size":64,"num_attention_heads":1,
      "num_hidden_layers":4,"no_rope_layer_interval":0})");
    ADD_FAILURE() << "interval 0 accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "no_rope_layer_interval") << e.what();
  }
  EXPECT_THROW(parse_hf_config(R"({"model_type":"llama","hidden_size":64,"num_attention_heads":1,
    "no_rope_layers":[1,2]})"),
               ConfigError);
  EXPECT_THROW(
      parse_hf_config(R"({"model_type":"gemma3_text","hidden_size":64,"num_attention_heads":1,
    "layer_types":["sliding_attention","bogus"]})"),
      ConfigError);
}

}  // namespace
}  // namespace ropekit

namespace ropekit {
namespace {

TEST(ConfigFamilies, GptOssDefaultYarnBlock) {
  const auto m =
      parse_hf_config(R"({"model_type":"gpt_oss","hidden_size":2880,"num_attention_heads":64,
    "head_dim":64,"max_position_embeddings":131072,"rope_theta":150000})");
  const auto* y = std::get_if<YarnScaling>(&m.layers.at(0).scaling);
  ASSERT_NE(y, nullptr);
  EXPECT_FALSE(y->truncate);
  EXPECT_EQ(y->factor, 32.0);
  EXPECT_EQ(y->original_max_position_embeddings, 4096);
  EXPECT_TRUE(has_warning(m, "gpt-oss's default YaRN block"));
}

}  // namespace
}  // namespace ropekit
