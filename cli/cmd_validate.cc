// ropekit validate CONFIG [--strict]: for CI pipelines. One problem per line with its JSON path,
// exit 0 when valid, 2 when not (with --strict, warnings make it invalid).
#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "cli_options.h"
#include "commands.h"
#include "file_io.h"
#include "freq_report.h"
#include "model_source.h"
#include "ropekit/error.h"
#include "ropekit/frequencies.h"

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
    fmt::print("{}\n", problem_line(o.strict ? "error" : "warning", echo(w.path), w.message));
  }
  // The checks that need the computed frequencies, as freqs, show, compare and apply build
  // them: every layer, both sequence-length policies and both arithmetics, at initialisation
  // and at max_position_embeddings. A config valid here is one every command can compute.
  // One line per layer: its first failure (exact arithmetic first: its message has the value).
  std::vector<std::string> errors;
  auto first_error = [](const RopeConfig& layer) -> std::optional<std::string> {
    const std::optional<std::int64_t> lengths[] = {
        std::nullopt, std::max<std::int64_t>(1, layer.max_position_embeddings)};
    for (const FrequencyArithmetic arithmetic :
         {FrequencyArithmetic::kExact, FrequencyArithmetic::kTransformers}) {
      for (const SeqLenPolicy policy : {SeqLenPolicy::kTransformers, SeqLenPolicy::kMlxLm}) {
        for (const std::optional<std::int64_t>& seq_len : lengths) {
          try {
            (void)plan_of(layer, seq_len, policy, arithmetic);
          } catch (const Error& e) {
            const auto* ce = dynamic_cast<const ConfigError*>(&e);
            return problem_line("error", ce ? ce->path() : "", e.what());
          }
        }
      }
    }
    return std::nullopt;
  };
  for (const RopeConfig& layer : model.layers) {
    if (auto line = first_error(layer)) errors.push_back(std::move(*line));
  }
  for (const std::string& line : errors) fmt::print("{}\n", line);
  if (!errors.empty()) {
    throw ConfigError("", fmt::format("{} is invalid: its frequencies cannot be computed",
                                      display_name(o.config)));
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
