// Per-target conversion helpers that Highway 1.0.3 lacks or gets wrong for us.
//
//   * bf16 demote: 1.0.3's DemoteTo(bf16) and hwy::BF16FromF32 truncate (upstream RNE arrived in
//     1.2.0). We add 0x7FFF + lsb(bit 16) and keep the top half, NaN forced quiet: bit-exact with
//     ropekit::f32_to_bf16 (dtype.h) on every target.
//   * f16 demote: on AVX2/AVX3, DemoteTo uses F16C vcvtps2ph with imm 0 (RNE), correct. On SSE4,
//     SSSE3 and SCALAR the emulation truncates and never produces inf, so those targets use the
//     branch-free RNE algorithm of Maratyszcza's FP16 library (fp16_ieee_from_fp32_value), which
//     lets the FPU do the rounding: scaling |x| by 2^112·2^-110 pushes the bits to discard below
//     the float mantissa after adding a power-of-two bias, so the add rounds RNE exactly where
//     f16 must; it handles subnormals and overflow to inf.
//   * f16 promote: the non-F16C emulation maps inf/NaN to finite values (it rebiases exponent 31
//     like a normal one); ours maps exponent 31 to 255.
//
// 16-bit values travel in u32 lanes (value in the low 16 bits) between these helpers and the
// loads/stores, so the same code serves the half-split rows (u16 loads) and interleaved pairs
// (one u32 = one (a, b) pair).
//
// Included once per target (foreach_target); the toggle guard is Highway's -inl.h convention.

#if defined(ROPEKIT_SIMD_HWY_COMPAT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ROPEKIT_SIMD_HWY_COMPAT_INL_H_
#undef ROPEKIT_SIMD_HWY_COMPAT_INL_H_
#else
#define ROPEKIT_SIMD_HWY_COMPAT_INL_H_
#endif

#include <cstdint>
#include <cstring>

#include "hwy/highway.h"
#include "ropekit/dtype.h"

// F16C (hardware RNE f16 conversion) comes with every AVX2/AVX3 target in Highway 1.0.3.
#ifdef ROPEKIT_HWY_NATIVE_F16
#undef ROPEKIT_HWY_NATIVE_F16
#endif
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define ROPEKIT_HWY_NATIVE_F16 1
#else
#define ROPEKIT_HWY_NATIVE_F16 0
#endif

