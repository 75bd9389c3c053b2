// The catalogue of bad configs (docs/errors.md "Config errors"): each case asserts the
// exception type, the JSON path it names (ConfigError::path()) and what the message says.
// Contradictory keys and other computable oddities are warnings (checked here too), which
// ParseOptions::strict turns into errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ropekit/ropekit.h"

namespace ropekit {
namespace {

using nlohmann::json;

// ---- helpers ---------------------------------------------------------------------------------

// A valid Llama-3.1-8B-like config; tests edit one key.
json llama3() {
  return json::parse(R"({
    "model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "head_dim": 128,
    "max_position_embeddings": 131072, "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})");
}
json yarn() {
  return json::parse(R"({
    "model_type": "qwen2", "head_dim": 128, "max_position_embeddings": 131072, "rope_theta": 1000000.0,
    "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}})");
}
json longrope(int pairs = 48) {
  json j = json::parse(R"({
    "model_type": "phi3", "hidden_size": 3072, "num_attention_heads": 32,
    "max_position_embeddings": 131072, "original_max_position_embeddings": 4096, "rope_theta": 10000.0,
    "rope_scaling": {"type": "longrope"}})");
  j["rope_scaling"]["short_factor"] = std::vector<double>(static_cast<std::size_t>(pairs), 1.0);
  j["rope_scaling"]["long_factor"] = std::vector<double>(static_cast<std::size_t>(pairs), 2.0);
  return j;
}
json qwen2vl() {
  return json::parse(R"({
    "model_type": "qwen2_vl", "hidden_size": 3584, "num_attention_heads": 28,
    "max_position_embeddings": 32768, "rope_theta": 1000000.0,
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}})");
}
json gemma3_per_layer() {
  return json::parse(R"({
    "model_type": "gemma3_text", "head_dim": 256, "max_position_embeddings": 131072,
    "layer_types": ["sliding_attention", "full_attention"],
    "rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
                        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}})");
}

// j with the value at JSON pointer `ptr` replaced (or added).
json with(json j, const std::string& ptr, const json& value) {
  j[json::json_pointer(ptr)] = value;
  return j;
}
json without(json j, const std::string& ptr) {
  const json::json_pointer p(ptr);
  j[p.parent_pointer()].erase(p.back());
  return j;
}

// Parses and builds a plan for every layer; returns the ConfigError thrown (fails otherwise).
ConfigError config_error(const std::string& text, const ParseOptions& o = {}) {
  try {
    const ModelRope m = parse_hf_config(text, o);
    for (const RopeConfig& c : m.layers) (void)build_frequency_plan(c);
  } catch (const ConfigError& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected ConfigError, got another exception: " << e.what();
    return ConfigError("<wrong type>", e.what());
  }
  ADD_FAILURE() << "expected ConfigError, nothing thrown for: " << text.substr(0, 300);
  return ConfigError("<none>", "");
}
ConfigError config_error(const json& j, const ParseOptions& o = {}) {
  return config_error(j.dump(), o);
}

bool contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

#define EXPECT_CONFIG_ERROR(input, json_path, ...)                          \
  do {                                                                      \
    const ConfigError err_ = config_error(input);                           \
    EXPECT_EQ(err_.path(), json_path) << err_.what();                       \
    for (const std::string needle_ : std::vector<std::string>{__VA_ARGS__}) \
      EXPECT_TRUE(contains(err_.what(), needle_))                           \
          << "\"" << needle_ << "\" not in: " << err_.what();               \
  } while (0)

bool has_warning(const ModelRope& m, const std::string& path, const std::string& needle) {
  for (const auto& w : m.warnings)
    if (w.path == path && contains(w.message, needle)) return true;
  return false;
}
std::string warnings_of(const ModelRope& m) {
  std::string s;
  for (const auto& w : m.warnings) s += "\n  " + w.path + ": " + w.message;
  return s;
}

// ---- the document itself -----------------------------------------------------------------------

TEST(ConfigErrors, MalformedJson) {
  EXPECT_CONFIG_ERROR(std::string(R"({"rope_theta": })"), "", "malformed JSON");
  EXPECT_CONFIG_ERROR(std::string(R"({"rope_theta": 1e4,})"), "", "malformed JSON");
  EXPECT_CONFIG_ERROR(std::string("{'rope_theta': 10000}"), "", "malformed JSON");  // Python dict
  EXPECT_CONFIG_ERROR(std::string(R"({"rope_theta": NaN})"), "",
                      "malformed JSON");  // no NaN literal
  EXPECT_CONFIG_ERROR(std::string(R"({"rope_theta": Infinity})"), "", "malformed JSON");
  EXPECT_CONFIG_ERROR(std::string("{\"a\": \"\xff\xfe\"}"), "", "malformed JSON");  // invalid UTF-8
  EXPECT_CONFIG_ERROR(std::string("{\"head_dim\": 64} trailing"), "", "malformed JSON");
  EXPECT_CONFIG_ERROR(std::string("{\"head_dim\": 64 /* comment */}"), "", "malformed JSON");
}

TEST(ConfigErrors, TruncatedJson) {
  const std::string full = llama3().dump();
  for (std::size_t cut : {std::size_t{1}, full.size() / 3, full.size() / 2, full.size() - 1}) {
    SCOPED_TRACE(cut);
    EXPECT_CONFIG_ERROR(full.substr(0, cut), "", "malformed JSON");
  }
}

TEST(ConfigErrors, EmptyInput) {
  EXPECT_CONFIG_ERROR(std::string(""), "", "empty input", "JSON object");
  EXPECT_CONFIG_ERROR(std::string(" \n\t\r\n"), "", "empty input");
}

TEST(ConfigErrors, NonObjectDocument) {
  for (const char* doc : {"[1, 2]", "42", "\"config\"", "null", "true", "[]"}) {
    SCOPED_TRACE(doc);
    EXPECT_CONFIG_ERROR(std::string(doc), "", "expected a JSON object");
  }
  // ... and the message says what was found
  EXPECT_CONFIG_ERROR(std::string("[1, 2]"), "", "(array)");
}

