// Runs every subcommand of the ropekit command through its command line: exit codes, the JSON
// shapes scripts rely on, and table contents checked against the library's frequency API.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "ropekit/frequencies.h"
#include "ropekit/hf_config.h"

namespace ropekit::cli_test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const fs::path kModels = fs::path(ROPEKIT_SOURCE_DIR) / "models";

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kModels)) {
    const std::string f = e.path().filename().string();
    if (f.size() > 5 && f.ends_with(".json") && f != "SOURCES.json")
      names.push_back(f.substr(0, f.size() - 5));
  }
  std::sort(names.begin(), names.end());
  return names;
}

ModelRope load_model_file(const std::string& name) {
  return load_hf_config(kModels / (name + ".json"));
}

json parse_json(const RunResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);  // throws (fails the test) when not JSON
}

// ---- models -------------------------------------------------------------------------------------

TEST(CliModels, JsonListsEveryDataFileWithExactlyTheDocumentedFields) {
  const json j = parse_json(run_cli("models --json"));
  ASSERT_TRUE(j.is_array());
  const std::vector<std::string> files = model_names();
  ASSERT_EQ(j.size(), files.size());
  const std::set<std::string> keys{
      "name", "family", "rope_type", "rope_theta", "max_position_embeddings", "source"};
  for (std::size_t i = 0; i < j.size(); ++i) {
    const json& m = j[i];
    std::set<std::string> got;
    for (const auto& [k, v] : m.items()) got.insert(k);
    EXPECT_EQ(got, keys) << m.dump();
    EXPECT_EQ(m["name"], files[i]);  // sorted by name
    EXPECT_TRUE(m["family"].is_string() && !m["family"].get<std::string>().empty()) << m.dump();
    EXPECT_TRUE(m["source"].is_string() && !m["source"].get<std::string>().empty()) << m.dump();
    EXPECT_TRUE(m["rope_theta"].is_number() && m["rope_theta"].get<double>() > 0);
    EXPECT_TRUE(m["max_position_embeddings"].is_number_integer());
    // The summary agrees with the library's reading of the data file.
    const ModelRope rope = load_model_file(files[i]);
    EXPECT_EQ(m["rope_theta"].get<double>(), rope.layers.front().rope_theta);
    EXPECT_EQ(m["max_position_embeddings"].get<std::int64_t>(),
              rope.layers.front().max_position_embeddings);
    EXPECT_EQ(
        m["rope_type"].get<std::string>().rfind(scaling_type_name(rope.layers.front().scaling), 0),
        0u);
  }
}

TEST(CliModels, KnownModelsHaveTheirRopeType) {
  const json j = parse_json(run_cli("models --json"));
  auto find = [&](const std::string& name) {
    for (const json& m : j) {
      if (m["name"] == name) return m;
    }
    ADD_FAILURE() << name << " not listed";
    return json();
  };
  EXPECT_EQ(find("llama-3.1-8b-instruct")["rope_type"], "llama3");
  EXPECT_EQ(find("llama-3.1-8b-instruct")["rope_theta"], 500000.0);
  EXPECT_EQ(find("llama-3.1-8b-instruct")["max_position_embeddings"], 131072);
  EXPECT_EQ(find("gpt-oss-20b")["rope_type"], "yarn");
  EXPECT_EQ(find("phi-4-mini-instruct")["rope_type"], "longrope");
  EXPECT_EQ(find("gemma-3-4b-text")["rope_type"], "linear/default");
  EXPECT_EQ(find("qwen2-vl-7b-instruct")["rope_type"], "default+mrope");
  EXPECT_EQ(find("llama-4-maverick-17b-128e")["rope_type"], "default");
  EXPECT_EQ(find("llama-4-maverick-17b-128e")["max_position_embeddings"], 1048576);
  EXPECT_EQ(find("llama-4-scout-17b-16e")["rope_type"], "llama3/default");  // text, vision
  EXPECT_EQ(find("devstral-small-2-24b-instruct")["rope_type"], "yarn/default");
  EXPECT_EQ(find("deepseek-v4-flash")["rope_type"], "default/yarn");  // main, compress
  EXPECT_EQ(find("deepseek-v4-flash")["rope_theta"], 10000.0);
}

