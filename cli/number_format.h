// Internal to the ropekit command: how numbers read in tables (JSON gets full precision).
#pragma once

#include <string>

namespace ropekit::cli {

std::string format_sci(double v);                  // 1.234568e-05; "nan", "inf"
std::string format_fixed(double v, int decimals);  // 1303.8; "nan", "inf"
std::string format_general(double v);              // shortest round-trip form: 500000, 0.125, 1e+06

}  // namespace ropekit::cli