TEST(ConfigErrors, DeepNestingIsRefusedBeforeParsing) {
  EXPECT_CONFIG_ERROR(std::string(100000, '['), "", "nesting deeper than 64");
  EXPECT_CONFIG_ERROR(std::string(100000, '{'), "", "nesting deeper than 64");
  // Valid but deep JSON under an unknown key: still refused (depth 65 > 64).
  std::string deep =
      R"({"head_dim": 64, "x": )" + std::string(64, '[') + std::string(64, ']') + "}";
  EXPECT_CONFIG_ERROR(deep, "", "nesting deeper than 64");
  // Brackets inside strings do not count; depth 64 itself is fine.
  const std::string in_string = R"({"head_dim": 64, "max_position_embeddings": 4096, "note": ")" +
                                std::string(1000, '[') + R"("})";
  EXPECT_NO_THROW(parse_hf_config(in_string));
  const std::string depth64 = R"({"head_dim": 64, "max_position_embeddings": 4096, "x": )" +
                              std::string(63, '[') + std::string(63, ']') + "}";
  EXPECT_NO_THROW(parse_hf_config(depth64));
  // An escaped quote does not end a string early.
  const std::string escaped =
      R"({"head_dim": 64, "max_position_embeddings": 4096, "n": "\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})";
  EXPECT_NO_THROW(parse_hf_config(escaped));
  // The limit is an option.
  ParseOptions o;
  o.max_depth = 2;
  const ConfigError e = config_error(std::string(R"({"a": [[1]]})"), o);
  EXPECT_TRUE(contains(e.what(), "deeper than 2")) << e.what();
}

TEST(ConfigErrors, HugeInputIsRefusedBeforeParsing) {
  const std::string big = R"({"head_dim": 64, "x": ")" + std::string(17u << 20, 'a') + "\"}";
  EXPECT_CONFIG_ERROR(big, "", "bytes; expected at most 16777216");
  ParseOptions o;
  o.max_bytes = 100;
  const ConfigError e = config_error(llama3().dump(), o);
  EXPECT_TRUE(contains(e.what(), "expected at most 100")) << e.what();
}

TEST(ConfigErrors, HugeArraysAreRefusedByLength) {
  // A factor list of a million entries: refused by its length, naming the key.
  json j = longrope();
  j["rope_scaling"]["long_factor"] = std::vector<double>(1000000, 1.0);
  EXPECT_CONFIG_ERROR(j, "rope_scaling.long_factor", "expected 48 entries", "got 1000000");
  // A huge array under an unrelated key is ignored (it is still within max_bytes).
  json k = llama3();
  k["vocab"] = std::vector<int>(1000000, 7);
  EXPECT_NO_THROW(parse_hf_config(k.dump()));
  // mrope_section as a huge array
  EXPECT_CONFIG_ERROR(with(qwen2vl(), "/rope_scaling/mrope_section", std::vector<int>(100000, 1)),
                      "rope_scaling.mrope_section", "a list of 3 integers");
}

TEST(ConfigErrors, LoadFromFile) {
  EXPECT_THROW(load_hf_config("/nonexistent/ropekit/config.json"), IoError);
  try {
    load_hf_config("/nonexistent/ropekit/config.json");
  } catch (const IoError& e) {
    EXPECT_TRUE(contains(e.what(), "/nonexistent/ropekit/config.json")) << e.what();
  }
  EXPECT_THROW(load_hf_config("/"), IoError);  // a directory
}

// ---- wrong value types
// -----------------------------------------------------------------------------

TEST(ConfigErrors, WrongValueTypes) {
  EXPECT_CONFIG_ERROR(with(llama3(), "/rope_theta", "500000"), "rope_theta", "expected a number",
                      "\"500000\" (string)");
  EXPECT_CONFIG_ERROR(with(llama3(), "/rope_theta", json::array({1})), "rope_theta",
                      "expected a number");
  EXPECT_CONFIG_ERROR(with(llama3(), "/rope_theta", true), "rope_theta", "expected a number",
                      "(boolean)");
  EXPECT_CONFIG_ERROR(with(llama3(), "/head_dim", 128.5), "head_dim", "expected an integer",
                      "128.5");
  EXPECT_CONFIG_ERROR(with(llama3(), "/head_dim", "128"), "head_dim", "expected an integer");
  EXPECT_CONFIG_ERROR(with(llama3(), "/max_position_embeddings", "131072"),
                      "max_position_embeddings", "expected an integer");
  EXPECT_CONFIG_ERROR(with(llama3(), "/rope_scaling", json::array({1, 2})), "rope_scaling",
                      "expected an object or null");
  EXPECT_CONFIG_ERROR(with(llama3(), "/rope_scaling", "llama3"), "rope_scaling",
                      "expected an object");
  EXPECT_CONFIG_ERROR(with(llama3(), "/rope_parameters", 5), "rope_parameters",
                      "expected an object");
  EXPECT_CONFIG_ERROR(with(llama3(), "/rope_scaling/rope_type", 3), "rope_scaling.rope_type",
                      "expected a string", "3 (number)");
  EXPECT_CONFIG_ERROR(with(llama3(), "/rope_scaling/factor", "8"), "rope_scaling.factor",
                      "expected a number");
  EXPECT_CONFIG_ERROR(with(llama3(), "/rope_scaling/factor", json::object()), "rope_scaling.factor",
                      "expected a number", "(object)");
  EXPECT_CONFIG_ERROR(with(llama3(), "/rope_scaling/original_max_position_embeddings", 8192.5),
                      "rope_scaling.original_max_position_embeddings", "expected an integer");
  EXPECT_CONFIG_ERROR(with(llama3(), "/rope_interleave", "yes"), "rope_interleave",
                      "expected true or false");
  EXPECT_CONFIG_ERROR(with(yarn(), "/rope_scaling/truncate", 0), "rope_scaling.truncate",
                      "expected true or false");
  EXPECT_CONFIG_ERROR(with(llama3(), "/model_type", 7), "model_type", "expected a string");
  EXPECT_CONFIG_ERROR(with(llama3(), "/text_config", "x"), "text_config", "expected an object");
  EXPECT_CONFIG_ERROR(with(longrope(), "/rope_scaling/long_factor", 2.0),
                      "rope_scaling.long_factor", "a list of 48 numbers");
  EXPECT_CONFIG_ERROR(with(qwen2vl(), "/rope_scaling/mrope_section", "16,24,24"),
                      "rope_scaling.mrope_section", "a list of 3 integers");
  EXPECT_CONFIG_ERROR(with(qwen2vl(), "/rope_scaling/mrope_interleaved", "no"),
                      "rope_scaling.mrope_interleaved", "expected true or false");
  // Integers beyond int64, and integral floats (accepted as integers).
  EXPECT_CONFIG_ERROR(with(llama3(), "/max_position_embeddings", 18446744073709551615ull),
                      "max_position_embeddings", "below 2^63");
  EXPECT_NO_THROW(parse_hf_config(with(llama3(), "/max_position_embeddings", 131072.0).dump()));
}