HWY_BEFORE_NAMESPACE();
namespace ropekit {
namespace simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class DF>
using VF = hn::Vec<DF>;
template <class DF>
using VU32 = hn::Vec<hn::RebindToUnsigned<DF>>;

// ---- bf16 ------------------------------------------------------------------------------------
template <class DF>
HWY_INLINE VF<DF> BF16BitsToF32(DF df, VU32<DF> bits) {
  return hn::BitCast(df, hn::ShiftLeft<16>(bits));
}

// RNE f32 -> bf16 in the HIGH 16 bits of each u32 lane (low bits: garbage). Same as
// ropekit::f32_to_bf16: add 0x7FFF + lsb(bit 16); NaN keeps sign and top payload, forced quiet
// (adding 0x7FFF to a NaN could carry into the sign).
template <class DF>
HWY_INLINE VU32<DF> BF16RneHigh(DF df, VF<DF> v) {
  (void)df;
  const hn::RebindToUnsigned<DF> du;
  const auto u = hn::BitCast(du, v);
  const auto lsb = hn::And(hn::ShiftRight<16>(u), hn::Set(du, 1u));
  const auto rounded = hn::Add(u, hn::Add(hn::Set(du, 0x7FFFu), lsb));
  const auto quiet = hn::Or(u, hn::Set(du, 0x00400000u));
  return hn::IfThenElse(hn::RebindMask(du, hn::IsNaN(v)), quiet, rounded);
}

// RNE f32 -> bf16 bits (low 16 bits of each u32 lane).
template <class DF>
HWY_INLINE VU32<DF> F32ToBF16Bits(DF df, VF<DF> v) {
  return hn::ShiftRight<16>(BF16RneHigh(df, v));
}

// ---- f16 -------------------------------------------------------------------------------------
template <class DF>
HWY_INLINE VF<DF> F16BitsToF32(DF df, VU32<DF> bits) {
#if ROPEKIT_HWY_NATIVE_F16
  const hn::Rebind<std::uint16_t, DF> du16;
  const hn::Rebind<hwy::float16_t, DF> df16;
  const hn::RebindToSigned<DF> di;
  return hn::PromoteTo(df, hn::BitCast(df16, hn::DemoteTo(du16, hn::BitCast(di, bits))));
#else
  const hn::RebindToUnsigned<DF> du;
  const hn::RebindToSigned<DF> di;
  const auto sign = hn::ShiftLeft<16>(hn::And(bits, hn::Set(du, 0x8000u)));
  const auto exp = hn::And(hn::ShiftRight<10>(bits), hn::Set(du, 0x1Fu));
  const auto man = hn::And(bits, hn::Set(du, 0x3FFu));
  const auto normal =
      hn::Or(hn::ShiftLeft<23>(hn::Add(exp, hn::Set(du, 112u))), hn::ShiftLeft<13>(man));
  const auto infnan = hn::Or(hn::Set(du, 0x7F800000u), hn::ShiftLeft<13>(man));
  // zero / subnormal: man * 2^-24 (exact in float)
  const auto sub = hn::BitCast(
      du, hn::Mul(hn::ConvertTo(df, hn::BitCast(di, man)), hn::Set(df, 5.9604644775390625e-8f)));
  auto mag = hn::IfThenElse(hn::Eq(exp, hn::Zero(du)), sub, normal);
  mag = hn::IfThenElse(hn::Eq(exp, hn::Set(du, 0x1Fu)), infnan, mag);
  return hn::BitCast(df, hn::Or(sign, mag));
#endif
}

// RNE f32 -> f16 bits (low 16 bits of each u32 lane). Same as ropekit::f32_to_f16.
template <class DF>
HWY_INLINE VU32<DF> F32ToF16Bits(DF df, VF<DF> v) {
  const hn::RebindToUnsigned<DF> du;
#if ROPEKIT_HWY_NATIVE_F16
  const hn::Rebind<std::uint16_t, DF> du16;
  const hn::Rebind<hwy::float16_t, DF> df16;
  const auto h = hn::BitCast(du16, hn::DemoteTo(df16, v));
  // vcvtps2ph quiets NaN and keeps the top payload bits: identical to dtype.h.
  return hn::PromoteTo(du, h);
#else
  const hn::RebindToSigned<DF> di;
  const auto w = hn::BitCast(du, v);
  const auto sign = hn::And(w, hn::Set(du, 0x80000000u));
  // |x|·2^112·2^-110: overflows to inf for |x| >= 2^16 and pre-scales the rest.
  auto base = hn::Mul(hn::Mul(hn::Abs(v), hn::Set(df, 0x1.0p+112f)), hn::Set(df, 0x1.0p-110f));
  // bias = max(exponent, 113 - 14 ... ) : a power of two whose addition leaves exactly the f16
  // mantissa bits (or the fixed 2^-24 quantum for subnormals) in the float mantissa.
  const auto e = hn::BitCast(di, hn::And(hn::ShiftRight<23>(w), hn::Set(du, 0xFFu)));
  const auto em = hn::BitCast(du, hn::Max(e, hn::Set(di, 0x71)));
  const auto bias = hn::BitCast(df, hn::Add(hn::ShiftLeft<23>(em), hn::Set(du, 0x07800000u)));
  base = hn::Add(bias, base);
  const auto bits = hn::BitCast(du, base);
  const auto exp_bits = hn::And(hn::ShiftRight<13>(bits), hn::Set(du, 0x7C00u));
  const auto man_bits = hn::And(bits, hn::Set(du, 0x0FFFu));
  const auto nonsign = hn::Add(exp_bits, man_bits);
  const auto nan_bits =
      hn::Or(hn::Set(du, 0x7E00u), hn::And(hn::ShiftRight<13>(w), hn::Set(du, 0x3FFu)));
  const auto mag = hn::IfThenElse(hn::RebindMask(du, hn::IsNaN(v)), nan_bits, nonsign);
  return hn::Or(hn::ShiftRight<16>(sign), mag);
#endif
}

// ---- loads and stores of N elements as f32 -----------------------------------------------------
// Rows are only element-aligned (any strides), so everything is LoadU/StoreU. Partial vectors
// (CappedTag) load/store exactly their lanes on x86 and SCALAR, never past the row.
// Keeps a loaded vector in a register. Each input vector of a rotation feeds two multiplies;
// GCC folds the load into both as memory operands, loading every row twice, which costs in
// cache-hot decode. An empty asm with the vector as an in/out register operand stops that.
template <class V>
HWY_INLINE V InRegister(V v) {
#if (HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL) && \
    defined(__GNUC__)
  asm("" : "+v"(v.raw));
#endif
  return v;
}

template <class DF>
HWY_INLINE VU32<DF> Load16(DF df, const void* p) {
  const hn::Rebind<std::uint16_t, DF> du16;
  const hn::RebindToUnsigned<DF> du;
  (void)df;
  return hn::PromoteTo(du, hn::LoadU(du16, static_cast<const std::uint16_t*>(p)));
}
template <class DF>
HWY_INLINE void Store16(DF df, VU32<DF> bits, void* p) {
  const hn::Rebind<std::uint16_t, DF> du16;
  const hn::RebindToSigned<DF> di;
  (void)df;
  // values are < 2^16: the saturating i32 -> u16 demote is exact (and exists on every target).
  hn::StoreU(hn::DemoteTo(du16, hn::BitCast(di, bits)), du16, static_cast<std::uint16_t*>(p));
}

template <class DF>
HWY_INLINE VF<DF> LoadRow(DF df, const float* p) {
  return hn::LoadU(df, p);
}
template <class DF>
HWY_INLINE VF<DF> LoadRow(DF df, const BF16* p) {
  return BF16BitsToF32(df, Load16(df, p));
}
template <class DF>
HWY_INLINE VF<DF> LoadRow(DF df, const F16* p) {
#if ROPEKIT_HWY_NATIVE_F16
  const hn::Rebind<hwy::float16_t, DF> df16;
  return hn::PromoteTo(df, hn::LoadU(df16, reinterpret_cast<const hwy::float16_t*>(p)));
#else
  return F16BitsToF32(df, Load16(df, p));
#endif
}

// One vector store, write-allocating (kStream false) or non-temporal (kStream true: a whole
// 64-byte line, p aligned to 64). A non-temporal store skips the read-for-ownership of its line,
// so an out-of-place result larger than the caches costs two DRAM transfers per line instead of
// three; rope-inl.h decides when (ShapeMayStream, ropekit/apply.h: OutputStores) and fences after
// the range. KernelStreams (rows-inl.h) says which kernels stream, with the measurements.
template <bool kStream, class D>
HWY_INLINE void StoreVec(hn::VFromD<D> v, D d, hn::TFromD<D>* p) {
  if constexpr (kStream) {
    static_assert(hn::MaxLanes(D()) * sizeof(hn::TFromD<D>) == 64, "only whole lines stream");
    hn::Stream(v, d, p);
  } else {
    hn::StoreU(v, d, p);
  }
}

template <class DF>
HWY_INLINE void StoreRow(DF df, VF<DF> v, float* p) {
  hn::StoreU(v, df, p);
}
template <class DF>
HWY_INLINE void StoreRow(DF df, VF<DF> v, BF16* p) {
  Store16(df, F32ToBF16Bits(df, v), p);
}
template <class DF>
HWY_INLINE void StoreRow(DF df, VF<DF> v, F16* p) {
#if ROPEKIT_HWY_NATIVE_F16
  const hn::Rebind<hwy::float16_t, DF> df16;
  hn::StoreU(hn::DemoteTo(df16, v), df16, reinterpret_cast<hwy::float16_t*>(p));
#else
  Store16(df, F32ToF16Bits(df, v), p);
#endif
}

// Interleaved pairs (x[2i], x[2i+1]) for i in [0, Lanes): a = evens, b = odds.
template <class DF>
HWY_INLINE void LoadPairs(DF df, const float* p, VF<DF>& a, VF<DF>& b) {
  hn::LoadInterleaved2(df, p, a, b);
}
// 16-bit pairs: one little-endian u32 per pair, a in the low half, b in the high half.
template <class DF>
HWY_INLINE VU32<DF> LoadPairBits(DF df, const void* p) {
  const hn::RebindToUnsigned<DF> du;
  (void)df;
  std::uint32_t const* p32 = static_cast<const std::uint32_t*>(p);  // LoadU is may_alias
  return hn::LoadU(du, p32);
}
template <class DF>
HWY_INLINE void LoadPairs(DF df, const BF16* p, VF<DF>& a, VF<DF>& b) {
  const hn::RebindToUnsigned<DF> du;
  const auto w = LoadPairBits(df, p);
  a = hn::BitCast(df, hn::ShiftLeft<16>(w));
  b = hn::BitCast(df, hn::And(w, hn::Set(du, 0xFFFF0000u)));
}
template <class DF>
HWY_INLINE void LoadPairs(DF df, const F16* p, VF<DF>& a, VF<DF>& b) {
  const hn::RebindToUnsigned<DF> du;
  const auto w = LoadPairBits(df, p);
  a = F16BitsToF32(df, hn::And(w, hn::Set(du, 0xFFFFu)));
  b = F16BitsToF32(df, hn::ShiftRight<16>(w));
}

template <class DF>
HWY_INLINE void StorePairs(DF df, VF<DF> a, VF<DF> b, float* p) {
  hn::StoreInterleaved2(a, b, df, p);
}
template <class DF>
HWY_INLINE void StorePairBits(DF df, VU32<DF> lo, VU32<DF> hi, void* p) {
  const hn::RebindToUnsigned<DF> du;
  (void)df;
  hn::StoreU(hn::Or(lo, hn::ShiftLeft<16>(hi)), du, static_cast<std::uint32_t*>(p));
}
template <class DF>
HWY_INLINE void StorePairs(DF df, VF<DF> a, VF<DF> b, BF16* p) {
  const hn::RebindToUnsigned<DF> du;
  // a's bf16 to the low half, b's (already in the high half) kept in place.
  const auto w = hn::Or(hn::ShiftRight<16>(BF16RneHigh(df, a)),
                        hn::And(BF16RneHigh(df, b), hn::Set(du, 0xFFFF0000u)));
  hn::StoreU(w, du, reinterpret_cast<std::uint32_t*>(p));
}
template <class DF>
HWY_INLINE void StorePairs(DF df, VF<DF> a, VF<DF> b, F16* p) {
  StorePairBits(df, F32ToF16Bits(df, a), F32ToF16Bits(df, b), p);
}

// ---- scalar element access (strided path)
// --------------------------------------------------------
HWY_INLINE float LoadScalar(const float* p) { return *p; }
HWY_INLINE float LoadScalar(const BF16* p) { return bf16_to_f32(*p); }
HWY_INLINE float LoadScalar(const F16* p) { return f16_to_f32(*p); }
HWY_INLINE void StoreScalar(float v, float* p) { *p = v; }
HWY_INLINE void StoreScalar(float v, BF16* p) { *p = f32_to_bf16(v); }
HWY_INLINE void StoreScalar(float v, F16* p) { *p = f32_to_f16(v); }

}  // namespace HWY_NAMESPACE
}  // namespace simd
}  // namespace ropekit
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