TEST(CliModels, EveryModelHasASourceRecord) {
  const json sources = json::parse(read_file((kModels / "SOURCES.json").string()));
  for (const std::string& name : model_names()) {
    ASSERT_TRUE(sources.contains(name)) << name << " has no entry in models/SOURCES.json";
    const json& s = sources[name];
    for (const char* key : {"name", "family", "source"}) {
      ASSERT_TRUE(s.contains(key) && s[key].is_string())
          << name << ": needs a string '" << key << "'";
      EXPECT_FALSE(s[key].get<std::string>().empty()) << name << ": " << key;
    }
    EXPECT_EQ(s["name"], name);
    // Where the values come from: repository + path + commit, or a URL.
    const bool repo = s.contains("repo") && s.contains("path") && s.contains("commit");
    const bool url = s.contains("primary") || s.contains("url");
    EXPECT_TRUE(repo || url) << name << ": needs repo+path+commit or a URL";
  }
  EXPECT_EQ(sources.size(), model_names().size())
      << "SOURCES.json lists a model without a data file";
}

TEST(CliModels, NamePrintsTheEmbeddedConfigVerbatim) {
  const RunResult r = run_cli("models gpt-oss-20b");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, read_file((kModels / "gpt-oss-20b.json").string()));
  const json j = parse_json(run_cli("models gpt-oss-20b --json"));
  EXPECT_EQ(j["config"]["rope_scaling"]["truncate"], false);
  EXPECT_EQ(j["provenance"]["family"], "gpt-oss");
}

TEST(CliModels, TableHasOneLinePerModel) {
  const RunResult r = run_cli("models");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(static_cast<std::size_t>(std::count(r.out.begin(), r.out.end(), '\n')),
            model_names().size() + 1);
  EXPECT_NE(r.out.find("llama-3.1-8b-instruct"), std::string::npos);
}

// ---- unknown names -----------------------------------------------------------------------------

TEST(CliModelSource, UnknownNameSuggestsTheClosestBuiltinNames) {
  const RunResult r = run_cli("show lama-3.1-8b-instruct");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("closest built-in names: llama-3.1-8b-instruct"), std::string::npos)
      << r.err;
  const RunResult r2 = run_cli("plot gpt-oss -o x.svg");
  EXPECT_EQ(r2.exit_code, 2);
  EXPECT_NE(r2.err.find("gpt-oss-20b"), std::string::npos) << r2.err;
  const RunResult r3 = run_cli("models qwen3-7b");
  EXPECT_EQ(r3.exit_code, 2);
  EXPECT_NE(r3.err.find("qwen3-8b"), std::string::npos) << r3.err;
}

TEST(CliModelSource, PathsAndFoldersWork) {
  const std::string dir = scratch_dir("snapshot");
  fs::copy_file(kModels / "phi-2.json", fs::path(dir) / "config.json");
  EXPECT_EQ(run_cli("show '" + dir + "' --json").exit_code, 0);              // HF snapshot folder
  EXPECT_EQ(run_cli("show '" + dir + "/config.json' --json").exit_code, 0);  // file
  EXPECT_EQ(run_cli("show '" + dir + "/missing.json'").exit_code, 2);
}

// ---- show
// -----------------------------------------------------------------------------------------

TEST(CliShow, JsonFrequenciesEqualTheLibraryPlanForEveryBuiltinModel) {
  for (const std::string& name : model_names()) {
    SCOPED_TRACE(name);
    const json j = parse_json(run_cli("show " + name + " --json"));
    const ModelRope rope = load_model_file(name);
    ASSERT_EQ(j["layers"].size(), rope.layers.size());
    EXPECT_EQ(j["model_type"], rope.model_type);
    EXPECT_EQ(j["warnings"].size(), rope.warnings.size());
    for (std::size_t l = 0; l < rope.layers.size(); ++l) {
      const RopeConfig& c = rope.layers[l];
      const FrequencyPlan plan = build_frequency_plan(c);
      const std::vector<double> unscaled = unscaled_inv_freq(c);
      const json& jl = j["layers"][l];
      EXPECT_EQ(jl["layer"], c.layer_type);
      EXPECT_EQ(jl["rope_type"], plan.info.rope_type);
      EXPECT_EQ(jl["head_dim"], c.head_dim);
      EXPECT_EQ(jl["rotary_dim"], c.rotary_dim);
      EXPECT_EQ(jl["attention_factor"].get<double>(), plan.attention_factor);
      ASSERT_EQ(jl["frequencies"].size(), plan.inv_freq.size());
      for (std::size_t i = 0; i < plan.inv_freq.size(); ++i) {
        const json& f = jl["frequencies"][i];
        EXPECT_EQ(f["index"], i);
        EXPECT_EQ(f["inv_freq"].get<double>(), static_cast<double>(plan.inv_freq[i]))
            << i;  // exact
        if (i < unscaled.size()) {
          EXPECT_EQ(f["unscaled_inv_freq"].get<double>(), unscaled[i]);
          const double turns = static_cast<double>(jl["original_context"].get<std::int64_t>()) *
                               unscaled[i] / (2 * std::numbers::pi);
          EXPECT_NEAR(f["turns_in_original_context"].get<double>(), turns, 1e-9 * turns);
        }
        if (plan.inv_freq[i] > 0) {
          EXPECT_NEAR(f["wavelength"].get<double>(),
                      2 * std::numbers::pi / static_cast<double>(plan.inv_freq[i]),
                      1e-12 * f["wavelength"].get<double>());
        }
      }
    }
  }
}