TEST(ConfigErrors, NumbersTooLargeForADoubleNameTheirKey) {
  // JSON has no NaN or Infinity; 1e999 is the way to write infinity. It is refused while parsing,
  // naming the key it was written under and quoting the literal.
  for (const char* big : {"1e999", "-1e999", "1E+400"}) {
    SCOPED_TRACE(big);
    std::string text = llama3().dump();
    const std::string key = "\"rope_theta\":500000.0";
    ASSERT_NE(text.find(key), std::string::npos);
    text.replace(text.find(key), key.size(), std::string("\"rope_theta\":") + big);
    EXPECT_CONFIG_ERROR(text, "rope_theta", "expected a finite number", "too large for a double",
                        big);
  }
  std::string factor = llama3().dump();
  const std::string fkey = "\"factor\":8.0";
  factor.replace(factor.find(fkey), fkey.size(), "\"factor\":1e999");
  EXPECT_CONFIG_ERROR(factor, "rope_scaling.factor", "expected a finite number",
                      "too large for a double");
  // Entries of factor lists too.
  std::string lr = longrope().dump();
  const std::string first = "\"long_factor\":[2.0,";
  ASSERT_NE(lr.find(first), std::string::npos);
  lr.replace(lr.find(first), first.size(), "\"long_factor\":[2.0,1e999,");
  EXPECT_CONFIG_ERROR(lr, "rope_scaling.long_factor[1]", "expected a finite number > 0", "1e999");
  // Integer keys say so.
  std::string mp = llama3().dump();
  const std::string mkey = "\"max_position_embeddings\":131072";
  mp.replace(mp.find(mkey), mkey.size(), "\"max_position_embeddings\":1e999");
  EXPECT_CONFIG_ERROR(mp, "max_position_embeddings", "expected an integer",
                      "too large for a double");
  // Integers beyond 64 bits are read as floating point and refused as integers.
  std::string wide = llama3().dump();
  wide.replace(wide.find(mkey), mkey.size(), "\"max_position_embeddings\":99999999999999999999999");
  EXPECT_CONFIG_ERROR(wide, "max_position_embeddings", "expected an integer");
  // Tiny numbers underflow to 0 (or a subnormal) and are then checked like any value.
  std::string tiny = llama3().dump();
  tiny.replace(tiny.find(fkey), fkey.size(), "\"factor\":1e-400");
  EXPECT_CONFIG_ERROR(tiny, "rope_scaling.factor", "expected a finite number > 0");
}

// ---- non-positive where a positive finite number is needed
// ----------------------------------------

TEST(ConfigErrors, NonPositiveTheta) {
  for (double v : {0.0, -10000.0}) {
    SCOPED_TRACE(v);
    EXPECT_CONFIG_ERROR(with(llama3(), "/rope_theta", v), "rope_theta",
                        "expected a finite number > 0");
    EXPECT_CONFIG_ERROR(with(gemma3_per_layer(), "/rope_parameters/full_attention/rope_theta", v),
                        "rope_parameters.full_attention.rope_theta",
                        "expected a finite number > 0");
  }
  EXPECT_CONFIG_ERROR(
      json::parse(R"({"model_type":"gpt_neox","hidden_size":2048,"num_attention_heads":16,
    "rotary_pct":0.25,"rotary_emb_base":-1,"max_position_embeddings":2048})"),
      "rotary_emb_base", "expected a finite number > 0");
  EXPECT_CONFIG_ERROR(
      json::parse(R"({"model_type":"gemma3","head_dim":256,"max_position_embeddings":8192,
    "rope_theta":1000000,"rope_local_base_freq":0})"),
      "rope_local_base_freq", "expected a finite number > 0");
}

// theta in (0, 1] parses (the parser asks for > 0), but build_frequency_plan refuses it (it asks
// for > 1) naming "rope_theta", not the key of the config (see the report: the parser should
// refuse it with the config's path, as it does for theta <= 0).
TEST(ConfigErrors, ThetaAtMostOneNamesTheKey) {
  for (double v : {0.5, 1.0}) {
    SCOPED_TRACE(v);
    const ConfigError e =
        config_error(with(gemma3_per_layer(), "/rope_parameters/full_attention/rope_theta", v));
    EXPECT_EQ(e.path(), "rope_parameters.full_attention.rope_theta") << e.what();
    EXPECT_TRUE(contains(e.what(), "> 1")) << e.what();
  }
}

TEST(ConfigErrors, NonPositiveFactors) {
  for (double v : {0.0, -2.0}) {
    SCOPED_TRACE(v);
    EXPECT_CONFIG_ERROR(with(llama3(), "/rope_scaling/factor", v), "rope_scaling.factor",
                        "expected a finite number > 0");
    EXPECT_CONFIG_ERROR(with(yarn(), "/rope_scaling/factor", v), "rope_scaling.factor",
                        "expected a finite number > 0");
    const json lin = json::parse(R"({"head_dim":128,"max_position_embeddings":4096,
      "rope_scaling":{"type":"linear","factor":2}})");
    EXPECT_CONFIG_ERROR(with(lin, "/rope_scaling/factor", v), "rope_scaling.factor", "> 0");
    EXPECT_CONFIG_ERROR(with(with(lin, "/rope_scaling/type", "dynamic"), "/rope_scaling/factor", v),
                        "rope_scaling.factor", "> 0");
    EXPECT_CONFIG_ERROR(
        with(with(lin, "/rope_scaling/type", "proportional"), "/rope_scaling/factor", v),
        "rope_scaling.factor", "> 0");
    EXPECT_CONFIG_ERROR(with(longrope(), "/rope_scaling/factor", v), "rope_scaling.factor", "> 0");
  }
}

