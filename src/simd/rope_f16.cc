// RoPE range kernel for f16 inputs (any output dtype, any layout), compiled once per Highway
// target. One translation unit per input dtype keeps compile units small and exports plain
// functions (Highway 1.0.3 has no HWY_EXPORT_T for templates).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/rope_f16.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "simd/rope-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ropekit {
namespace simd {
namespace HWY_NAMESPACE {

void RangeF16(const detail::ApplyJob& job, std::int64_t t_begin, std::int64_t t_end) {
  RopeRange<F16>(job, t_begin, t_end);
}

void RangeF16Prepared(const detail::ApplyJob& job, const detail::PreparedRange& prepared,
                      std::int64_t t_begin, std::int64_t t_end) {
  RopeRangePrepared<F16>(job, WorkOf(prepared), t_begin, t_end);
}

void PrepareF16(const detail::ApplyJob& job, detail::PreparedRange& prepared) {
  PrepareShape<F16>(job, prepared, &RangeF16Prepared);
}

}  // namespace HWY_NAMESPACE
}  // namespace simd
}  // namespace ropekit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ropekit {
namespace simd {
HWY_EXPORT(RangeF16);
HWY_EXPORT(PrepareF16);
}  // namespace simd

namespace detail {
// The table entry of the target chosen now. Highway's dispatch index depends on the targets
// compiled into THIS translation unit, so each dtype TU resolves its own pointer.
RangeKernel simd_range_kernel_f16() {
  hwy::ChosenTarget& chosen = hwy::GetChosenTarget();
  if (!chosen.IsInitialized()) chosen.Update(hwy::SupportedTargets());
  return simd::HWY_DISPATCH_TABLE(RangeF16)[chosen.GetIndex()];
}
PrepareShapeFn simd_prepare_f16() {
  hwy::ChosenTarget& chosen = hwy::GetChosenTarget();
  if (!chosen.IsInitialized()) chosen.Update(hwy::SupportedTargets());
  return simd::HWY_DISPATCH_TABLE(PrepareF16)[chosen.GetIndex()];
}
}  // namespace detail
}  // namespace ropekit
#endif  // HWY_ONCE
