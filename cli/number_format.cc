#include "number_format.h"

#include <cmath>

#include <fmt/format.h>

namespace ropekit::cli {
namespace {

// fmt prints "nan"/"inf" itself, but with a sign for -inf and sometimes "-nan"; keep one spelling.
const char* special(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return nullptr;
}

}  // namespace

std::string format_sci(double v) {
  if (const char* s = special(v)) return s;
  return fmt::format("{:.6e}", v);
}

std::string format_fixed(double v, int decimals) {
  if (const char* s = special(v)) return s;
  return fmt::format("{:.{}f}", v, decimals);
}

std::string format_general(double v) {
  if (const char* s = special(v)) return s;
  return fmt::format("{}", v);
}

}  // namespace ropekit::cli