TEST(ConfigErrors, MissingRequiredKeys) {
  EXPECT_CONFIG_ERROR(without(llama3(), "/rope_scaling/factor"), "rope_scaling.factor",
                      "required key is missing");
  EXPECT_CONFIG_ERROR(without(llama3(), "/rope_scaling/low_freq_factor"),
                      "rope_scaling.low_freq_factor", "required key is missing");
  EXPECT_CONFIG_ERROR(without(llama3(), "/rope_scaling/high_freq_factor"),
                      "rope_scaling.high_freq_factor", "required key is missing");
  EXPECT_CONFIG_ERROR(without(llama3(), "/rope_scaling/original_max_position_embeddings"),
                      "rope_scaling.original_max_position_embeddings", "required key is missing");
  EXPECT_CONFIG_ERROR(without(yarn(), "/rope_scaling/factor"), "rope_scaling.factor",
                      "required key is missing");
  EXPECT_CONFIG_ERROR(without(longrope(), "/rope_scaling/short_factor"),
                      "rope_scaling.short_factor", "required key is missing", "48 numbers");
  EXPECT_CONFIG_ERROR(json::parse(R"({"head_dim":128,"max_position_embeddings":4096,
    "rope_scaling":{"type":"linear"}})"),
                      "rope_scaling.factor", "required key is missing");
}

TEST(ConfigErrors, NonPositiveIntegers) {
  for (std::int64_t v : {0, -5}) {
    SCOPED_TRACE(v);
    EXPECT_CONFIG_ERROR(with(llama3(), "/rope_scaling/original_max_position_embeddings", v),
                        "rope_scaling.original_max_position_embeddings", "expected an integer > 0");
    EXPECT_CONFIG_ERROR(with(yarn(), "/rope_scaling/original_max_position_embeddings", v),
                        "rope_scaling.original_max_position_embeddings", "expected an integer > 0");
    EXPECT_CONFIG_ERROR(with(longrope(), "/original_max_position_embeddings", v),
                        "original_max_position_embeddings", "expected an integer > 0");
    EXPECT_CONFIG_ERROR(with(llama3(), "/max_position_embeddings", v), "max_position_embeddings",
                        "expected an integer > 0");
    EXPECT_CONFIG_ERROR(with(llama3(), "/head_dim", v), "head_dim",
                        "expected an integer in [1, 2^20]");
    EXPECT_CONFIG_ERROR(without(with(llama3(), "/hidden_size", v), "/head_dim"), "hidden_size",
                        "expected an integer > 0");
    EXPECT_CONFIG_ERROR(without(with(llama3(), "/num_attention_heads", v), "/head_dim"),
                        "num_attention_heads", "expected an integer > 0");
  }
  EXPECT_CONFIG_ERROR(with(llama3(), "/head_dim", std::int64_t{1} << 21), "head_dim", "[1, 2^20]");
}

TEST(ConfigErrors, YarnParameters) {
  for (double v : {-1.0, -32.0}) {
    SCOPED_TRACE(v);
    EXPECT_CONFIG_ERROR(with(yarn(), "/rope_scaling/beta_fast", v), "rope_scaling.beta_fast",
                        "expected a finite number > 0");
    EXPECT_CONFIG_ERROR(with(yarn(), "/rope_scaling/beta_slow", v), "rope_scaling.beta_slow",
                        "expected a finite number > 0");
    EXPECT_CONFIG_ERROR(with(yarn(), "/rope_scaling/attention_factor", v),
                        "rope_scaling.attention_factor", "expected a finite number > 0");
  }
  EXPECT_CONFIG_ERROR(with(yarn(), "/rope_scaling/attention_factor", 0.0),
                      "rope_scaling.attention_factor", "expected a finite number > 0");
  // transformers' `beta_fast or 32`: 0 (and null) take the defaults; not an error.
  const ModelRope m = parse_hf_config(with(yarn(), "/rope_scaling/beta_fast", 0).dump());
  EXPECT_EQ(std::get<YarnScaling>(m.layers[0].scaling).beta_fast, 32.0);
  // Reversed betas: computable, a warning.
  const ModelRope r = parse_hf_config(with(yarn(), "/rope_scaling/beta_fast", 0.5).dump());
  EXPECT_TRUE(has_warning(r, "rope_scaling.beta_fast", "reversed")) << warnings_of(r);
}

// DeepSeek's mscale / mscale_all_dim enter the attention factor as
// (0.1·mscale·ln s + 1) / (0.1·mscale_all_dim·ln s + 1); values making it <= 0 or infinite cannot
// give a rotation and must be refused naming the key (see the report).
TEST(ConfigErrors, YarnMscaleGivingANonPositiveAttentionFactorNamesTheKey) {
  json ds = yarn();
  ds["rope_scaling"]["factor"] = 40.0;
  ds["rope_scaling"]["mscale"] = -10.0;  // 0.1·(−10)·ln 40 + 1 < 0
  ds["rope_scaling"]["mscale_all_dim"] = 1.0;
  const ConfigError e = config_error(ds);
  EXPECT_TRUE(contains(e.what(), "mscale")) << "path " << e.path() << ": " << e.what();
}

TEST(ConfigErrors, Llama3HighBelowLow) {
  EXPECT_CONFIG_ERROR(with(with(llama3(), "/rope_scaling/low_freq_factor", 4.0),
                           "/rope_scaling/high_freq_factor", 1.0),
                      "rope_scaling.high_freq_factor",
                      "expected high_freq_factor >= low_freq_factor");
  // Equal factors (Llama 4 Scout): computable, a warning.
  const ModelRope m = parse_hf_config(with(llama3(), "/rope_scaling/high_freq_factor", 1.0).dump());
  EXPECT_TRUE(has_warning(m, "rope_scaling.high_freq_factor", "no blended band")) << warnings_of(m);
  for (double v : {0.0, -1.0}) {
    EXPECT_CONFIG_ERROR(with(llama3(), "/rope_scaling/low_freq_factor", v),
                        "rope_scaling.low_freq_factor", "expected a finite number > 0");
    EXPECT_CONFIG_ERROR(with(llama3(), "/rope_scaling/high_freq_factor", v),
                        "rope_scaling.high_freq_factor", "expected a finite number > 0");
  }
}

// ---- factor lists
// ---------------------------------------------------------------------------------