// Llama 3 bands from the published rule, independently of the tool: wavelength (unscaled)
// below original/high_freq_factor is kept, above original/low_freq_factor interpolated.
TEST(CliShow, Llama3BandsFollowTheWavelengthRule) {
  const json j = parse_json(run_cli("show llama-3.1-8b-instruct --json"));
  const json& l = j["layers"][0];
  EXPECT_EQ(l["original_context"], 8192);
  EXPECT_EQ(l["extended_context"], 131072);
  int kept = 0, interpolated = 0, blended = 0;
  for (const json& f : l["frequencies"]) {
    const double wl = 2 * std::numbers::pi / f["unscaled_inv_freq"].get<double>();
    const std::string band = f["band"];
    if (wl < 8192.0 / 4.0) {
      EXPECT_EQ(band, "kept") << f.dump();
      ++kept;
    } else if (wl > 8192.0 / 1.0) {
      EXPECT_EQ(band, "interpolated") << f.dump();
      EXPECT_NEAR(f["ratio"].get<double>(), 1.0 / 8.0, 1e-6);
      ++interpolated;
    } else {
      EXPECT_EQ(band, "blended") << f.dump();
      ++blended;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(interpolated, 0);
  EXPECT_GT(blended, 0);
}

// YaRN bands from the paper's rule: pairs completing more than beta_fast (32) turns in the
// original context are kept, fewer than beta_slow (1) interpolated (gpt-oss: no truncation).
TEST(CliShow, YarnBandsFollowTheTurnsRule) {
  const json j = parse_json(run_cli("show gpt-oss-20b --json"));
  for (const json& f : j["layers"][0]["frequencies"]) {
    const double turns = f["turns_in_original_context"];
    if (turns > 32.5) {
      EXPECT_EQ(f["band"], "kept") << f.dump();
    }
    if (turns < 0.9) {
      EXPECT_EQ(f["band"], "interpolated") << f.dump();
    }
    if (turns < 31 && turns > 1.1) {
      EXPECT_EQ(f["band"], "blended") << f.dump();
    }
  }
}

TEST(CliShow, TextTableShowsParametersAndOneRowPerPair) {
  const RunResult r = run_cli("show llama-3.2-1b-instruct");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s :
       {"rope_type         llama3", "head_dim          64", "rope_theta        500000",
        "layout            half", "attention_factor  1", "original 8192"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  }
  const ModelRope rope = load_model_file("llama-3.2-1b-instruct");
  const FrequencyPlan plan = build_frequency_plan(rope.layers[0]);
  // The last row: index 31 with the plan's value in the table's %.6e form.
  char cell[32];
  std::snprintf(cell, sizeof cell, "%.6e", static_cast<double>(plan.inv_freq[31]));
  const std::regex last_row("\\n\\s+31\\s+" + std::string(cell) + "\\s");
  EXPECT_TRUE(std::regex_search(r.out, last_row)) << cell << "\n" << r.out;
}

TEST(CliShow, CsvHasAHeaderAndOneLinePerPairAndLayer) {
  const RunResult r = run_cli("show gemma-3-4b-text --csv");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("layer,index,inv_freq,", 0), 0u) << r.out.substr(0, 200);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1 + 2 * 128);  // head_dim 256: 128 pairs
  const RunResult one = run_cli("show gemma-3-4b-text --csv --layer sliding_attention");
  EXPECT_EQ(std::count(one.out.begin(), one.out.end(), '\n'), 1 + 128);
}

TEST(CliShow, NoPELayersAreListedFromTheLibraryMap) {
  const json m = parse_json(run_cli("show llama-4-maverick-17b-128e --json"));
  const ModelRope rope = load_model_file("llama-4-maverick-17b-128e");
  ASSERT_EQ(rope.layer_uses_rope.size(), 48u);
  std::vector<std::size_t> want;
  for (std::size_t i = 0; i < rope.layer_uses_rope.size(); ++i)
    if (!rope.layer_uses_rope[i]) want.push_back(i);
  EXPECT_EQ(want.size(), 12u);  // every 4th layer (transformers' default interval)
  EXPECT_EQ(m["nope_layers"].get<std::vector<std::size_t>>(), want);
  EXPECT_EQ(m["layers"][0]["layout"], "interleaved");
  EXPECT_TRUE(parse_json(run_cli("show llama-3.1-8b-instruct --json"))["nope_layers"].empty());
  EXPECT_NE(
      run_cli("show llama-4-maverick-17b-128e").out.find("12 of 48 layers skip RoPE: 3, 7, 11"),
      std::string::npos);
}

