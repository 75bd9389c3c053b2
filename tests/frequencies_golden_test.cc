// Frequencies against the goldens: transformers (tests/golden/hf, hf-mrope) for every config,
// layer, direct init call and run-time scenario (incl. the stateful module sequence), and
// mlx-lm's initialize_rope tables (tests/golden/mlx-lm). Relative error <= 1e-6.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "ropekit/ropekit.h"
#include "test_util.h"

namespace ropekit {
namespace {

using nlohmann::json;

double rel_err(double got, double want) {
  if (got == want) return 0.0;
  return std::fabs(got - want) / std::max(std::fabs(want), 1e-30);
}

void expect_inv_freq(const std::vector<float>& got, const json& want, const std::string& where) {
  ASSERT_EQ(got.size(), want.size()) << where;
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, rel_err(got[i], want[i].get<double>()));
  EXPECT_LE(worst, 1e-6) << where;
}

std::vector<std::string> golden_names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e :
       std::filesystem::directory_iterator(test::data_path("tests/data/golden/" + dir)))
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

class HfFrequencies : public ::testing::TestWithParam<std::string> {};

TEST_P(HfFrequencies, MatchTransformers) {
  const json g = test::load_json("tests/data/golden/hf/" + GetParam() + ".json");
  const ModelRope m = parse_hf_config(test::read_file("models/" + GetParam() + ".json"));
  ASSERT_EQ(m.layers.size(), g["layers"].size());
  for (const auto& [lname, L] : g["layers"].items()) {
    SCOPED_TRACE(GetParam() + "/" + lname);
    const RopeConfig& c = m.layer(lname);
    EXPECT_EQ(scaling_type_name(c.scaling), L["rope_type"].get<std::string>());
    EXPECT_EQ(c.head_dim, L["head_dim"].get<int>());
    EXPECT_EQ(c.rotary_dim, L["rotary_dim"].get<int>());
    const FrequencyPlan init = build_frequency_plan(c);
    expect_inv_freq(init.inv_freq, L["inv_freq"], "init");
    // transformers' float32 arithmetic replayed: the same bits as its inv_freq buffer
    const FrequencyPlan bits = build_frequency_plan(c, std::nullopt, SeqLenPolicy::kTransformers,
                                                    FrequencyArithmetic::kTransformers);
    // (torch's vectorised float32 pow is faithfully, not correctly, rounded: where it lands on
    // the other neighbour the replay is one ulp away; at most one pair in these configs)
    int same = 0;
    for (std::size_t i = 0; i < bits.inv_freq.size(); ++i) {
      const float want = static_cast<float>(L["inv_freq"][i].get<double>());
      same += bits.inv_freq[i] == want;
      EXPECT_LE(std::fabs(bits.inv_freq[i] - want), std::nextafter(want, 1e30f) - want)
          << "pair " << i;
    }
    EXPECT_GE(same + 1, static_cast<int>(bits.inv_freq.size()));
    EXPECT_LE(rel_err(init.attention_factor, L["attention_factor"].get<double>()), 1e-6);
    if (L.contains("init_function_direct_calls")) {
      for (const auto& call : L["init_function_direct_calls"]) {
        std::optional<std::int64_t> seq;
        if (!call["seq_len"].is_null()) seq = call["seq_len"].get<std::int64_t>();
        const FrequencyPlan p = build_frequency_plan(c, seq);
        expect_inv_freq(p.inv_freq, call["inv_freq"],
                        "direct call seq_len=" + call["seq_len"].dump());
        if (call.contains("attention_factor")) {
          EXPECT_LE(rel_err(p.attention_factor, call["attention_factor"].get<double>()), 1e-6);
        }
      }
    }
    for (const auto& [sname, S] : L["scenarios"].items()) {
      if (!S.contains("inv_freq_used")) continue;
      const FrequencyPlan p = build_frequency_plan(c, S["seq_len_seen_by_hf"].get<std::int64_t>());
      expect_inv_freq(p.inv_freq, S["inv_freq_used"], "scenario " + sname);
      EXPECT_LE(rel_err(p.attention_factor, S["attention_scaling_used"].get<double>()), 1e-6)
          << sname;
    }
    if (L.contains("stateful_sequence_same_module")) {
      RopeState state(c);
      for (const auto& step : L["stateful_sequence_same_module"]) {
        std::int64_t max_pos = 0;
        for (const auto& p : step["positions"]) max_pos = std::max(max_pos, p.get<std::int64_t>());
        const FrequencyPlan& p = state.plan_for(max_pos + 1);
        expect_inv_freq(p.inv_freq, step["inv_freq_used"],
                        "stateful step to " + std::to_string(max_pos));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Goldens, HfFrequencies, ::testing::ValuesIn(golden_names("hf")),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(HfFrequencies, MRopeModels) {
  for (const std::string name : {"qwen2-vl-7b-instruct", "qwen3-vl-8b-instruct"}) {
    SCOPED_TRACE(name);
    const json g = test::load_json("tests/data/golden/hf-mrope/" + name + ".json");
    const ModelRope m = parse_hf_config(test::read_file("models/" + name + ".json"));
    ASSERT_EQ(m.layers.size(), 1u);
    const FrequencyPlan p = build_frequency_plan(m.layers[0]);
    expect_inv_freq(p.inv_freq, g["inv_freq"], name);
    ASSERT_TRUE(p.info.mrope.has_value());
    EXPECT_EQ(p.info.mrope->section[0], g["mrope_section"][0].get<int>());
    // the per-pair axis lists the golden spells out
    if (g["layout"].contains("pair_axes")) {
      const auto& axes = g["layout"]["pair_axes"];
      ASSERT_EQ(axes.size(), p.pair_axis.size());
      for (std::size_t i = 0; i < axes.size(); ++i) {
        const std::string a =
            axes[i].is_string() ? axes[i].get<std::string>() : std::to_string(axes[i].get<int>());
        const int want = (a == "T" || a == "t" || a == "0")   ? 0
                         : (a == "H" || a == "h" || a == "1") ? 1
                                                              : 2;
        EXPECT_EQ(p.pair_axis[i], want) << "pair " << i;
      }
    }
  }
}

class MlxFrequencies : public ::testing::TestWithParam<std::string> {};

TEST_P(MlxFrequencies, MatchInitializeRope) {
  const json g = test::load_json("tests/data/golden/mlx-lm/" + GetParam() + ".json");
  int checked = 0;
  for (const auto& r : g["ropes"]) {
    if (r["constructor"] != "initialize_rope") continue;
    SCOPED_TRACE(GetParam() + "/" + r["name"].get<std::string>());
    const MlxRope rope = initialize_rope_from_kwargs(r["kwargs"].dump());
    EXPECT_EQ(rope.class_name, r["class"].get<std::string>());
    EXPECT_LE(rel_err(rope.input_prescale, r["input_prescale"].get<double>()), 1e-6);
    if (r["freqs"].is_null()) {
      EXPECT_TRUE(rope.freqs.empty());
    } else {
      ASSERT_EQ(rope.freqs.size(), r["freqs"].size());
      for (std::size_t i = 0; i < rope.freqs.size(); ++i) {
        const auto& w = r["freqs"][i];
        if (w.is_string()) {
          EXPECT_TRUE(std::isinf(rope.freqs[i])) << i;
        } else {
          EXPECT_LE(rel_err(rope.freqs[i], w.get<double>()), 1e-6) << i;
        }
      }
    }
    for (const auto& res : r["results"]) {
      if (!res.contains("fast_rope_call")) continue;
      const auto& call = res["fast_rope_call"];
      EXPECT_EQ(rope.traditional, call["traditional"].get<bool>());
      EXPECT_LE(rel_err(rope.scale, call["scale"].get<double>()), 1e-9);
      if (!call["base"].is_null() && !res["offset"].is_array()) {
        const double base = rope.base_for_call(8, res["offset"].get<std::int64_t>());
        EXPECT_LE(rel_err(base, call["base"].get<double>()), 1e-9) << "offset " << res["offset"];
      }
    }
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

std::vector<std::string> mlx_with_factory() {
  std::vector<std::string> out;
  for (const auto& n : golden_names("mlx-lm")) {
    const json g = test::load_json("tests/data/golden/mlx-lm/" + n + ".json");
    for (const auto& r : g["ropes"])
      if (r["constructor"] == "initialize_rope") {
        out.push_back(n);
        break;
      }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Goldens, MlxFrequencies, ::testing::ValuesIn(mlx_with_factory()),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

TEST(MlxFrequencies, DynamicVectorOffsetAndUnsupportedTypes) {
  EXPECT_THROW(initialize_rope(64, 10000, false, R"({"type":"su","factor":2})", 4096), ConfigError);
  EXPECT_THROW(initialize_rope(64, 10000, false, R"({"type":"ntk","factor":2})"), ConfigError);
  EXPECT_THROW(initialize_rope(64, 10000, false, R"({"type":"linear"})"), ConfigError);  // KeyError
  EXPECT_THROW(initialize_rope(64, 10000, false, R"({"type":"mrope","mrope_section":[1,2]})"),
               ConfigError);
  EXPECT_THROW(initialize_rope(64, 10000, false, R"({"type":"dynamic","factor":2})"),
               ConfigError);  // no max_pos
  EXPECT_THROW(initialize_rope(7, 10000, false), ConfigError);
  // "type" wins over "rope_type" in mlx-lm
  EXPECT_EQ(initialize_rope(64, 10000, false, R"({"type":"linear","rope_type":"yarn","factor":2})")
                .class_name,
            "RoPE");
  // llama3 defaults (low 1, high 4, original 8192) are mlx-lm's own
  const auto l3 = initialize_rope(128, 500000, false, R"({"rope_type":"llama3","factor":8})");
  const auto l3full = initialize_rope(
      128, 500000, false,
      R"({"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8192})");
  EXPECT_EQ(l3.freqs, l3full.freqs);
}

}  // namespace
}  // namespace ropekit
