// What a benchmark ran on: the CPU's name, family and model, and its data caches, so that every
// `ropekit bench` result says which machine it measured (docs/benchmarks.md, "Results on this
// machine").
#pragma once

#include <cstdint>
#include <string>

namespace ropekit::cli {

// The display family and model of an x86 CPUID leaf-1 EAX signature: the extended family is added
// when the base family is 0xF, and the extended model is prefixed when the base family is 6 or
// 0xF (the rule Intel's and AMD's manuals give).
struct CpuSignature {
  int family = 0, model = 0, stepping = 0;
};
CpuSignature decode_cpu_signature(std::uint32_t leaf1_eax);

// One line: "<brand string>, family F model M, L1D 32KiB, L2 1024KiB, L3 32768KiB" (the caches
// of CPU 0 as Linux lists them); parts this machine does not report are left out ("unknown CPU"
// when none is known).
std::string cpu_description();

}  // namespace ropekit::cli
