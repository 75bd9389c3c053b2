// ropekit targets: the SIMD targets compiled in and the one apply_rope uses now.
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "ropekit/targets.h"
#include "text_table.h"

namespace ropekit::cli {
namespace {

void run_targets(bool json) {
  const std::vector<SimdTarget> targets = compiled_targets();
  const std::string active = active_target();
  if (json) {
    nlohmann::ordered_json j;
    j["active"] = active;
    j["compiled"] = nlohmann::ordered_json::array();
    for (const SimdTarget& t : targets) {
      j["compiled"].push_back(
          {{"name", t.name}, {"supported", t.supported}, {"active", t.name == active}});
    }
    fmt::print("{}\n", j.dump(2));
    return;
  }
  TextTable table;
  table.add_column("target", TextTable::Align::kLeft);
  table.add_column("supported by this CPU", TextTable::Align::kLeft);
  table.add_column("in use", TextTable::Align::kLeft);
  for (const SimdTarget& t : targets) {
    table.add_row({t.name, t.supported ? "yes" : "no", t.name == active ? "*" : ""});
  }
  fmt::print("{}", table.render());
}

}  // namespace

void register_targets(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand(
      "targets", "SIMD instruction sets compiled into the kernels, and the one in use");
  sub->add_flag("--json", *json, "Print JSON: {active, compiled: [{name, supported, active}]}");
  sub->footer(
      "The best supported target is chosen at run time; ROPEKIT_TARGET=NAME forces one.\n\n"
      "Examples:\n"
      "  ropekit targets\n"
      "  ROPEKIT_TARGET=SSE4 ropekit targets --json");
  sub->callback([json] { run_targets(*json); });
}

}  // namespace ropekit::cli

ROPEKIT_CLI_COMMAND(80, register_targets)
