#include "builtin_models.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "builtin_models_data.h"
#include "ropekit/error.h"
#include "ropekit/hf_config.h"

namespace ropekit::cli {
namespace {

// SOURCES.json is parsed once, on first use: most commands never need it.
const nlohmann::json& sources() {
  static const nlohmann::json parsed = [] {
    try {
      return nlohmann::json::parse(generated::kSourcesJson);
    } catch (const nlohmann::json::exception& e) {
      throw ConfigError("models/SOURCES.json",
                        std::string("embedded file is not JSON: ") + e.what());
    }
  }();
  return parsed;
}

std::string source_string(const nlohmann::json& entry, const char* key) {
  const auto it = entry.find(key);
  return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

const std::vector<BuiltinModel>& builtin_models() {
  static const std::vector<BuiltinModel> models = [] {
    std::vector<BuiltinModel> v;
    v.reserve(generated::kModelFileCount);
    for (std::size_t i = 0; i < generated::kModelFileCount; ++i) {
      v.push_back({generated::kModelFiles[i].name, generated::kModelFiles[i].text});
    }
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return v;
  }();
  return models;
}

const BuiltinModel* find_builtin_model(std::string_view name) {
  const auto& models = builtin_models();
  const auto it =
      std::lower_bound(models.begin(), models.end(), name,
                       [](const BuiltinModel& m, std::string_view n) { return m.name < n; });
  return it != models.end() && it->name == name ? &*it : nullptr;
}

std::string builtin_model_provenance(std::string_view name) {
  const auto it = sources().find(std::string(name));
  return it == sources().end() ? std::string() : it->dump(2);
}

BuiltinModelSummary summarize_builtin_model(const BuiltinModel& model) {
  const ModelRope rope = parse_hf_config(model.config_json);
  BuiltinModelSummary s;
  s.name = std::string(model.name);
  if (const auto it = sources().find(s.name); it != sources().end()) {
    s.family = source_string(*it, "family");
    s.source = source_string(*it, "source");
  }
  // Distinct scaling types in layer order: Gemma 3 is "linear/default" (full / sliding layers).
  std::vector<std::string> types;
  bool mrope = false, xdrope = false;
  for (const RopeConfig& layer : rope.layers) {
    const std::string t = scaling_type_name(layer.scaling);
    if (std::find(types.begin(), types.end(), t) == types.end()) types.push_back(t);
    mrope = mrope || layer.mrope.has_value();
    xdrope = xdrope || layer.xdrope.has_value();
  }
  for (std::size_t i = 0; i < types.size(); ++i) s.rope_type += (i ? "/" : "") + types[i];
  if (mrope) s.rope_type += "+mrope";
  if (xdrope) s.rope_type += "+xdrope";
  if (!rope.layers.empty()) {
    s.rope_theta = rope.layers.front().rope_theta;
    s.max_position_embeddings = rope.layers.front().max_position_embeddings;
  }
  return s;
}

}  // namespace ropekit::cli
