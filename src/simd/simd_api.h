// Internal: what the Highway translation units of src/simd/ export to the rest of ropekit
// (plain functions, no Highway types). Each call dispatches to the target chosen now
// (ropekit/targets.h: best supported, or the forced one).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel/job.h"
#include "ropekit/apply.h"
#include "ropekit/dtype.h"

namespace ropekit::detail {

// Largest rotary_dim / 2 the SIMD kernels take (their per-token cos/sin buffers live on the
// stack); larger jobs run on the reference.
inline constexpr int kMaxPairs = 512;
}  // namespace ropekit::detail

namespace ropekit::simd {
inline constexpr int kPairPad = 16;  // pair arrays are padded to a multiple of this (≥ lanes)
inline constexpr int kMaxPairsPadded = detail::kMaxPairs;  // a multiple of kPairPad
}  // namespace ropekit::simd

namespace ropekit::detail {

// The range kernel of the current target for inputs of type `in` (see simd_dispatch.cc), and
// the per-dtype getters of rope_{f32,f16,bf16}.cc behind it.
RangeKernel simd_range_kernel(DType in);
RangeKernel simd_range_kernel_f32();
RangeKernel simd_range_kernel_f16();
RangeKernel simd_range_kernel_bf16();
// The same for prepared shapes (kernel/job.h: simd_prepare): fills `prepared` with the current
// target's record of the job's shape and its prepared range kernel.
using PrepareShapeFn = void (*)(const ApplyJob& job, PreparedRange& prepared);
PrepareShapeFn simd_prepare_fn(DType in);
PrepareShapeFn simd_prepare_f32();
PrepareShapeFn simd_prepare_f16();
PrepareShapeFn simd_prepare_bf16();

// Whether the AVX3 kernels may use AVX512_BF16 (vcvtne2ps2bf16) for bf16 stores: the CPU has it
// and it was not switched off (tests switch it off to cover the software rounding on AVX3).
bool avx512_bf16_enabled();
void set_avx512_bf16_enabled(bool on);

// Applies ROPEKIT_TARGET (once per process; targets.cc). Every entry point of the SIMD backend
// calls it first.
void init_simd_targets();

// Name of the target the SIMD kernels dispatch to now ("AVX3", "AVX2", "SSE4", "SCALAR", ...).
const char* simd_dispatched_target_name();

// Fills cos/sin table rows for positions p_begin .. p_begin + count − 1 (p ≥ 0):
//   cos_out[(p − p_begin)·row_stride + i] = float(A·cos θ_i(p)), likewise sin_out,
// θ_i(p) = p·inv_freq[i] (exact: reduced in double) or float32(float32(p)·inv_freq[i]) (hf),
// evaluated with double-precision polynomials and rounded once to float (the correctly rounded
// float of the double result except within ~1e-12 of a float tie). Vectorised: about 10× faster
// than a loop of libm sincosf. pairs <= kMaxPairs.
void simd_fill_cos_sin(const float* inv_freq, int pairs, AngleMode angles, double amplitude,
                       std::int64_t p_begin, std::int64_t count, float* cos_out, float* sin_out,
                       std::int64_t row_stride);

// memcpy with regular (write-allocating) vector stores on the dispatched target: the benchmark's
// copy floor. (glibc memcpy switches to non-temporal stores above a size threshold.)
void simd_copy(void* dst, const void* src, std::size_t bytes);

// Vector conversions of the dispatched target, for tests (must equal dtype.h bit for bit).
void simd_f32_to_bf16(const float* in, std::uint16_t* out, std::size_t n);
void simd_f32_to_f16(const float* in, std::uint16_t* out, std::size_t n);
void simd_f16_to_f32(const std::uint16_t* in, float* out, std::size_t n);

}  // namespace ropekit::detail
