// RoPE range kernel for f32 inputs (any output dtype, any layout), compiled once per Highway
// target. One translation unit per input dtype keeps compile units small and exports plain
// functions (Highway 1.0.3 has no HWY_EXPORT_T for templates).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/rope_f32.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "simd/rope-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ropekit {
namespace simd {
namespace HWY_NAMESPACE {

void RangeF32(const detail::ApplyJob& job, std::int64_t t_begin, std::int64_t t_end) {
  RopeRange<float>(job, t_begin, t_end);
}

void RangeF32Prepared(const detail::ApplyJob& job, const detail::PreparedRange& prepared,
                      std::int64_t t_begin, std::int64_t t_end) {
  RopeRangePrepared<float>(job, WorkOf(prepared), t_begin, t_end);
}

void PrepareF32(const detail::ApplyJob& job, detail::PreparedRange& prepared) {
  PrepareShape<float>(job, prepared, &RangeF32Prepared);
}

}  // namespace HWY_NAMESPACE
}  // namespace simd
}  // namespace ropekit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ropekit {
namespace simd {
HWY_EXPORT(RangeF32);
HWY_EXPORT(PrepareF32);
}  // namespace simd

namespace detail {
// The table entry of the target chosen now. Highway's dispatch index depends on the targets
// compiled into THIS translation unit, so each dtype TU resolves its own pointer.
RangeKernel simd_range_kernel_f32() {
  hwy::ChosenTarget& chosen = hwy::GetChosenTarget();
  if (!chosen.IsInitialized()) chosen.Update(hwy::SupportedTargets());
  return simd::HWY_DISPATCH_TABLE(RangeF32)[chosen.GetIndex()];
}
PrepareShapeFn simd_prepare_f32() {
  hwy::ChosenTarget& chosen = hwy::GetChosenTarget();
  if (!chosen.IsInitialized()) chosen.Update(hwy::SupportedTargets());
  return simd::HWY_DISPATCH_TABLE(PrepareF32)[chosen.GetIndex()];
}
}  // namespace detail
}  // namespace ropekit
#endif  // HWY_ONCE
