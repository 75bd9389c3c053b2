// Stub until the Highway kernels land.
#include "ropekit/error.h"
#include "ropekit/targets.h"

namespace ropekit {
std::vector<SimdTarget> compiled_targets() { return {}; }
std::string active_target() { return "reference"; }
void force_target(const std::string& name) {
  if (!name.empty() && name != "auto") throw ArgumentError("target " + name + " is not compiled in");
}
}  // namespace ropekit