TEST(ConfigErrors, FactorListsOfTheWrongLength) {
  json j = longrope();
  j["rope_scaling"]["short_factor"] = std::vector<double>(47, 1.0);
  EXPECT_CONFIG_ERROR(j, "rope_scaling.short_factor", "expected 48 entries", "rotary_dim/2",
                      "got 47");
  j = longrope();
  j["rope_scaling"]["long_factor"] = std::vector<double>(96, 1.0);  // head_dim, not head_dim/2
  EXPECT_CONFIG_ERROR(j, "rope_scaling.long_factor", "expected 48 entries", "got 96");
  j = longrope();
  j["rope_scaling"]["long_factor"] = json::array();
  EXPECT_CONFIG_ERROR(j, "rope_scaling.long_factor", "expected 48 entries", "got 0");
  // With partial rotary the length follows rotary_dim: 0.5 · 96 = 48 features → 24 pairs.
  j = longrope();
  j["partial_rotary_factor"] = 0.5;
  EXPECT_CONFIG_ERROR(j, "rope_scaling.short_factor", "expected 24 entries", "got 48");
}

TEST(ConfigErrors, FactorListsWithBadEntries) {
  struct Case {
    json value;
    const char* expect;
  };
  for (const Case& c :
       {Case{0.0, "> 0"}, Case{-1.5, "> 0"}, Case{"1.0", "(string)"}, Case{nullptr, "(null)"},
        Case{json::array({1.0}), "(array)"}, Case{true, "(boolean)"}}) {
    SCOPED_TRACE(c.value.dump());
    json j = longrope();
    j["rope_scaling"]["short_factor"][7] = c.value;
    EXPECT_CONFIG_ERROR(j, "rope_scaling.short_factor[7]", "expected a finite number > 0",
                        c.expect);
  }
}

// ---- rotary width
// ---------------------------------------------------------------------------------

TEST(ConfigErrors, RotaryWidthZeroOddOrAboveHeadDim) {
  const json base =
      json::parse(R"({"model_type":"llama","head_dim":64,"max_position_embeddings":4096})");
  EXPECT_CONFIG_ERROR(with(base, "/partial_rotary_factor", 0.0), "partial_rotary_factor", "(0, 1]");
  EXPECT_CONFIG_ERROR(with(base, "/partial_rotary_factor", -0.5), "partial_rotary_factor",
                      "(0, 1]");
  EXPECT_CONFIG_ERROR(with(base, "/partial_rotary_factor", 1.5), "partial_rotary_factor", "(0, 1]",
                      "1.5");
  // int(64 · 0.3) = 19: odd
  EXPECT_CONFIG_ERROR(with(base, "/partial_rotary_factor", 0.3), "partial_rotary_factor", "= 19",
                      "expected an even number > 0");
  // int(64 · 0.01) = 0
  EXPECT_CONFIG_ERROR(with(base, "/partial_rotary_factor", 0.01), "partial_rotary_factor", "= 0",
                      "expected an even number > 0");
  // In the rope dict (transformers v5) and GPT-NeoX's rotary_pct.
  EXPECT_CONFIG_ERROR(with(base, "/rope_parameters",
                           json{{"rope_type", "default"}, {"partial_rotary_factor", 2.0}}),
                      "rope_parameters.partial_rotary_factor", "(0, 1]");
  EXPECT_CONFIG_ERROR(
      json::parse(R"({"model_type":"gpt_neox","hidden_size":2048,"num_attention_heads":16,
    "rotary_pct":1.25,"max_position_embeddings":2048})"),
      "rotary_pct", "(0, 1]");
  // Explicit rotary_dim (phi-msft, ChatGLM): above head_dim, zero.
  EXPECT_CONFIG_ERROR(with(base, "/rotary_dim", 65), "rotary_dim", "head_dim = 64");
  EXPECT_CONFIG_ERROR(with(base, "/rotary_dim", 0), "rotary_dim", "head_dim = 64");
  // DeepSeek: qk_rope_head_dim is the rotated width.
  EXPECT_CONFIG_ERROR(
      json::parse(
          R"({"model_type":"deepseek_v3","qk_rope_head_dim":0,"max_position_embeddings":4096})"),
      "qk_rope_head_dim", "expected an integer > 0");
}

// An odd explicit rotary_dim must be reported under the key it came from (see the report).
TEST(ConfigErrors, OddExplicitRotaryDimNamesRotaryDim) {
  const json base = json::parse(
      R"({"model_type":"phi-msft","head_dim":64,"max_position_embeddings":4096,"rotary_dim":33})");
  const ConfigError e = config_error(base);
  EXPECT_EQ(e.path(), "rotary_dim") << e.what();
  EXPECT_TRUE(contains(e.what(), "33")) << e.what();
}

TEST(ConfigErrors, OddHeadDim) {
  EXPECT_CONFIG_ERROR(with(llama3(), "/head_dim", 127), "head_dim", "expected an even head_dim",
                      "127");
  EXPECT_CONFIG_ERROR(
      json::parse(
          R"({"hidden_size":4095,"num_attention_heads":35,"max_position_embeddings":4096})"),
      "head_dim", "even head_dim", "117");
}

TEST(ConfigErrors, HeadDimNotDerivable) {
  EXPECT_CONFIG_ERROR(json::parse(R"({"model_type":"llama","max_position_embeddings":4096})"),
                      "head_dim", "head_dim is not derivable", "hidden_size",
                      "num_attention_heads");
  EXPECT_CONFIG_ERROR(json::parse(R"({"hidden_size":4096,"max_position_embeddings":4096})"),
                      "head_dim", "not derivable");
  EXPECT_CONFIG_ERROR(json::parse(R"({"num_attention_heads":32,"max_position_embeddings":4096})"),
                      "head_dim", "not derivable");
  EXPECT_CONFIG_ERROR(
      json::parse(
          R"({"hidden_size":4096,"num_attention_heads":30,"max_position_embeddings":4096})"),
      "hidden_size", "not derivable", "4096", "not a multiple of num_attention_heads 30");
  // Nothing derivable in text_config either.
  EXPECT_CONFIG_ERROR(
      json::parse(R"({"model_type":"qwen2_vl","text_config":{"max_position_embeddings":4096}})"),
      "text_config.head_dim", "not derivable");
}

// ---- rope types
// -----------------------------------------------------------------------------------