TEST(CliShow, QueryScaleIsReportedWithItsLayers) {
  const json m = parse_json(run_cli("show llama-4-scout-17b-16e --json"));
  const ModelRope rope = load_model_file("llama-4-scout-17b-16e");
  ASSERT_TRUE(rope.query_scale.has_value());
  std::vector<std::size_t> want;
  for (std::size_t i = 0; i < rope.layer_scales_queries.size(); ++i)
    if (rope.layer_scales_queries[i]) want.push_back(i);
  EXPECT_EQ(m["query_scale"]["layers"].get<std::vector<std::size_t>>(), want);
  EXPECT_EQ(m["query_scale"]["floor_scale"], 8192.0);
  EXPECT_EQ(m["query_scale"]["attn_scale"], 0.1);
  EXPECT_EQ(m["query_scale"]["position_offset"], 1);
  EXPECT_EQ(m["layers"].size(), 2u);  // text and vision
  EXPECT_EQ(m["layers"][1]["layer"], "vision");
  EXPECT_TRUE(parse_json(run_cli("show llama-3.1-8b-instruct --json"))["query_scale"].is_null());
  EXPECT_NE(run_cli("show llama-4-scout-17b-16e")
                .out.find("q × (1 + 0.1·ln(1 + floor((p + 1) / 8192))) on 12 of 48 layers: 3, 7"),
            std::string::npos);
}

TEST(CliShow, SeqLenAndPolicyReachThePlan) {
  // Phi-3.5 LongRoPE: transformers uses the short factors up to 4096 tokens, mlx-lm always long.
  const json hf = parse_json(run_cli("show phi-3.5-mini-instruct --seq-len 100 --json"));
  const json mlx =
      parse_json(run_cli("show phi-3.5-mini-instruct --seq-len 100 --policy mlx-lm --json"));
  const ModelRope rope = load_model_file("phi-3.5-mini-instruct");
  const FrequencyPlan want_hf =
      build_frequency_plan(rope.layers[0], 100, SeqLenPolicy::kTransformers);
  const FrequencyPlan want_mlx = build_frequency_plan(rope.layers[0], 100, SeqLenPolicy::kMlxLm);
  EXPECT_EQ(hf["layers"][0]["frequencies"][47]["inv_freq"].get<double>(), want_hf.inv_freq[47]);
  EXPECT_EQ(mlx["layers"][0]["frequencies"][47]["inv_freq"].get<double>(), want_mlx.inv_freq[47]);
  EXPECT_NE(want_hf.inv_freq[47], want_mlx.inv_freq[47]);
}

TEST(CliShow, UsageAndInputErrorsHaveTheirExitCodes) {
  EXPECT_EQ(run_cli("show").exit_code, 1);                               // missing MODEL
  EXPECT_EQ(run_cli("show phi-2 --json --csv").exit_code, 1);            // exclusive
  EXPECT_EQ(run_cli("show phi-2 --policy vllm").exit_code, 1);           // not a policy
  EXPECT_EQ(run_cli("show phi-2 --seq-len 0").exit_code, 1);             // not positive
  EXPECT_EQ(run_cli("show gemma-3-4b-text --layer nope").exit_code, 2);  // no such layer
  EXPECT_EQ(run_cli("show --help").exit_code, 0);
}

// ---- compare
// --------------------------------------------------------------------------------------

TEST(CliCompare, AModelAgainstItselfIsIdentical) {
  const json j = parse_json(run_cli("compare llama-3.1-8b-instruct llama-3.1-8b-instruct --json"));
  ASSERT_EQ(j["layers"].size(), 1u);
  const json& l = j["layers"][0];
  EXPECT_EQ(l["identical_frequencies"], true);
  EXPECT_TRUE(l["differing"].empty());
  EXPECT_EQ(l["output"]["comparable"], true);
  EXPECT_EQ(l["output"]["max_abs_difference"], 0.0);
  EXPECT_EQ(l["output"]["positions"].back(), 131072);
}

