// The SIMD backend's entry point: picks the range kernel of the dispatched Highway target for a
// validated job, once per apply_rope call or PreparedRope (never per row), or declines (nullptr)
// so that the reference runs.
//
// Declined jobs (the reference handles them; docs/numerics.md):
//   * Rounding::kTransformers — bit-exact emulation of transformers' three bf16/f16 roundings is
//     the reference's job; the SIMD kernels round once.
//   * rotary_dim / 2 > kMaxPairs (per-token cos/sin buffers are on the stack).
//   * |inv_freq · position_scale| > 4 or non-finite: the table fill's reduction is exact only
//     for |θ| < 2^33, and on-the-fly exact angles need |m|/2π below 2^20 turns per position
//     (sincos-inl.h, kernel/angles.h turns_q64); no released model comes near.
#include <algorithm>
#include <atomic>
#include <cmath>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "kernel/job.h"
#include "simd/simd_api.h"

namespace ropekit::detail {

namespace {
bool cpu_has_avx512_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  // CPUID.(EAX=7, ECX=1):EAX[5] = AVX512_BF16. The AVX-512 register state itself is checked by
  // Highway before it dispatches to AVX3, the only target that uses it.
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d) == 0) return false;
  return (a & (1u << 5)) != 0;
#else
  return false;
#endif
}
std::atomic<bool>& avx512_bf16_flag() {
  static std::atomic<bool> flag{cpu_has_avx512_bf16()};
  return flag;
}
}  // namespace

bool avx512_bf16_enabled() { return avx512_bf16_flag().load(std::memory_order_relaxed); }
void set_avx512_bf16_enabled(bool on) {
  avx512_bf16_flag().store(on && cpu_has_avx512_bf16(), std::memory_order_relaxed);
  note_dispatch_change();  // remembered apply_rope shapes hold row kernels chosen with the flag
}

RangeKernel simd_range_kernel(DType in) {
  switch (in) {
    case DType::kF32:
      return simd_range_kernel_f32();
    case DType::kF16:
      return simd_range_kernel_f16();
    case DType::kBF16:
      return simd_range_kernel_bf16();
  }
  return nullptr;
}

PrepareShapeFn simd_prepare_fn(DType in) {
  switch (in) {
    case DType::kF32:
      return simd_prepare_f32();
    case DType::kF16:
      return simd_prepare_f16();
    case DType::kBF16:
      return simd_prepare_bf16();
  }
  return nullptr;
}

namespace {

// q and k with different input dtypes: each tensor goes through its own dtype's kernel (cos/sin
// are then computed twice per token; a rare case).
void mixed_input_range(const ApplyJob& job, std::int64_t t_begin, std::int64_t t_end) {
  ApplyJob only_q = job;
  only_q.k = JobTensor{};
  simd_range_kernel(job.q.in_type)(only_q, t_begin, t_end);
  ApplyJob only_k = job;
  only_k.q = JobTensor{};
  simd_range_kernel(job.k.in_type)(only_k, t_begin, t_end);
}

bool frequencies_supported(const ApplyJob& job) {
  const double scale = job.has_position_scale
                           ? std::max(std::fabs(static_cast<double>(job.position_scale)),
                                      std::fabs(job.position_scale_exact))
                           : 1.0;
  if (!std::isfinite(scale)) return false;
  // max_i |inv_freq[i]|·scale, from the maximum the API boundary found (apply.cc check_plan).
  if (!(job.max_abs_inv_freq * scale <= 4.0)) return false;  // also rejects NaN
  return std::isfinite(job.amplitude);
}

}  // namespace

RangeKernel simd_kernel_for(const ApplyJob& job) {
  init_simd_targets();
  if (job.rounding == Rounding::kTransformers) return nullptr;
  if (job.pairs <= 0 || job.pairs > kMaxPairs) return nullptr;
  if (!frequencies_supported(job)) return nullptr;
  // A tensor with heads is present (apply.cc: its data are set per call, non-null by then).
  const bool has_q = job.q.heads > 0;
  const bool has_k = job.k.heads > 0;
  if (has_q && has_k && job.q.in_type != job.k.in_type) return &mixed_input_range;
  return simd_range_kernel(has_q ? job.q.in_type : job.k.in_type);
}

void simd_prepare(const ApplyJob& job, PreparedRange& prepared) {
  prepared.kernel = nullptr;
  const RangeKernel kernel = simd_kernel_for(job);
  if (kernel == nullptr || kernel == &mixed_input_range) return;  // mixed: not prepared
  simd_prepare_fn(job.q.heads > 0 ? job.q.in_type : job.k.in_type)(job, prepared);
}

}  // namespace ropekit::detail