TEST(ConfigErrors, UnknownRopeTypeListsTheSupportedOnes) {
  const ConfigError e = config_error(with(llama3(), "/rope_scaling/rope_type", "ntk-by-magic"));
  EXPECT_EQ(e.path(), "rope_scaling.rope_type");
  EXPECT_TRUE(contains(e.what(), "unknown rope type \"ntk-by-magic\"")) << e.what();
  for (const char* t :
       {"default", "linear", "dynamic", "yarn", "longrope", "llama3", "proportional", "su"})
    EXPECT_TRUE(contains(e.what(), t)) << t << " not listed: " << e.what();
  EXPECT_CONFIG_ERROR(
      json::parse(
          R"({"head_dim":64,"max_position_embeddings":4096,"rope_scaling":{"type":"Linear","factor":2}})"),
      "rope_scaling.type", "unknown rope type \"Linear\"");
  EXPECT_CONFIG_ERROR(
      json::parse(R"({"head_dim":64,"max_position_embeddings":4096,"rope_scaling":{"type":""}})"),
      "rope_scaling.type", "unknown rope type \"\"");
  EXPECT_CONFIG_ERROR(
      with(gemma3_per_layer(), "/rope_parameters/sliding_attention/rope_type", "xpos"),
      "rope_parameters.sliding_attention.rope_type", "unknown rope type \"xpos\"");
}

// ---- per-layer dicts
// --------------------------------------------------------------------------------

TEST(ConfigErrors, PerLayerDictsNamingUnknownLayers) {
  json j = gemma3_per_layer();
  j["rope_parameters"]["chunked_attention"] = json{{"rope_type", "default"}};
  EXPECT_CONFIG_ERROR(j, "rope_parameters.chunked_attention",
                      "expected a layer type listed in layer_types",
                      "full_attention, sliding_attention", "\"chunked_attention\"");
  // Without layer_types there is nothing to check against: every name is a layer type.
  const ModelRope m = parse_hf_config(without(j, "/layer_types").dump());
  EXPECT_EQ(m.layers.size(), 3u);
  EXPECT_THROW((void)m.layer("global"), ArgumentError);
  try {
    (void)m.layer("global");
  } catch (const ArgumentError& e) {
    EXPECT_TRUE(contains(e.what(), "\"global\"")) << e.what();
    EXPECT_TRUE(contains(e.what(), "full_attention")) << e.what();
  }
  // layer_types naming a type that has no rope dict: that layer would get no RoPE.
  json lt = gemma3_per_layer();
  lt["layer_types"] = {"sliding_attention", "full_attention", "chunked_attention"};
  EXPECT_CONFIG_ERROR(lt, "layer_types[2]", "expected one of the rope layer types",
                      "\"chunked_attention\"");
  EXPECT_CONFIG_ERROR(with(gemma3_per_layer(), "/layer_types", "full_attention"), "layer_types",
                      "expected a list of layer type names");
  EXPECT_CONFIG_ERROR(with(gemma3_per_layer(), "/layer_types",
                           json::array({3, "full_attention", "sliding_attention"})),
                      "layer_types[0]", "expected a layer type name");
  // Per-layer NoPE flags and Gemma 3's pattern.
  EXPECT_CONFIG_ERROR(with(llama3(), "/no_rope_layers", json::array({1, 0, 2})),
                      "no_rope_layers[2]", "0 (NoPE) or 1 (RoPE)");
  EXPECT_CONFIG_ERROR(
      json::parse(R"({"model_type":"gemma3_text","head_dim":256,"max_position_embeddings":8192,
    "num_hidden_layers":4,"sliding_window_pattern":0})"),
      "sliding_window_pattern", "an integer > 0");
  // An error inside one layer's dict names that layer's path.
  EXPECT_CONFIG_ERROR(with(gemma3_per_layer(), "/rope_parameters/full_attention/factor", -8.0),
                      "rope_parameters.full_attention.factor", "> 0");
}

// ---- multimodal sections
// --------------------------------------------------------------------------

TEST(ConfigErrors, MropeSections) {
  // Qwen2-VL: head_dim 128 → 64 pairs; [16, 24, 24] sums to 64.
  EXPECT_CONFIG_ERROR(with(qwen2vl(), "/rope_scaling/mrope_section", json::array({16, 24, 20})),
                      "rope_scaling.mrope_section", "summing to rotary_dim/2 = 64", "(sum 60)");
  EXPECT_CONFIG_ERROR(with(qwen2vl(), "/rope_scaling/mrope_section", json::array({32, 32})),
                      "rope_scaling.mrope_section", "a list of 3 integers");
  EXPECT_CONFIG_ERROR(with(qwen2vl(), "/rope_scaling/mrope_section", json::array({16, 24, 24, 0})),
                      "rope_scaling.mrope_section", "a list of 3 integers");
  EXPECT_CONFIG_ERROR(with(qwen2vl(), "/rope_scaling/mrope_section", json::array({16, -24, 72})),
                      "rope_scaling.mrope_section[1]", "an integer >= 0");
  EXPECT_CONFIG_ERROR(with(qwen2vl(), "/rope_scaling/mrope_section", json::array({16, 24.5, 23.5})),
                      "rope_scaling.mrope_section[1]", "an integer >= 0");
  EXPECT_CONFIG_ERROR(with(qwen2vl(), "/rope_scaling/mrope_section", json::array({16, "24", 24})),
                      "rope_scaling.mrope_section[1]", "an integer");
  // Qwen3-VL's interleaved assignment: 3·h and 3·w must fit the pairs.
  const json q3 =
      json::parse(R"({"model_type":"qwen3_vl_text","head_dim":128,"max_position_embeddings":262144,
    "rope_theta":5000000,"rope_scaling":{"rope_type":"default","mrope_section":[4,30,30],"mrope_interleaved":true}})");
  EXPECT_CONFIG_ERROR(q3, "rope_scaling.mrope_section", "3·h and 3·w within the pairs",
                      "[4, 30, 30]");
  // Partial rotary halves the pairs the sections must cover.
  EXPECT_CONFIG_ERROR(with(qwen2vl(), "/partial_rotary_factor", 0.5), "rope_scaling.mrope_section",
                      "rotary_dim/2 = 32");
}

// ---- contradictory keys: which wins is a warning
// ------------------------------------------------------

TEST(ConfigWarnings, RopeParametersWinOverRopeScaling) {
  json j = llama3();
  j["rope_parameters"] = json{{"rope_type", "linear"}, {"factor", 2.0}};
  const ModelRope m = parse_hf_config(j.dump());
  EXPECT_TRUE(has_warning(m, "rope_scaling", "rope_parameters wins")) << warnings_of(m);
  EXPECT_TRUE(std::holds_alternative<LinearScaling>(m.layers.at(0).scaling));
  ParseOptions strict;
  strict.strict = true;
  const ConfigError e = config_error(j, strict);
  EXPECT_EQ(e.path(), "rope_scaling");
  EXPECT_TRUE(contains(e.what(), "strict: warnings are errors")) << e.what();
}

