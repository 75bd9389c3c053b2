// Per-target helpers other than the rotation: cos/sin table rows (CosSinCache), the copy used as
// the benchmark floor, vector dtype conversions for tests, and the dispatched target's name.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/simd_misc.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cstring>

#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"
#include "simd/hwy_compat-inl.h"
#include "simd/simd_api.h"
#include "simd/sincos-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ropekit {
namespace simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// hf mode (and the building block of the exact mode): every position through the full
// reduction and the double polynomials.
void FillCosSinDirect(const float* inv_padded, int pairs, bool hf, double amplitude,
                      std::int64_t p_begin, std::int64_t count, float* cos_out, float* sin_out,
                      std::int64_t row_stride) {
  HWY_ALIGN float cbuf[kMaxPairsPadded];
  HWY_ALIGN float sbuf[kMaxPairsPadded];
  AngleParams ap;
  ap.inv_hi = inv_padded;
  ap.pairs = pairs;
  TokenAngles ta;
  const hn::ScalableTag<double> dd;
  const std::size_t bytes = static_cast<std::size_t>(pairs) * sizeof(float);
  for (std::int64_t j = 0; j < count; ++j) {
    const std::int64_t p = p_begin + j;
    if (hf) {
      ta.p_f = HfPosition(p, false, 1.0f);
      CosSinRowF64<true>(dd, ap, ta, amplitude, cbuf, sbuf);
    } else {
      SplitPosition(p, ta.p_hi, ta.p_lo);
      CosSinRowF64<false>(dd, ap, ta, amplitude, cbuf, sbuf);
    }
    std::memcpy(cos_out + j * row_stride, cbuf, bytes);
    std::memcpy(sin_out + j * row_stride, sbuf, bytes);
  }
}

// Exact mode by angle addition, exactly: positions are split p = P + j with P a multiple of
// kBlock, so θ = P·inv + j·inv where both products are exact in double (P/kBlock has <= 26
// bits). cos/sin(P·inv) (one full reduction per kBlock positions, amplitude folded in) and
// cos/sin(j·inv) (a small table per call) are double-precision results; then
//   A·cos θ = (A·cos Pθ)·cos jθ − (A·sin Pθ)·sin jθ,   A·sin θ = (A·sin Pθ)·cos jθ + (A·cos Pθ)·sin
//   jθ
// costs two multiplies and two FMAs per value, with errors of a few double ulp (~1e-16), so
// the float results are the same correctly rounded values as the direct evaluation except
// within ~1e-15 of a float tie.
constexpr std::int64_t kBlock = 32;

void FillCosSinExact(const float* inv_padded, int pairs, double amplitude, std::int64_t p_begin,
                     std::int64_t count, float* cos_out, float* sin_out, std::int64_t row_stride) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> dfh;
  const std::size_t n = hn::Lanes(dd);
  const std::size_t padded = (static_cast<std::size_t>(pairs) + kPairPad - 1) / kPairPad * kPairPad;
  // j-tables: cos/sin(j·inv_i) for j < kBlock; anchors: A·cos/sin(P·inv_i).
  auto tables = hwy::AllocateAligned<double>(2 * (static_cast<std::size_t>(kBlock) + 1) * padded);
  double* cl = tables.get();
  double* sl = cl + static_cast<std::size_t>(kBlock) * padded;
  double* ca = sl + static_cast<std::size_t>(kBlock) * padded;
  double* sa = ca + padded;
  const auto zero = hn::Zero(dd);
  auto eval = [&](double pos, double amp, double* c_dst, double* s_dst) HWY_ATTR {
    const auto vp = hn::Set(dd, pos);
    const auto va = hn::Set(dd, amp);
    for (std::size_t i = 0; i < padded; i += n) {
      const auto a = hn::Mul(vp, hn::PromoteTo(dd, hn::LoadU(dfh, inv_padded + i)));  // exact
      hn::Vec<decltype(dd)> r, q, sv, cv, so, co;
      ReduceQuarterPi(dd, a, zero, r, q);
      SinCosPolyF64(dd, r, sv, cv);
      ApplyQuadrant(dd, q, sv, cv, so, co);
      hn::Store(hn::Mul(co, va), dd, c_dst + i);
      hn::Store(hn::Mul(so, va), dd, s_dst + i);
    }
  };
  for (std::int64_t j = 0; j < kBlock; ++j) {
    eval(static_cast<double>(j), 1.0, cl + static_cast<std::size_t>(j) * padded,
         sl + static_cast<std::size_t>(j) * padded);
  }
  const std::size_t full = static_cast<std::size_t>(pairs) / n * n;
  std::int64_t p = p_begin;
  const std::int64_t p_end = p_begin + count;
  while (p < p_end) {
    const std::int64_t anchor = p & ~(kBlock - 1);  // floor to a multiple of kBlock (p < 0 too)
    eval(static_cast<double>(anchor), amplitude, ca, sa);
    const std::int64_t stop = std::min(p_end, anchor + kBlock);
    for (; p < stop; ++p) {
      const auto j = static_cast<std::size_t>(p - anchor);
      const double* cj = cl + j * padded;
      const double* sj = sl + j * padded;
      float* crow = cos_out + (p - p_begin) * row_stride;
      float* srow = sin_out + (p - p_begin) * row_stride;
      std::size_t i = 0;
      for (; i < full; i += n) {
        const auto vca = hn::Load(dd, ca + i), vsa = hn::Load(dd, sa + i);
        const auto vcj = hn::Load(dd, cj + i), vsj = hn::Load(dd, sj + i);
        const auto c = hn::MulSub(vca, vcj, hn::Mul(vsa, vsj));
        const auto s = hn::MulAdd(vsa, vcj, hn::Mul(vca, vsj));
        hn::StoreU(hn::DemoteTo(dfh, c), dfh, crow + i);
        hn::StoreU(hn::DemoteTo(dfh, s), dfh, srow + i);
      }
      for (; i < static_cast<std::size_t>(pairs); ++i) {  // rows are exactly `pairs` long
        crow[i] = static_cast<float>(ca[i] * cj[i] - sa[i] * sj[i]);
        srow[i] = static_cast<float>(sa[i] * cj[i] + ca[i] * sj[i]);
      }
    }
  }
}

