// Stub until the Highway kernels land: no SIMD backend, the reference runs.
#include "apply/job.h"

namespace ropekit::detail {
RangeKernel simd_kernel_for(const ApplyJob&) { return nullptr; }
}  // namespace ropekit::detail
