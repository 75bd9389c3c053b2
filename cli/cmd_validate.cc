// ropekit validate CONFIG [--strict]: for CI pipelines. One problem per line with its JSON path,
// exit 0 when valid, 2 when not (with --strict, warnings make it invalid).
#include <memory>

#include <fmt/format.h>

#include "cli_options.h"
#include "commands.h"
#include "model_source.h"
#include "ropekit/error.h"

namespace ropekit::cli {
namespace {

struct ValidateOptions {
  std::string config;
  bool strict = false;
};

// "<kind>: <path>: <message>"; a document-level problem has no path and reads "$".
std::string problem_line(const char* kind, const std::string& path, const std::string& message) {
  return fmt::format("{}: {}: {}", kind, path.empty() ? "$" : path, message);
}

void run_validate(const ValidateOptions& o) {
  ModelRope model;
  try {
    // Parsed leniently even with --strict, so every warning is listed, not only the first.
    model = load_model_or_config(o.config);
  } catch (const ConfigError& e) {
    // The parser stops at the first error; its message already starts with the path.
    std::string message = e.what();
    if (!e.path().empty() && message.rfind(e.path() + ": ", 0) == 0) {
      message = message.substr(e.path().size() + 2);
    }
    fmt::print("{}\n", problem_line("error", e.path(), message));
    throw ConfigError("", fmt::format("{} is invalid", display_name(o.config)));
  }
  for (const ConfigWarning& w : model.warnings) {
    fmt::print("{}\n", problem_line(o.strict ? "error" : "warning", w.path, w.message));
  }
  if (o.strict && !model.warnings.empty()) {
    throw ConfigError("", fmt::format("{} is invalid under --strict: {} warning(s)",
                                      display_name(o.config), model.warnings.size()));
  }
  fmt::print("ok: {}: {} layer(s), {} warning(s)\n", display_name(o.config), model.layers.size(),
             model.warnings.size());
}

}  // namespace

void register_validate(CLI::App& app) {
  auto o = std::make_shared<ValidateOptions>();
  CLI::App* sub = app.add_subcommand(
      "validate", "Check a config for CI: exit 0 valid, 2 invalid, one problem per line");
  sub->add_option("config", o->config, "config.json path (or built-in model name)")->required();
  sub->add_flag("--strict", o->strict, "Count warnings as problems (exit 2 if any)");
  sub->footer(
      "Each problem is printed on stdout as 'error|warning: JSON.PATH: message'.\n\n"
      "Examples:\n"
      "  ropekit validate path/to/config.json\n"
      "  ropekit validate --strict phi-3.5-mini-instruct   # Phi-3.5 has no rope_scaling.factor");
  sub->callback([o] { run_validate(*o); });
}

}  // namespace ropekit::cli

ROPEKIT_CLI_COMMAND(70, register_validate)