TEST(CliCompare, DifferentModelsListTheDifferingPairs) {
  // Llama 3.1 (factor 8) and 3.2 (factor 32) share every kept pair and differ where scaled.
  const json j = parse_json(run_cli("compare llama-3.1-8b-instruct llama-3.2-3b-instruct --json"));
  const json& l = j["layers"][0];
  EXPECT_EQ(l["identical_frequencies"], false);
  const ModelRope a = load_model_file("llama-3.1-8b-instruct");
  const ModelRope b = load_model_file("llama-3.2-3b-instruct");
  const FrequencyPlan pa = build_frequency_plan(a.layers[0]),
                      pb = build_frequency_plan(b.layers[0]);
  std::size_t expected = 0;
  for (std::size_t i = 0; i < pa.inv_freq.size(); ++i) expected += pa.inv_freq[i] != pb.inv_freq[i];
  EXPECT_EQ(l["differing"].size(), expected);
  EXPECT_GT(l["output"]["max_abs_difference"].get<double>(), 0.1);
}

TEST(CliCompare, AnglesHfVersusExactDifferOnlyInTheOutputs) {
  const json j =
      parse_json(run_cli("compare qwen2.5-7b-instruct-yarn --angles hf --angles-b exact --json"));
  const json& l = j["layers"][0];
  EXPECT_EQ(l["identical_frequencies"], true);
  const double d = l["output"]["max_abs_difference"];
  EXPECT_GT(d, 1e-5);  // float32 angles drift at large positions
  EXPECT_LT(d, 2e-2);
  EXPECT_EQ(j["a"]["angles"], "hf");
  EXPECT_EQ(j["b"]["angles"], "exact");
}

TEST(CliCompare, PoliciesOfOneConfig) {
  const json j =
      parse_json(run_cli("compare phi-3.5-mini-instruct --seq-len 100 --policy-b mlx-lm --json"));
  EXPECT_EQ(j["b"]["policy"], "mlx-lm");
  EXPECT_EQ(j["b"]["seq_len"], 100);  // copied from A
  EXPECT_EQ(j["layers"][0]["identical_frequencies"], false);
}

TEST(CliCompare, DifferentHeadDimsCompareFrequenciesButNotOutputs) {
  const json j = parse_json(run_cli("compare llama-3.1-8b-instruct llama-3.2-1b-instruct --json"));
  EXPECT_EQ(j["layers"][0]["output"]["comparable"], false);
  EXPECT_NE(j["layers"][0]["output"]["reason"].get<std::string>().find("head_dim"),
            std::string::npos);
}

TEST(CliCompare, TextAndErrors) {
  const RunResult r = run_cli("compare mistral-7b-v0.1 mistral-7b-instruct-v0.3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rope_theta        10000                   1000000   <- differs"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("largest |A - B|"), std::string::npos);
  EXPECT_EQ(run_cli("compare").exit_code, 1);
  EXPECT_EQ(run_cli("compare phi-2 --angles fast").exit_code, 1);
  EXPECT_EQ(run_cli("compare phi-2 no-such-model").exit_code, 2);
}

