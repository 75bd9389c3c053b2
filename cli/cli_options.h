// Internal to the ropekit command: options and small helpers that several subcommands share,
// so `--layer`, `--seq-len` and `--policy` mean the same thing in show, compare and plot.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "ropekit/apply.h"
#include "ropekit/config.h"
#include "ropekit/frequencies.h"
#include "ropekit/hf_config.h"
#include "support_common.h"  // parse_policy, parse_angles, layout_name

namespace ropekit::cli {

struct PlanOptions {
  std::string layer;                    // "" = every layer of the model
  std::optional<std::int64_t> seq_len;  // none = the plan at initialisation
  std::string policy = "hf";            // "hf" (transformers) or "mlx-lm"
};

// Adds --layer NAME, --seq-len N and --policy hf|mlx-lm to `sub`, bound to `o`.
// `suffix` names a second set (compare's "-b" options for its B side).
void add_plan_options(CLI::App& sub, PlanOptions& o, const std::string& suffix = "");

// Option checks that refuse what CLI11's own would let through: NaN (which passes every range
// comparison) and integers beyond 64 bits (which CLI11 clamps to the largest value). The
// message names the range in words (`bounds`), never as a 309-digit number.
CLI::Validator finite_range(double lo, double hi, const std::string& bounds);
CLI::Validator int_range(std::int64_t lo, std::int64_t hi, const std::string& bounds);

// --numerics: a name ropekit::numerics_preset() accepts (the library's list, one source for every
// subcommand); the message lists the preset names.
CLI::Validator numerics_preset_name();

// The layers to report: all of them, or the one named (ArgumentError lists the names).
std::vector<const RopeConfig*> select_layers(const ModelRope& model, const std::string& layer);

// A short label for a MODEL|CONFIG argument: a built-in name as is, a path by its file name
// (its folder's name for a ".../config.json").
std::string display_name(const std::string& name_or_path);

}  // namespace ropekit::cli
