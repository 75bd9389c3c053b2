// Internal to the ropekit command: the largest difference between two RoPE setups' outputs,
// measured by running ropekit::apply_rope on the same input at a spread of positions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ropekit/apply.h"
#include "ropekit/frequencies.h"

namespace ropekit::cli {

struct OutputSide {
  const FrequencyPlan* plan = nullptr;
  AngleMode angles = AngleMode::kExact;
};

struct OutputDiff {
  bool comparable = false;
  std::string reason;                   // why not, when !comparable
  std::vector<std::int64_t> positions;  // the positions compared
  double max_abs_diff = 0;              // max |y_A - y_B| over positions, heads, features
  double max_abs_value = 0;             // max |y_A|, for scale
  std::int64_t at_position = 0;         // where the largest difference is
  int at_feature = 0;
  std::vector<double> position_max_diff;  // max |y_A - y_B| at each of `positions`
};

// Positions 0..15, then about 48 geometrically spaced up to max_position (included): the small
// ones catch layout and sign errors, the large ones frequency and angle-precision errors.
std::vector<std::int64_t> sample_positions(std::int64_t max_position);

// Rotates one deterministic q (2 heads, head_dim of the plans, values in [-1.4, 1.4]) with both
// setups, attention factor folded in, and compares the outputs element by element.
OutputDiff compare_outputs(const OutputSide& a, const OutputSide& b, std::int64_t max_position);

}  // namespace ropekit::cli