TEST(ConfigWarnings, RopeTypeWinsOverType) {
  json j = llama3();
  j["rope_scaling"]["type"] = "linear";  // rope_type says llama3
  const ModelRope m = parse_hf_config(j.dump());
  EXPECT_TRUE(has_warning(m, "rope_scaling.type", "rope_type wins")) << warnings_of(m);
  EXPECT_TRUE(std::holds_alternative<Llama3Scaling>(m.layers.at(0).scaling));
  // Agreeing keys are no warning.
  j["rope_scaling"]["type"] = "llama3";
  EXPECT_FALSE(has_warning(parse_hf_config(j.dump()), "rope_scaling.type", "wins"));
  // An unknown `type` loses to a known `rope_type` and is not checked (transformers reads
  // rope_type).
  j["rope_scaling"]["type"] = "nonsense";
  EXPECT_TRUE(
      std::holds_alternative<Llama3Scaling>(parse_hf_config(j.dump()).layers.at(0).scaling));
}

TEST(ConfigWarnings, DictThetaWinsOverTopLevelTheta) {
  json j = gemma3_per_layer();
  j["rope_theta"] = 5.0e5;
  const ModelRope m = parse_hf_config(j.dump());
  EXPECT_TRUE(has_warning(m, "rope_parameters.full_attention.rope_theta", "rope dict's value wins"))
      << warnings_of(m);
  EXPECT_EQ(m.layer("full_attention").rope_theta, 1.0e6);
}

TEST(ConfigWarnings, StrictModeTurnsEachWarningIntoAnError) {
  ParseOptions strict;
  strict.strict = true;
  // unknown key in the rope dict
  EXPECT_EQ(config_error(with(llama3(), "/rope_scaling/betta", 1), strict).path(),
            "rope_scaling.betta");
  EXPECT_NO_THROW(parse_hf_config(with(llama3(), "/rope_scaling/betta", 1).dump()));
  // max_position_embeddings absent (the config class default is used)
  const ConfigError e = config_error(without(llama3(), "/max_position_embeddings"), strict);
  EXPECT_EQ(e.path(), "max_position_embeddings");
  EXPECT_TRUE(contains(e.what(), "absent")) << e.what();
  // factor below 1
  EXPECT_EQ(config_error(with(with(llama3(), "/rope_scaling/factor", 0.5),
                              "/rope_scaling/low_freq_factor", 1.0),
                         strict)
                .path(),
            "rope_scaling.factor");
  // A config without warnings passes strict mode.
  EXPECT_NO_THROW(parse_hf_config(llama3().dump(), strict));
}

// ---- plans: bad sequence lengths, invalid hand-made configs
// ---------------------------------------------

TEST(PlanErrors, SequenceLengthMustBePositive) {
  const ModelRope m = parse_hf_config(llama3().dump());
  for (std::int64_t s : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{-4096}}) {
    SCOPED_TRACE(s);
    try {
      (void)build_frequency_plan(m.layers[0], s);
      ADD_FAILURE() << "no throw";
    } catch (const ArgumentError& e) {
      EXPECT_TRUE(contains(e.what(), "seq_len")) << e.what();
      EXPECT_TRUE(contains(e.what(), std::to_string(s))) << e.what();
    }
  }
  RopeState state(m.layers[0]);
  EXPECT_THROW((void)state.plan_for(-3), ArgumentError);
}

TEST(PlanErrors, HandMadeConfigsAreValidatedToo) {
  RopeConfig c;
  c.head_dim = 64;
  c.rotary_dim = 64;
  c.max_position_embeddings = 4096;
  auto expect = [](const RopeConfig& cfg, const std::string& path) {
    try {
      (void)build_frequency_plan(cfg);
      ADD_FAILURE() << "no throw for " << path;
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.path(), path) << e.what();
    }
  };
  RopeConfig b = c;
  b.head_dim = 63;
  expect(b, "head_dim");
  b = c;
  b.rotary_dim = 66;
  expect(b, "rotary_dim");
  b = c;
  b.rotary_dim = 0;
  expect(b, "rotary_dim");
  b = c;
  b.rope_theta = std::nan("");
  expect(b, "rope_theta");
  b = c;
  b.max_position_embeddings = 0;
  expect(b, "max_position_embeddings");
  b = c;
  b.rotary_dim = 2;
  b.scaling = DynamicNtkScaling{2.0, std::nullopt};  // exponent d/(d-2)
  expect(b, "partial_rotary_factor");
}

// ---- mlx-lm's factory
// ---------------------------------------------------------------------------------

ConfigError kwargs_error(const std::string& kwargs) {
  try {
    (void)initialize_rope_from_kwargs(kwargs);
  } catch (const ConfigError& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected ConfigError, got: " << e.what();
    return ConfigError("<wrong type>", e.what());
  }
  ADD_FAILURE() << "expected ConfigError for " << kwargs.substr(0, 200);
  return ConfigError("<none>", "");
}

TEST(MlxFactoryErrors, KwargsDocument) {
  EXPECT_TRUE(contains(kwargs_error("").what(), "malformed JSON"));
  EXPECT_TRUE(contains(kwargs_error("{\"dims\": 64").what(), "malformed JSON"));
  EXPECT_TRUE(
      contains(kwargs_error("[64]").what(), "an object of initialize_rope keyword arguments"));
  EXPECT_EQ(kwargs_error("{}").path(), "dims");
  EXPECT_EQ(kwargs_error(R"({"dims": 63})").path(), "dims");
  EXPECT_EQ(kwargs_error(R"({"dims": 0})").path(), "dims");
  EXPECT_EQ(kwargs_error(R"({"dims": "64"})").path(), "dims");
  EXPECT_EQ(kwargs_error(R"({"dims": 64, "base": 1.0})").path(), "base");
  EXPECT_EQ(kwargs_error(R"({"dims": 64, "base": -10000})").path(), "base");
  EXPECT_EQ(kwargs_error(R"({"dims": 64, "base": 1e999})").path(), "base");
  EXPECT_EQ(kwargs_error(R"({"dims": 64, "traditional": 1})").path(), "traditional");
  EXPECT_EQ(kwargs_error(R"({"dims": 64, "max_position_embeddings": 0})").path(),
            "max_position_embeddings");
  EXPECT_EQ(kwargs_error(R"({"dims": 64, "scaling_config": [1]})").path(), "scaling_config");
}