void FillCosSin(const float* inv_freq, int pairs, bool hf, double amplitude, std::int64_t p_begin,
                std::int64_t count, float* cos_out, float* sin_out, std::int64_t row_stride) {
  HWY_ALIGN float inv[kMaxPairsPadded];
  const int padded = (pairs + kPairPad - 1) / kPairPad * kPairPad;
  for (int i = 0; i < padded; ++i) inv[i] = i < pairs ? inv_freq[i] : 0.0f;
  if (hf || count < 2 * kBlock) {
    FillCosSinDirect(inv, pairs, hf, amplitude, p_begin, count, cos_out, sin_out, row_stride);
  } else {
    FillCosSinExact(inv, pairs, amplitude, p_begin, count, cos_out, sin_out, row_stride);
  }
}

void Copy(void* dst_v, const void* src_v, std::size_t bytes) {
  const hn::ScalableTag<std::uint8_t> d;
  const std::size_t N = hn::Lanes(d);
  auto* dst = static_cast<std::uint8_t*>(dst_v);
  const auto* src = static_cast<const std::uint8_t*>(src_v);
  std::size_t i = 0;
  for (; i + 4 * N <= bytes; i += 4 * N) {
    const auto v0 = hn::LoadU(d, src + i);
    const auto v1 = hn::LoadU(d, src + i + N);
    const auto v2 = hn::LoadU(d, src + i + 2 * N);
    const auto v3 = hn::LoadU(d, src + i + 3 * N);
    hn::StoreU(v0, d, dst + i);
    hn::StoreU(v1, d, dst + i + N);
    hn::StoreU(v2, d, dst + i + 2 * N);
    hn::StoreU(v3, d, dst + i + 3 * N);
  }
  if (i < bytes) std::memcpy(dst + i, src + i, bytes - i);
}

// Conversions for tests: full vectors, then one lane at a time. (Plain loops: lambdas would
// not inherit the per-target attributes under Clang.)
void F32ToBF16(const float* in, std::uint16_t* out, std::size_t n) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  std::size_t i = 0;
  for (; i + hn::Lanes(d) <= n; i += hn::Lanes(d)) {
    Store16(d, F32ToBF16Bits(d, hn::LoadU(d, in + i)), out + i);
  }
  for (; i < n; ++i) Store16(d1, F32ToBF16Bits(d1, hn::LoadU(d1, in + i)), out + i);
}
void F32ToF16(const float* in, std::uint16_t* out, std::size_t n) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  std::size_t i = 0;
  for (; i + hn::Lanes(d) <= n; i += hn::Lanes(d)) {
    Store16(d, F32ToF16Bits(d, hn::LoadU(d, in + i)), out + i);
  }
  for (; i < n; ++i) Store16(d1, F32ToF16Bits(d1, hn::LoadU(d1, in + i)), out + i);
}
void F16ToF32(const std::uint16_t* in, float* out, std::size_t n) {
  const hn::ScalableTag<float> d;
  const hn::CappedTag<float, 1> d1;
  std::size_t i = 0;
  for (; i + hn::Lanes(d) <= n; i += hn::Lanes(d)) {
    hn::StoreU(F16BitsToF32(d, Load16(d, in + i)), d, out + i);
  }
  for (; i < n; ++i) hn::StoreU(F16BitsToF32(d1, Load16(d1, in + i)), d1, out + i);
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace simd
}  // namespace ropekit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ropekit {
namespace simd {
HWY_EXPORT(FillCosSin);
HWY_EXPORT(Copy);
HWY_EXPORT(F32ToBF16);
HWY_EXPORT(F32ToF16);
HWY_EXPORT(F16ToF32);
HWY_EXPORT(TargetName);
}  // namespace simd

namespace detail {

void simd_fill_cos_sin(const float* inv_freq, int pairs, AngleMode angles, double amplitude,
                       std::int64_t p_begin, std::int64_t count, float* cos_out, float* sin_out,
                       std::int64_t row_stride) {
  HWY_DYNAMIC_DISPATCH(simd::FillCosSin)
  (inv_freq, pairs, angles == AngleMode::kHf, amplitude, p_begin, count, cos_out, sin_out,
   row_stride);
}
void simd_copy(void* dst, const void* src, std::size_t bytes) {
  HWY_DYNAMIC_DISPATCH(simd::Copy)(dst, src, bytes);
}
void simd_f32_to_bf16(const float* in, std::uint16_t* out, std::size_t n) {
  HWY_DYNAMIC_DISPATCH(simd::F32ToBF16)(in, out, n);
}
void simd_f32_to_f16(const float* in, std::uint16_t* out, std::size_t n) {
  HWY_DYNAMIC_DISPATCH(simd::F32ToF16)(in, out, n);
}
void simd_f16_to_f32(const std::uint16_t* in, float* out, std::size_t n) {
  HWY_DYNAMIC_DISPATCH(simd::F16ToF32)(in, out, n);
}
const char* simd_dispatched_target_name() { return HWY_DYNAMIC_DISPATCH(simd::TargetName)(); }

}  // namespace detail
}  // namespace ropekit
#endif  // HWY_ONCE
