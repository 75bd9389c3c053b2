#include "model_source.h"

#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "builtin_models.h"
#include "file_io.h"
#include "ropekit/error.h"
#include "ropekit/gguf.h"
#include "suggest.h"

namespace ropekit::cli {

ModelRope load_gguf_model(const std::filesystem::path& path, const ParseOptions& options) {
  try {
    ModelRope m = load_gguf_rope(path);
    if (options.strict && !m.warnings.empty()) {
      const auto& w = m.warnings.front();
      throw ConfigError(w.path, w.message + " (strict: warnings are errors)");
    }
    return m;
  } catch (const ConfigError& e) {
    // "<file>: <key or byte offset>: expected ..., got ..."
    throw ConfigError(path.string() + (e.path().empty() ? "" : ": " + e.path()),
                      std::string(e.what()).substr(e.path().empty() ? 0 : e.path().size() + 2));
  }
}

ModelRope load_model_or_config(const std::string& name_or_path, const ParseOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // A file on disk wins over a built-in name, so a user can always override a built-in model
  // with a local file of the same name. A directory is read as a Hugging Face snapshot folder.
  const fs::path path(name_or_path);
  if (fs::is_regular_file(path, ec)) {
    if (is_gguf_file(path)) return load_gguf_model(path, options);
    return load_hf_config(path, options);
  }
  if (fs::is_directory(path, ec)) {
    if (fs::is_regular_file(path / "config.json", ec)) {
      return load_hf_config(path / "config.json", options);
    }
    throw IoError(fmt::format("'{}' is a directory without a config.json", name_or_path));
  }
  if (const BuiltinModel* model = find_builtin_model(name_or_path)) {
    return parse_hf_config(model->config_json, options);
  }

  std::vector<std::string> names;
  for (const BuiltinModel& m : builtin_models()) names.emplace_back(m.name);
  const auto closest = closest_names(name_or_path, names, 3);
  throw IoError(
      fmt::format("'{}' is neither a config file nor a built-in model; closest built-in names: {} "
                  "('ropekit models' lists them all)",
                  echo(name_or_path), fmt::join(closest, ", ")));
}

}  // namespace ropekit::cli
