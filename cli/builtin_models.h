// Internal to the ropekit command: the built-in models, real configs of released models embedded
// in the binary at build time from models/*.json, each with its provenance (models/SOURCES.json).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ropekit::cli {

struct BuiltinModel {
  std::string_view name;         // e.g. "llama-3.1-8b-instruct" (the file name)
  std::string_view config_json;  // the config.json text, verbatim
};

// What `ropekit models` lists for one model.
struct BuiltinModelSummary {
  std::string name;
  std::string family;     // e.g. "Llama 3.1" (from SOURCES.json)
  std::string rope_type;  // scaling types of its layers joined by '/', "+mrope" when multimodal
  double rope_theta = 0;  // of its first layer
  std::int64_t max_position_embeddings = 0;
  std::string source;  // one line: repository + path + commit, or URL (from SOURCES.json)
};

// All built-in models, sorted by name.
const std::vector<BuiltinModel>& builtin_models();
// nullptr when `name` is not a built-in model (exact, case-sensitive match).
const BuiltinModel* find_builtin_model(std::string_view name);
// The full provenance record of a model (its SOURCES.json entry, pretty-printed JSON), or "".
std::string builtin_model_provenance(std::string_view name);
// Parses the model's config (throws ConfigError if a data file is broken: a build defect).
BuiltinModelSummary summarize_builtin_model(const BuiltinModel& model);

}  // namespace ropekit::cli
