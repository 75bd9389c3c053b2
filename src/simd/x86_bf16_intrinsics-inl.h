// The raw AVX-512 intrinsics of the AVX512_BF16 kernels (rows_x86-inl.h), each behind a thin
// wrapper: the kernels themselves use Highway vectors and these names only. Highway 1.0.3 has
// no target with AVX512_BF16, so every function adds it to the AVX3 target's attributes
// (ROPEKIT_AVX512BF16_ATTR) and runs only when CPUID reports it (detail::avx512_bf16_enabled()).
#if defined(ROPEKIT_SIMD_X86_BF16_INTRINSICS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ROPEKIT_SIMD_X86_BF16_INTRINSICS_INL_H_
#undef ROPEKIT_SIMD_X86_BF16_INTRINSICS_INL_H_
#else
#define ROPEKIT_SIMD_X86_BF16_INTRINSICS_INL_H_
#endif

#include <cstdint>

#include "hwy/highway.h"
#include "ropekit/dtype.h"

HWY_BEFORE_NAMESPACE();
namespace ropekit {
namespace simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#ifndef ROPEKIT_AVX512BF16_ATTR
#define ROPEKIT_AVX512BF16_ATTR __attribute__((target(HWY_TARGET_STR ",avx512bf16")))
#endif

// 32 bf16 words, RNE: words 0-15 from lo, 16-31 from hi.
ROPEKIT_AVX512BF16_ATTR HWY_INLINE __m512i CvtBF16x32(hn::Vec512<float> lo, hn::Vec512<float> hi) {
  return __builtin_bit_cast(__m512i, _mm512_cvtne2ps_pbh(hi.raw, lo.raw));
}

// The ±0 words of r (the only ones that can be flushed subnormals).
ROPEKIT_AVX512BF16_ATTR HWY_INLINE __mmask32 ZeroWords(__m512i r) {
  return _mm512_testn_epi16_mask(r, _mm512_set1_epi16(0x7FFF));
}

// Exact test of one block converted from lo and hi: false if a lane was flushed.
ROPEKIT_AVX512BF16_ATTR HWY_INLINE bool NoFlushedLane(__m512i r, hn::Vec512<float> lo,
                                                      hn::Vec512<float> hi) {
  if (HWY_LIKELY(ZeroWords(r) == 0)) return true;
  return (_mm512_fpclass_ps_mask(lo.raw, 0x20) | _mm512_fpclass_ps_mask(hi.raw, 0x20)) == 0;
}

// The word permutation that puts CvtBF16x32(y0, y1) of an interleaved block back in pair order:
// word j of the result is pair j/2's first (j even) or second (j odd) result; in the converted
// vector the first results are words 0-15 and the second ones words 16-31.
ROPEKIT_AVX512BF16_ATTR HWY_INLINE __m512i PairOrderWords() {
  return _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                          6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
}

// Thin wrappers over the remaining AVX-512 intrinsics the bf16 kernels use.
using Words32 = __m512i;  // 32 bf16 words
using WordMask = __mmask32;
ROPEKIT_AVX512BF16_ATTR HWY_INLINE Words32 SplatWords(std::uint16_t w) {
  return _mm512_set1_epi16(static_cast<short>(w));
}
// mask | (lanes of r with (r & magnitude) != 0), for the lanes set in mask.
ROPEKIT_AVX512BF16_ATTR HWY_INLINE WordMask KeepNonZeroWords(WordMask mask, Words32 r,
                                                             Words32 magnitude) {
  return _mm512_mask_test_epi16_mask(mask, r, magnitude);
}
ROPEKIT_AVX512BF16_ATTR HWY_INLINE Words32 PermuteWords(Words32 index, Words32 r) {
  return _mm512_permutexvar_epi16(index, r);
}
// kStream: non-temporal (out 64-byte aligned), as hwy_compat-inl.h's StoreVec.
template <bool kStream = false>
ROPEKIT_AVX512BF16_ATTR HWY_INLINE void StoreWords(Words32 r, BF16* out) {
  if constexpr (kStream) {
    _mm512_stream_si512(reinterpret_cast<__m512i*>(out), r);
  } else {
    _mm512_storeu_si512(out, r);
  }
}
#endif  // HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL

}  // namespace HWY_NAMESPACE
}  // namespace simd
}  // namespace ropekit
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
