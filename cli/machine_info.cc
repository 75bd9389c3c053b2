// The CPU a benchmark ran on (cli/machine_info.h).
#include "machine_info.h"

#include <cstring>
#include <fstream>
#include <string>

#include <fmt/format.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace ropekit::cli {

CpuSignature decode_cpu_signature(std::uint32_t eax) {
  const int base_family = static_cast<int>((eax >> 8) & 0xF);
  const int base_model = static_cast<int>((eax >> 4) & 0xF);
  CpuSignature s;
  s.stepping = static_cast<int>(eax & 0xF);
  s.family = base_family == 0xF ? base_family + static_cast<int>((eax >> 20) & 0xFF) : base_family;
  s.model = base_family == 0x6 || base_family == 0xF
                ? base_model + (static_cast<int>((eax >> 16) & 0xF) << 4)
                : base_model;
  return s;
}

namespace {

// The brand string (CPUID leaves 0x80000002-4), trimmed; empty where there is none.
std::string brand_string() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000004u) return {};
  char text[49] = {};
  for (unsigned leaf = 0; leaf < 3; ++leaf) {
    __get_cpuid(0x80000002u + leaf, &a, &b, &c, &d);
    const unsigned regs[4] = {a, b, c, d};
    std::memcpy(text + 16 * leaf, regs, sizeof regs);
  }
  std::string s(text);
  const auto first = s.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(' ') - first + 1);
#else
  return {};
#endif
}

// The first line of a small text file; empty when it cannot be read.
std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

std::string cpu_description() {
  std::string out = brand_string();
  auto add = [&out](const std::string& part) { out += (out.empty() ? "" : ", ") + part; };
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    const CpuSignature s = decode_cpu_signature(a);
    add(fmt::format("family {} model {}", s.family, s.model));
  }
#endif
  // The kernel's view of CPU 0's caches (what lscpu shows); glibc's sysconf figures are not used:
  // in a VM they can be off by the number of sharing cores (L3 10x too large here).
  for (int index = 0; index < 8; ++index) {
    const std::string dir = fmt::format("/sys/devices/system/cpu/cpu0/cache/index{}/", index);
    const std::string level = first_line(dir + "level"), type = first_line(dir + "type"),
                      size = first_line(dir + "size");
    if (level.empty() || size.empty()) break;
    if (type == "Instruction") continue;
    add(fmt::format("L{}{} {}iB", level, type == "Data" ? "D" : "", size));
  }
  return out.empty() ? "unknown CPU" : out;
}

}  // namespace ropekit::cli