// ---- plot
// ------------------------------------------------------------------------------------------

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(CliPlot, OneSolidSeriesPerRequestedCurve) {
  const std::string svg = scratch_dir("plot") + "/p.svg";
  // 3 models, Gemma 3 with two layer types: 4 curves.
  const RunResult r =
      run_cli("plot llama-3.1-8b-instruct gemma-3-4b-text mistral-7b-v0.1 -o '" + svg + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string text = read_file(svg);
  EXPECT_EQ(text.rfind("<?xml", 0), 0u);
  EXPECT_EQ(count(text, "class=\"series\" data-kind=\"scaled\""), 4);
  // Unscaled twins only where scaling changes something: Llama 3.1, Gemma 3 full attention.
  EXPECT_EQ(count(text, "class=\"series\" data-kind=\"unscaled\""), 2);
  EXPECT_NE(text.find("data-label=\"gemma-3-4b-text:sliding_attention\""), std::string::npos);
  EXPECT_GE(count(text, "class=\"reference\""), 2);  // 8192 original, 131072 extended, ...
  EXPECT_NE(text.find("frequency index"), std::string::npos);
  EXPECT_NE(text.find("wavelength"), std::string::npos);

  const std::string svg2 = scratch_dir("plot_layer") + "/p.svg";
  ASSERT_EQ(run_cli("plot gemma-3-4b-text --layer full_attention --no-unscaled -o '" + svg2 + "'")
                .exit_code,
            0);
  const std::string text2 = read_file(svg2);
  EXPECT_EQ(count(text2, "class=\"series\""), 1);
}

TEST(CliPlot, Errors) {
  EXPECT_EQ(run_cli("plot phi-2").exit_code, 1);  // -o is required
  EXPECT_EQ(run_cli("plot -o x.svg").exit_code, 1);
  EXPECT_EQ(run_cli("plot phi-2 -o '" + scratch_dir("plot_png") + "/x.jpg'").exit_code, 2);
  // .png: written where the command was built with librsvg (tests/cli/cli_png_test.cc checks
  // the image), otherwise refused with a message saying how to get it.
  const RunResult png = run_cli("plot phi-2 -o '" + scratch_dir("plot_png") + "/x.png'");
  if (png.exit_code != 0) {
    EXPECT_EQ(png.exit_code, 2);
    EXPECT_NE(png.err.find("librsvg2-dev"), std::string::npos) << png.err;
  }
  EXPECT_EQ(run_cli("plot phi-2 -o /nonexistent-dir/x.svg").exit_code, 2);
}

// ---- validate
// ------------------------------------------------------------------------------------

TEST(CliValidate, ValidConfigExitsZero) {
  const RunResult r =
      run_cli("validate '" + (kModels / "llama-3.1-8b-instruct.json").string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ok: llama-3.1-8b-instruct"), std::string::npos) << r.out;
}

TEST(CliValidate, WarningsPassUnlessStrict) {
  // Phi-3.5 has no rope_scaling.factor: transformers warns, the values are still computable.
  const RunResult lenient = run_cli("validate phi-3.5-mini-instruct");
  EXPECT_EQ(lenient.exit_code, 0) << lenient.err;
  EXPECT_NE(lenient.out.find("warning: rope_scaling"), std::string::npos) << lenient.out;
  const RunResult strict = run_cli("validate --strict phi-3.5-mini-instruct");
  EXPECT_EQ(strict.exit_code, 2);
  EXPECT_NE(strict.out.find("error: rope_scaling"), std::string::npos) << strict.out;
}

TEST(CliValidate, ProblemsNameTheirJsonPath) {
  const std::string dir = scratch_dir("validate");
  const std::string bad = dir + "/bad.json";
  {
    std::ofstream(bad) << R"({"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
      "max_position_embeddings": 4096, "rope_scaling": {"type": "linear", "factor": -2}})";
  }
  const RunResult r = run_cli("validate '" + bad + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out.rfind("error: rope_scaling.factor: ", 0), 0u) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);  // one problem, one line

  const std::string broken = dir + "/broken.json";
  { std::ofstream(broken) << "{\"model_type\": "; }
  EXPECT_EQ(run_cli("validate '" + broken + "'").exit_code, 2);
  EXPECT_EQ(run_cli("validate '" + dir + "/absent.json'").exit_code, 2);
  EXPECT_EQ(run_cli("validate").exit_code, 1);
}

// ---- targets
// -------------------------------------------------------------------------------------

TEST(CliTargets, JsonNamesTheActiveTargetAmongTheCompiledOnes) {
  const json j = parse_json(run_cli("targets --json"));
  ASSERT_TRUE(j["active"].is_string());
  ASSERT_TRUE(j["compiled"].is_array());
  ASSERT_FALSE(j["compiled"].empty());
  int active = 0;
  for (const json& t : j["compiled"]) {
    EXPECT_TRUE(t["name"].is_string());
    EXPECT_TRUE(t["supported"].is_boolean());
    if (t["active"] == true) {
      ++active;
      EXPECT_EQ(t["name"], j["active"]);
      EXPECT_EQ(t["supported"], true);
    }
  }
  EXPECT_EQ(active, 1);
  const RunResult text = run_cli("targets");
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find(j["active"].get<std::string>()), std::string::npos);
}