TEST(MlxFactoryErrors, ScalingConfig) {
  const ConfigError u = kwargs_error(R"({"dims": 64, "scaling_config": {"type": "su"}})");
  EXPECT_EQ(u.path(), "scaling_config.type");
  EXPECT_TRUE(contains(u.what(), "Unsupported RoPE type su")) << u.what();
  EXPECT_TRUE(contains(u.what(), "longrope")) << u.what();
  EXPECT_EQ(kwargs_error(R"({"dims": 64, "scaling_config": {"type": "linear"}})").path(),
            "scaling_config.factor");
  EXPECT_EQ(
      kwargs_error(R"({"dims": 64, "scaling_config": {"type": "linear", "factor": 0}})").path(),
      "scaling_config.factor");
  EXPECT_EQ(
      kwargs_error(R"({"dims": 64, "scaling_config": {"type": "llama3", "factor": -8}})").path(),
      "scaling_config.factor");
  EXPECT_EQ(
      kwargs_error(R"({"dims": 64, "scaling_config": {"type": "dynamic", "factor": 2}})").path(),
      "max_position_embeddings");
  EXPECT_EQ(
      kwargs_error(
          R"({"dims": 2, "max_position_embeddings": 4096, "scaling_config": {"type": "dynamic", "factor": 2}})")
          .path(),
      "dims");
  EXPECT_EQ(kwargs_error(
                R"({"dims": 64, "scaling_config": {"type": "mrope", "mrope_section": [16, 16]}})")
                .path(),
            "scaling_config.mrope_section");
  EXPECT_EQ(
      kwargs_error(
          R"({"dims": 4, "max_position_embeddings": 8192, "scaling_config": {"type": "longrope",
    "original_max_position_embeddings": 4096, "short_factor": [1, 1], "long_factor": [1, 1, 1]}})")
          .path(),
      "scaling_config.long_factor");
  EXPECT_EQ(
      kwargs_error(
          R"({"dims": 4, "max_position_embeddings": 8192, "scaling_config": {"type": "longrope",
    "original_max_position_embeddings": 4096, "long_factor": [1, 1]}})")
          .path(),
      "scaling_config.short_factor");
  EXPECT_EQ(
      kwargs_error(
          R"({"dims": 64, "scaling_config": {"type": "proportional", "partial_rotary_factor": 2}})")
          .path(),
      "scaling_config.partial_rotary_factor");
}

// YaRN betas enter logarithms: beta_fast <= 0 gives NaN frequencies in mlx-lm. ropekit must refuse
// them with a ConfigError naming the key rather than return NaN periods (see the report).
TEST(MlxFactoryErrors, YarnBetasThatGiveNaNAreRefused) {
  for (const char* beta : {R"("beta_fast": 0)", R"("beta_fast": -32)", R"("beta_slow": -1)"}) {
    SCOPED_TRACE(beta);
    const std::string kw =
        std::string(R"({"dims": 64, "scaling_config": {"type": "yarn", "factor": 4, )") + beta +
        "}}";
    try {
      const MlxRope r = initialize_rope_from_kwargs(kw);
      const auto bad =
          std::count_if(r.freqs.begin(), r.freqs.end(), [](float f) { return !(f > 0); });
      EXPECT_EQ(bad, 0) << "periods that are not > 0 (NaN), e.g. " << r.freqs.back();
      EXPECT_TRUE(std::isfinite(r.input_prescale) && r.input_prescale > 0) << r.input_prescale;
    } catch (const ConfigError& e) {
      EXPECT_TRUE(contains(e.what(), "beta")) << e.what();
    }
  }
  // mscale making the prescale non-positive
  try {
    const MlxRope r = initialize_rope_from_kwargs(
        R"({"dims": 64, "scaling_config": {"type": "yarn", "factor": 40, "mscale": -10}})");
    EXPECT_TRUE(std::isfinite(r.input_prescale) && r.input_prescale > 0) << r.input_prescale;
  } catch (const ConfigError& e) {
    EXPECT_TRUE(contains(e.what(), "mscale")) << e.what();
  }
}

// MLX rounds fast.rope's base to float32: a base beyond 3.4e38 (finite as a double) would become
// inf there and the first frequency NaN. The factory refuses it at "base"; dynamic NTK, whose base
// grows with each call's length, refuses the call that would push it beyond float32.
TEST(MlxFactoryErrors, BaseBeyondFloat32IsRefused) {
  const ConfigError refused = kwargs_error(R"({"dims": 128, "base": 5e38})");
  EXPECT_EQ(refused.path(), "base");
  EXPECT_TRUE(contains(refused.what(), "float32")) << refused.what();
  const MlxRope fits = initialize_rope_from_kwargs(R"({"dims": 128, "base": 3e38})");
  const FrequencyPlan p = fits.plan_for_call(1, 0, 128);
  EXPECT_TRUE(std::all_of(p.inv_freq.begin(), p.inv_freq.end(),
                          [](float f) { return std::isfinite(f) && f > 0; }));

  const MlxRope dyn = initialize_rope_from_kwargs(
      R"({"dims": 64, "base": 1e38, "max_position_embeddings": 4096, "scaling_config": {"type": "dynamic", "factor": 2}})");
  EXPECT_NO_THROW(
      (void)dyn.plan_for_call(4096, 0, 64));  // no growth within max_position_embeddings
  try {
    (void)dyn.plan_for_call(1, 1000000, 64);
    ADD_FAILURE() << "a dynamic base grown beyond float32 was accepted";
  } catch (const ArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("1 + 1000000"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("float32"), std::string::npos) << e.what();
  }
}

// Deeply nested kwargs must be a ConfigError, not a stack overflow (the message renders the value;
// scaling_config is re-serialized): see the report.
TEST(MlxFactoryErrors, DeepNestingIsAnErrorNotACrash) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const ConfigError a = kwargs_error(R"({"dims": )" + deep + "}");
  EXPECT_EQ(a.path(), "dims");
  (void)kwargs_error(R"({"dims": 64, "scaling_config": )" + deep + "}");
  (void)kwargs_error(R"({"dims": 64, "scaling_config": {"type": "linear", "factor": )" + deep +
                     "}}");
  EXPECT_THROW((void)initialize_rope(64, 10000.0, false, deep), ConfigError);
}

}  // namespace
}  // namespace ropekit
