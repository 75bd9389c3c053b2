// ropekit/targets.h — which SIMD instruction sets the fast kernels were compiled for, and
// which one runs.
//
// Kernels are compiled once per target (Google Highway: AVX-512 "AVX3", AVX2, SSE4, and a
// scalar/EMU128 fallback) and the best one the CPU supports is chosen at run time. Any
// compiled target can be forced — for tests, benchmarks and bug reports — through
// force_target(), the ROPEKIT_TARGET environment variable (read once, at first use), or
// `ropekit --target NAME`.
#pragma once

#include <string>
#include <vector>

namespace ropekit {

struct SimdTarget {
  std::string name;        // "AVX3", "AVX2", "SSE4", "SCALAR", "EMU128", ...
  bool supported = false;  // this CPU can run it
};

// Targets compiled into the library, best first.
std::vector<SimdTarget> compiled_targets();
// The target apply_rope's SIMD backend uses now.
std::string active_target();
// Restricts dispatch to `name` (case-insensitive); "" or "auto" restores the best supported.
// Throws ArgumentError for a target not compiled in or not supported by this CPU.
void force_target(const std::string& name);

}  // namespace ropekit