// ---- bench
// ----------------------------------------------------------------------------------------- The
// shape of `bench --json` (issue: case, tokens, heads, head_dim, dtype, layout, scaling, angles,
// cos_sin, inplace, threads, median_ms, floor_ms, x_floor, reference_ms) and its arithmetic, not
// its speed (speed goals live in the benchmark itself).
TEST(CliBench, JsonCasesHaveTheDocumentedFieldsAndConsistentRatios) {
  const json j = parse_json(run_cli("bench --filter decode --json --threads 1"));
  ASSERT_TRUE(j.is_array());
  ASSERT_GE(j.size(), 6u);  // f32, bf16, f16 x layouts x cos/sin sources
  std::set<std::string> dtypes, layouts, sources;
  for (const json& c : j) {
    for (const char* key :
         {"case", "tokens", "heads", "head_dim", "dtype", "layout", "scaling", "angles", "cos_sin",
          "inplace", "threads", "median_ms", "floor_ms", "x_floor", "reference_ms"})
      ASSERT_TRUE(c.contains(key)) << key << " missing in " << c.dump();
    EXPECT_EQ(c["case"], "decode");
    EXPECT_EQ(c["tokens"], 64);
    EXPECT_EQ(c["heads"], 32);
    EXPECT_EQ(c["head_dim"], 128);
    EXPECT_EQ(c["threads"], 1);
    EXPECT_EQ(c["angles"], "exact");
    EXPECT_TRUE(c["inplace"].is_boolean());
    dtypes.insert(c["dtype"].get<std::string>());
    layouts.insert(c["layout"].get<std::string>());
    sources.insert(c["cos_sin"].get<std::string>());
    const double ms = c["median_ms"].get<double>(), floor_ms = c["floor_ms"].get<double>();
    EXPECT_GT(ms, 0.0);
    EXPECT_GT(floor_ms, 0.0);
    // x_floor is the median of per-sample ratios (kernel / the copy timed just before it): how
    // far it sits from median_ms / floor_ms depends on the machine's load, so only its range is
    // a property (a timing bound here failed on a busy machine).
    const double x_floor = c["x_floor"].get<double>();
    EXPECT_TRUE(std::isfinite(x_floor) && x_floor > 0.0) << x_floor;
    EXPECT_EQ(c["timed"], "ropekit");
    EXPECT_FALSE(c["cpu"].get<std::string>().empty());
    ASSERT_TRUE(c["reference_ms"].is_number())
        << "the scalar reference is timed unless --no-reference";
    EXPECT_GT(c["reference_ms"].get<double>(), 0.0);
  }
  EXPECT_EQ(dtypes, (std::set<std::string>{"f32", "bf16", "f16"}));
  EXPECT_EQ(layouts, (std::set<std::string>{"half", "interleaved"}));
  EXPECT_EQ(sources, (std::set<std::string>{"table", "on_the_fly"}));

  // The baselines: the floor's copy loop and its check against an independent copy, the
  // non-temporal copy, and for table cases the plain loop and on-the-fly cos/sin timed in the
  // same alternation, with the allowance of the table's own bytes (64 distinct rows of 64 pairs
  // of cos and sin here). The plain loop's output is compared with apply_rope's by the bench
  // itself (an exit code of 0 says it agreed).
  for (const json& c : j) {
    for (const char* key : {"floor_copy", "floor_vs_check", "non_temporal_ms", "plain_ms",
                            "x_plain", "on_the_fly_ms", "x_on_the_fly", "table_bytes"})
      ASSERT_TRUE(c.contains(key)) << key << " missing in " << c.dump();
    EXPECT_FALSE(c["floor_copy"].get<std::string>().empty());
    EXPECT_GT(c["floor_vs_check"].get<double>(), 0.0);
    EXPECT_GT(c["non_temporal_ms"].get<double>(), 0.0);
    if (c["cos_sin"] == "table") {
      EXPECT_GT(c["plain_ms"].get<double>(), 0.0);
      EXPECT_GT(c["x_plain"].get<double>(), 0.0);
      // x_plain's interval from 15 samples: the 4th and 12th of the sorted ratios (96.5%), with
      // the median between them.
      ASSERT_EQ(c["x_plain_95"].size(), 2u) << c.dump();
      EXPECT_LE(c["x_plain_95"][0].get<double>(), c["x_plain"].get<double>());
      EXPECT_GE(c["x_plain_95"][1].get<double>(), c["x_plain"].get<double>());
      EXPECT_NEAR(c["x_plain_95_coverage"].get<double>(), 1 - 2 * 576.0 / 32768, 1e-9);
      EXPECT_GT(c["x_on_the_fly"].get<double>(), 0.0);
      EXPECT_EQ(c["table_bytes"].get<double>(), 64.0 * 2 * 64 * 4);
      EXPECT_DOUBLE_EQ(c["x_on_the_fly_allowed"].get<double>(),
                       1.05 * (1.0 + c["table_bytes"].get<double>() /
                                         (2.0 * 64 * 32 * 128 * (c["dtype"] == "f32" ? 4 : 2))));
    } else {
      EXPECT_TRUE(c["plain_ms"].is_null());
      EXPECT_TRUE(c["x_plain"].is_null());
      EXPECT_TRUE(c["x_plain_95"].is_null());
      EXPECT_TRUE(c["table_bytes"].is_null());
    }
    // The in-place pass is timed for in-place cases only (tested below); decode is out of place.
    EXPECT_EQ(c["inplace"], false);
    for (const char* key : {"in_place_pass_ms", "x_in_place", "plain_x_in_place"}) {
      ASSERT_TRUE(c.contains(key)) << key;
      EXPECT_TRUE(c[key].is_null()) << key << " in " << c.dump();
    }
  }

  // The one-token case: one sequence, one token, 32 heads, table and on the fly.
  const json one = parse_json(run_cli("bench --filter 'one_token f32 half' --json --threads 1"));
  ASSERT_EQ(one.size(), 2u);
  for (const json& c : one) {
    EXPECT_EQ(c["tokens"], 1);
    EXPECT_EQ(c["heads"], 32);
    EXPECT_GT(c["median_ms"].get<double>(), 0.0);
  }

  // The same through a PreparedRope; its table case passed the bench's check against the plain
  // loop (verify_plain), or the bench would have failed.
  const json prepared =
      parse_json(run_cli("bench --filter 'one_token_prepared f32 half' --json --threads 1"));
  ASSERT_EQ(prepared.size(), 2u);
  for (const json& c : prepared) {
    EXPECT_EQ(c["case"], "one_token_prepared");
    EXPECT_EQ(c["tokens"], 1);
    EXPECT_GT(c["median_ms"].get<double>(), 0.0);
  }

  // The table-build case: CosSinCache and the libm sincosf baseline, with the speed-up fields.
  const json t =
      parse_json(run_cli("bench --quick --filter cos_sin_table_build --json --threads 1"));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0]["tokens"], 32768);
  EXPECT_EQ(t[0]["timed"], "ropekit");
  EXPECT_FALSE(t[0]["cpu"].get<std::string>().empty());
  EXPECT_NEAR(t[0]["speedup_vs_libm"].get<double>(),
              t[0]["reference_ms"].get<double>() / t[0]["median_ms"].get<double>(),
              1e-9 * t[0]["speedup_vs_libm"].get<double>());

  // --no-reference: reference_ms null; a filter matching nothing: an empty list; bad options:
  // usage.
  const json nr =
      parse_json(run_cli("bench --quick --filter 'decode f32 half plain table out' --json "
                         "--threads 1 --no-reference"));
  ASSERT_EQ(nr.size(), 1u);
  EXPECT_TRUE(nr[0]["reference_ms"].is_null());
  EXPECT_TRUE(parse_json(run_cli("bench --filter no-such-case --json")).empty());
  // --aa: table cases time the plain loop in the kernel's place and say so; on-the-fly cases,
  // which have no plain loop, still time ropekit.
  const json aa =
      parse_json(run_cli("bench --aa --quick --filter 'decode f32 half plain' --json --threads 1 "
                         "--no-reference"));
  ASSERT_EQ(aa.size(), 2u);  // from a table and on the fly
  for (const json& c : aa) {
    if (c["cos_sin"] == "table") {
      EXPECT_EQ(c["timed"], "plain loop (A/A)");
      EXPECT_GT(c["x_plain"].get<double>(), 0.0);
    } else {
      EXPECT_EQ(c["timed"], "ropekit");
    }
  }
  EXPECT_EQ(run_cli("bench --threads 0").exit_code, 1);
  // --rounds: the samples per case, seen in the interval's coverage (5 samples: no 95% interval,
  // the full range, 1 - 2/32); below 3, usage.
  const json five = parse_json(
      run_cli("bench --rounds 5 --filter 'decode f32 half plain table out' --json --threads 1 "
              "--no-reference"));
  ASSERT_EQ(five.size(), 1u);
  EXPECT_NEAR(five[0]["x_plain_95_coverage"].get<double>(), 1 - 2.0 / 32, 1e-9);
  EXPECT_EQ(run_cli("bench --rounds 2").exit_code, 1);
  // Text output: the header and the floor column.
  const RunResult text = run_cli(
      "bench --quick --filter 'decode f32 half plain table out' --threads 1 --no-reference");
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("x floor"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("plain 95%"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\nCPU: "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("of 1 table cases"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("x inpl"), std::string::npos) << text.out;
}

// In-place cases also time the in-place pass (the same bytes loaded and stored back); ropekit
// and the plain loop are reported against it. (Out-of-place cases have none: checked on the
// decode cases above.)
TEST(CliBench, InPlaceCasesReportTheInPlacePass) {
  const json j = parse_json(
      run_cli("bench --rounds 3 --filter 'prefill f32 half plain table inplace t1' --json "
              "--threads 1 --no-reference"));
  ASSERT_EQ(j.size(), 1u);
  const json& c = j[0];
  EXPECT_EQ(c["inplace"], true);
  EXPECT_GT(c["in_place_pass_ms"].get<double>(), 0.0);
  EXPECT_GT(c["x_in_place"].get<double>(), 0.0);
  EXPECT_GT(c["plain_x_in_place"].get<double>(), 0.0);
  EXPECT_GT(c["x_plain"].get<double>(), 0.0);
}

}  // namespace
}  // namespace ropekit::cli_test
