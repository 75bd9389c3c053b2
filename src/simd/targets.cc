// ropekit/targets.h over Highway's runtime dispatch.
//
// Highway chooses, per exported function, the table entry of the best target in
// hwy::SupportedTargets(); hwy::SetSupportedTargetsForTest(bit) restricts that set (and updates
// the chosen target), SetSupportedTargetsForTest(0) restores detection. That is what forcing
// does. The CPU's real target set is captured once, before any forcing, so compiled_targets()
// can report `supported` truthfully while a target is forced.
//
// ROPEKIT_TARGET is read once, on first use of the SIMD backend or of this API. An unknown or
// unsupported name there is reported on stderr and ignored (auto), rather than thrown from the
// first apply_rope call of a program that never asked for a target; force_target() throws.
// Forcing is process-wide and not synchronised with running apply_rope calls.
#include <atomic>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "hwy/highway.h"
#include "ropekit/error.h"
#include "ropekit/targets.h"
#include "simd/simd_api.h"

namespace ropekit {
namespace {

std::int64_t g_real_supported = 0;

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Compiled targets, best first (Highway: a lower bit is a better target).
std::vector<std::int64_t> compiled_bits() {
  std::vector<std::int64_t> bits;
  for (std::int64_t t = HWY_TARGETS; t != 0; t &= t - 1) bits.push_back(t & ~(t - 1));
  return bits;
}

// detail::simd_dispatch_version(): bumped by every change of the supported targets.
std::atomic<std::uint64_t> g_dispatch_version{0};

void set_supported(std::int64_t bits) {
  hwy::SetSupportedTargetsForTest(bits);
  detail::note_dispatch_change();
}

void force_impl(const std::string& name) {
  const std::string want = upper(name);
  if (want.empty() || want == "AUTO") {
    set_supported(0);
    return;
  }
  std::string names;
  for (const std::int64_t bit : compiled_bits()) {
    const std::string n = hwy::TargetName(bit);
    if (n == want) {
      if ((g_real_supported & bit) == 0) {
        throw ArgumentError("[ropekit.targets] target " + n +
                            ": compiled in but not supported by this CPU");
      }
      set_supported(bit);
      return;
    }
    names += (names.empty() ? "" : ", ") + n;
  }
  throw ArgumentError("[ropekit.targets] target: expected one of auto, " + names + "; got \"" +
                      name + "\"");
}

}  // namespace

namespace detail {
void note_dispatch_change() { g_dispatch_version.fetch_add(1, std::memory_order_release); }

std::uint64_t simd_dispatch_version() {
  init_simd_targets();  // ROPEKIT_TARGET is applied before the first version is read
  return g_dispatch_version.load(std::memory_order_acquire);
}

void init_simd_targets() {
  // A function-local static: after the first call, one inlined guard test (this runs on every
  // apply_rope call).
  static const bool initialised = [] {
    g_real_supported = hwy::SupportedTargets();
    const char* env = std::getenv("ROPEKIT_TARGET");
    if (env != nullptr && *env != '\0') {
      try {
        force_impl(env);
      } catch (const ArgumentError& e) {
        std::fprintf(stderr, "ropekit: ignoring ROPEKIT_TARGET=%s: %s\n", env, e.what());
      }
    }
    return true;
  }();
  (void)initialised;
}
}  // namespace detail

std::vector<SimdTarget> compiled_targets() {
  detail::init_simd_targets();
  std::vector<SimdTarget> out;
  for (const std::int64_t bit : compiled_bits()) {
    out.push_back(SimdTarget{hwy::TargetName(bit), (g_real_supported & bit) != 0});
  }
  return out;
}

std::string active_target() {
  detail::init_simd_targets();
  return detail::simd_dispatched_target_name();
}

void force_target(const std::string& name) {
  detail::init_simd_targets();
  force_impl(name);
}

}  // namespace ropekit
