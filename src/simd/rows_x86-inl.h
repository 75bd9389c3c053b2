// x86-specific row kernels: bf16 with AVX512_BF16's hardware RNE conversion (rows, and out-of-
// place rows of 32/64/128 pairs a whole token at a time, cos/sin in registers), and F16C f16
// half-split rows of a fixed width a whole token at a time. Raw intrinsics stay behind the
// wrappers of x86_bf16_intrinsics-inl.h. Each section compiles to nothing on other targets.
#if defined(ROPEKIT_SIMD_ROWS_X86_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ROPEKIT_SIMD_ROWS_X86_INL_H_
#undef ROPEKIT_SIMD_ROWS_X86_INL_H_
#else
#define ROPEKIT_SIMD_ROWS_X86_INL_H_
#endif

#include <cstdint>
#include <cstring>

#include "hwy/highway.h"
#include "simd/hwy_compat-inl.h"
#include "simd/rows-inl.h"
#include "simd/simd_api.h"
#include "simd/x86_bf16_intrinsics-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ropekit {
namespace simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#ifdef ROPEKIT_HAVE_AVX512BF16_KERNELS
#undef ROPEKIT_HAVE_AVX512BF16_KERNELS
#endif

// ---- AVX3 with AVX512_BF16 (Zen 4/5, Sapphire Rapids): hardware RNE bf16 stores ----------------
// vcvtne2ps2bf16 rounds two f32 vectors to 32 bf16 RNE in one instruction (NaN made quiet like
// dtype.h), but treats subnormal inputs as zero. A lane whose f32 result is subnormal (only
// possible for inputs below ~2^-60) must get the software rounding instead, so that results
// stay bit-identical to the other targets. Only a ±0 result can be a flushed subnormal, so the
// kernels look for ±0 lanes:
//   out of place: the row runs without any branch, OR-ing the ±0 lanes of every block into one
//     mask; if that mask is non-zero at the end of the row (a flushed subnormal, or simply a
//     zero), the row is computed again with the exact per-block test (the input is intact).
//     Any exact test costs: a stand-alone half-split decode loop measured 1.34-1.46x the copy
//     without one, 1.62-1.66x with this one and 1.56-1.77x with a branch per block
//     (docs/benchmarks.md); the per-row form keeps the branch out of the block loop.
//   in place: the input is overwritten block by block, so each block is tested before its
//     store and falls back to the software rounding on its own.
// Highway 1.0.3 has no target with this extension, so these functions add it to the AVX3
// target's attributes and run only when CPUID reports it (detail::avx512_bf16_enabled()).
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define ROPEKIT_HAVE_AVX512BF16_KERNELS 1

using VF16 = hn::Vec512<float>;

// One half-split block of 32 pairs starting at pair i (row of `pairs` pairs), rotated in f32 by
// (c0, c1), (s0, s1): ya = first-half results, yb = second-half results.
ROPEKIT_AVX512BF16_ATTR HWY_INLINE void RotateHalfBlock(const BF16* in, std::size_t pairs,
                                                        std::size_t i, VF16 c0, VF16 c1, VF16 s0,
                                                        VF16 s1, VF16& ya0, VF16& ya1, VF16& yb0,
                                                        VF16& yb1) {
  const hn::ScalableTag<float> df;  // 16 lanes
  const auto a0 = LoadRow(df, in + i), a1 = LoadRow(df, in + i + 16);
  const auto b0 = LoadRow(df, in + pairs + i), b1 = LoadRow(df, in + pairs + i + 16);
  ya0 = hn::MulSub(a0, c0, hn::Mul(b0, s0));
  ya1 = hn::MulSub(a1, c1, hn::Mul(b1, s1));
  yb0 = hn::MulAdd(b0, c0, hn::Mul(a0, s0));
  yb1 = hn::MulAdd(b1, c1, hn::Mul(a1, s1));
}

// One interleaved block of 16 pairs (32 bf16 = one u32 vector) at `in`: the first element of
// each pair is the low half of a u32 lane (x0 = w << 16 as f32), the second the high half
// (x1 = w & 0xFFFF0000), so cos/sin are in natural order and nothing is permuted on the way in.
ROPEKIT_AVX512BF16_ATTR HWY_INLINE void RotateInterleavedBlock(const BF16* in, VF16 cv, VF16 sv,
                                                               VF16& y0, VF16& y1) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const auto w = hn::LoadU(du, reinterpret_cast<const std::uint32_t*>(in));
  const auto x0 = hn::BitCast(df, hn::ShiftLeft<16>(w));
  const auto x1 = hn::BitCast(df, hn::And(w, hn::Set(du, 0xFFFF0000u)));
  y0 = hn::MulSub(x0, cv, hn::Mul(x1, sv));
  y1 = hn::MulAdd(x1, cv, hn::Mul(x0, sv));
}

// One half-split block of 32 pairs at pair i, split like an interleaved block: the u32 lanes of
// x_a (and of x_b) hold pairs (i + 2j, i + 2j + 1), split by shift/AND into even pairs and odd
// pairs; (ce, co), (se, so) are cos/sin of the even and the odd pairs. ya_e/ya_o (yb_e/yb_o)
// are the first-half (second-half) results of the even and odd pairs, which CvtBF16x32 and
// PairOrderWords put back in pair order.
ROPEKIT_AVX512BF16_ATTR HWY_INLINE void RotateHalfBlockEvenOdd(const BF16* in, std::size_t pairs,
                                                               std::size_t i, VF16 ce, VF16 co,
                                                               VF16 se, VF16 so, VF16& ya_e,
                                                               VF16& ya_o, VF16& yb_e, VF16& yb_o) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const auto high = hn::Set(du, 0xFFFF0000u);
  const auto wa = hn::LoadU(du, reinterpret_cast<const std::uint32_t*>(in + i));
  const auto wb = hn::LoadU(du, reinterpret_cast<const std::uint32_t*>(in + pairs + i));
  const auto ae = hn::BitCast(df, hn::ShiftLeft<16>(wa)), ao = hn::BitCast(df, hn::And(wa, high));
  const auto be = hn::BitCast(df, hn::ShiftLeft<16>(wb)), bo = hn::BitCast(df, hn::And(wb, high));
  ya_e = hn::MulSub(ae, ce, hn::Mul(be, se));
  ya_o = hn::MulSub(ao, co, hn::Mul(bo, so));
  yb_e = hn::MulAdd(be, ce, hn::Mul(ae, se));
  yb_o = hn::MulAdd(bo, co, hn::Mul(ao, so));
}

// The rotated pairs [0, full) of one half-split row, full a multiple of 32. kExact: each block
// is tested and falls back on its own (returns 0); otherwise: no test, returns the OR of the ±0
// lane masks (non-zero: the caller must redo the row exactly).
template <bool kExact>
ROPEKIT_AVX512BF16_ATTR HWY_INLINE WordMask BF16HalfNativeRow(const BF16* in, BF16* out,
                                                              const float* HWY_RESTRICT c,
                                                              const float* HWY_RESTRICT s,
                                                              std::size_t pairs, std::size_t full) {
  const hn::ScalableTag<float> df;  // 16 lanes
  WordMask zero = 0;
  for (std::size_t i = 0; i < full; i += 32) {
    VF16 ya0, ya1, yb0, yb1;
    RotateHalfBlock(in, pairs, i, hn::LoadU(df, c + i), hn::LoadU(df, c + i + 16),
                    hn::LoadU(df, s + i), hn::LoadU(df, s + i + 16), ya0, ya1, yb0, yb1);
    const Words32 ra = CvtBF16x32(ya0, ya1);
    const Words32 rb = CvtBF16x32(yb0, yb1);
    if constexpr (kExact) {
      if (HWY_UNLIKELY(!NoFlushedLane(ra, ya0, ya1) || !NoFlushedLane(rb, yb0, yb1))) {
        StoreRow(df, ya0, out + i);
        StoreRow(df, ya1, out + i + 16);
        StoreRow(df, yb0, out + pairs + i);
        StoreRow(df, yb1, out + pairs + i + 16);
        continue;
      }
    } else {
      zero |= ZeroWords(ra) | ZeroWords(rb);
    }
    StoreWords(ra, out + i);
    StoreWords(rb, out + pairs + i);
  }
  return zero;
}

// Interleaved rows, 16 pairs per block (RotateInterleavedBlock); on the way out the two results
// are converted by one vcvtne2ps2bf16 and re-interleaved by one word permutation (PairOrderWords).
// Rotates pairs [0, full), full a multiple of 16; kExact and the return
// value as for BF16HalfNativeRow. (The loop counts elements: counting pairs compiled to a loop
// measured ~0.15x of the copy slower at decode sizes.)
template <bool kExact>
ROPEKIT_AVX512BF16_ATTR HWY_INLINE WordMask BF16InterleavedNativeRow(const BF16* in, BF16* out,
                                                                     const float* HWY_RESTRICT c,
                                                                     const float* HWY_RESTRICT s,
                                                                     std::size_t full) {  // pairs
  const hn::ScalableTag<float> df;  // 16 lanes
  const Words32 interleave = PairOrderWords();
  WordMask zero = 0;
  for (std::size_t e = 0; e < 2 * full; e += 32) {  // elements
    VF16 y0, y1;
    RotateInterleavedBlock(in + e, hn::LoadU(df, c + e / 2), hn::LoadU(df, s + e / 2), y0, y1);
    const Words32 r = CvtBF16x32(y0, y1);
    if constexpr (kExact) {
      if (HWY_UNLIKELY(!NoFlushedLane(r, y0, y1))) {
        StorePairs(df, y0, y1, out + e);
        continue;
      }
    } else {
      zero |= ZeroWords(r);
    }
    StoreWords(PermuteWords(interleave, r), out + e);
  }
  return zero;
}

// Whole blocks of one row in layout L (half-split: 32 pairs per block, interleaved: 16).
template <PairLayout L, bool kExact>
ROPEKIT_AVX512BF16_ATTR HWY_INLINE WordMask BF16NativeBlocks(const BF16* in, BF16* out,
                                                             const float* HWY_RESTRICT c,
                                                             const float* HWY_RESTRICT s,
                                                             std::size_t pairs, std::size_t full) {
  if constexpr (L == PairLayout::kHalf)
    return BF16HalfNativeRow<kExact>(in, out, c, s, pairs, full);
  return BF16InterleavedNativeRow<kExact>(in, out, c, s, full);
}

// All heads of one token whose rows are exactly kPairs rotated pairs (head_dim 64/128/256, the
// decode-sized common case), out of place. cos/sin are loaded into registers once per token
// and each row is unrolled completely: at decode sizes (a row is only two 32-pair blocks) the
// block loop's bookkeeping and the cos/sin reloads of every row cost as much as the test for
// flushed subnormals. That test is two masked vptestmw chains (no mask OR, no move to a general
// register): a chain stays all-ones while no result word is ±0. If any word is ±0 anywhere in
// the token (a flushed subnormal, or simply a zero), every row is redone with the exact
// per-block test (the input is intact out of place). Measured against the row-by-row driver
// below in docs/benchmarks.md. kStream: non-temporal stores (rows-inl.h: KernelStreams).
template <PairLayout L, std::size_t kPairs, bool kStream = false>
ROPEKIT_AVX512BF16_ATTR HWY_NOINLINE void RotateTokenBF16Native(const void* in_v, void* out_v,
                                                                const TokenTrig& tt,
                                                                const RowGeom& g) {
  static_assert(kPairs % 32 == 0 && kPairs <= 128,
                "whole 32-pair blocks, cos/sin kept in registers");
  static_assert(!kStream || KernelStreams<StreamingKernel::kTokenBF16Native, L, BF16>());
  const hn::ScalableTag<float> df;  // 16 lanes
  constexpr std::size_t kVecs = kPairs / 16;
  const RowLoop lp(g);
  VF16 cv[kVecs], sv[kVecs];
  for (std::size_t k = 0; k < kVecs; ++k) {
    cv[k] = hn::LoadU(df, tt.c + 16 * k);
    sv[k] = hn::LoadU(df, tt.s + 16 * k);
  }
  if constexpr (L == PairLayout::kHalf) {
    // Per 32-pair block: (even pairs, odd pairs) instead of (first 16, last 16), the order
    // RotateHalfBlockEvenOdd reads its inputs in.
    for (std::size_t k = 0; k < kVecs; k += 2) {
      const VF16 c_even = hn::ConcatEven(df, cv[k + 1], cv[k]),
                 c_odd = hn::ConcatOdd(df, cv[k + 1], cv[k]);
      const VF16 s_even = hn::ConcatEven(df, sv[k + 1], sv[k]),
                 s_odd = hn::ConcatOdd(df, sv[k + 1], sv[k]);
      cv[k] = c_even;
      cv[k + 1] = c_odd;
      sv[k] = s_even;
      sv[k + 1] = s_odd;
    }
  }
  const Words32 magnitude = SplatWords(0x7FFF);
  const Words32 interleave = PairOrderWords();
  WordMask nonzero_a = ~WordMask{0}, nonzero_b = ~WordMask{0};
  const BF16* in = static_cast<const BF16*>(in_v);
  BF16* out = static_cast<BF16*>(out_v);
  for (std::int64_t h = 0; h < lp.heads; ++h, in += lp.in_sh, out += lp.out_sh) {
    if constexpr (L == PairLayout::kHalf) {
      for (std::size_t k = 0; k < kVecs; k += 2) {  // unrolled: kVecs is a constant
        const std::size_t i = 16 * k;
        VF16 ya_e, ya_o, yb_e, yb_o;
        RotateHalfBlockEvenOdd(in, kPairs, i, cv[k], cv[k + 1], sv[k], sv[k + 1], ya_e, ya_o, yb_e,
                               yb_o);
        const Words32 ra = CvtBF16x32(ya_e, ya_o);
        const Words32 rb = CvtBF16x32(yb_e, yb_o);
        nonzero_a = KeepNonZeroWords(nonzero_a, ra, magnitude);
        nonzero_b = KeepNonZeroWords(nonzero_b, rb, magnitude);
        StoreWords<kStream>(PermuteWords(interleave, ra), out + i);
        StoreWords<kStream>(PermuteWords(interleave, rb), out + kPairs + i);
      }
    } else {
      for (std::size_t k = 0; k < kVecs; ++k) {  // 16 pairs = 32 elements per block
        VF16 y0, y1;
        RotateInterleavedBlock(in + 32 * k, cv[k], sv[k], y0, y1);
        const Words32 r = CvtBF16x32(y0, y1);
        if (k % 2 == 0) {
          nonzero_a = KeepNonZeroWords(nonzero_a, r, magnitude);
        } else {
          nonzero_b = KeepNonZeroWords(nonzero_b, r, magnitude);
        }
        StoreWords<kStream>(PermuteWords(interleave, r), out + 32 * k);
      }
    }
    if (HWY_UNLIKELY(lp.pass)) PassThrough(in + lp.rot, out + lp.rot, lp.rest);
  }
  if (HWY_UNLIKELY((nonzero_a & nonzero_b) != ~WordMask{0})) {
    // The redo stores regularly over lines just streamed: order them first.
    if constexpr (kStream) hwy::FlushStream();
    in = static_cast<const BF16*>(in_v);
    out = static_cast<BF16*>(out_v);
    for (std::int64_t h = 0; h < lp.heads; ++h, in += lp.in_sh, out += lp.out_sh) {
      BF16NativeBlocks<L, true>(in, out, tt.c, tt.s, kPairs, kPairs);
    }
  }
}

// All heads of one token, either layout: whole blocks with the hardware conversion, the
// remaining pairs and the pass-through part as in the generic kernel.
template <PairLayout L>
ROPEKIT_AVX512BF16_ATTR HWY_NOINLINE void RotateRowsBF16Native(const void* in_v, void* out_v,
                                                               const TokenTrig& tt,
                                                               const RowGeom& g) {
  const RowLoop lp(g);
  const std::size_t pairs = lp.pairs;
  constexpr std::size_t kBlockPairs = L == PairLayout::kHalf ? 32 : 16;
  const std::size_t full = pairs - pairs % kBlockPairs;
  const float* HWY_RESTRICT c = tt.c;
  const float* HWY_RESTRICT s = tt.s;
  const BF16* in = static_cast<const BF16*>(in_v);
  BF16* out = static_cast<BF16*>(out_v);
  const bool in_place = g.in_place;
  for (std::int64_t h = 0; h < lp.heads; ++h, in += lp.in_sh, out += lp.out_sh) {
    // In place the input is gone after each block: test every block. Out of place: redo the
    // row exactly only if some result was ±0.
    const bool exact_pass = in_place || BF16NativeBlocks<L, false>(in, out, c, s, pairs, full) != 0;
    if (exact_pass) BF16NativeBlocks<L, true>(in, out, c, s, pairs, full);
    if (HWY_UNLIKELY(full != pairs)) RotatePairsFrom<L>(in, out, c, s, full, pairs);
    if (HWY_UNLIKELY(lp.pass)) PassThrough(in + lp.rot, out + lp.rot, lp.rest);
  }
}

// With stream, the non-temporal form where there is one (KernelStreams: half-split rows).
template <std::size_t kPairs>
HWY_INLINE RowsChoice TokenBF16Native(bool half, bool stream) {
  if (half) {
    if (stream) return {&RotateTokenBF16Native<PairLayout::kHalf, kPairs, true>, 0, true, true};
    return {&RotateTokenBF16Native<PairLayout::kHalf, kPairs>, 0, true};
  }
  if (stream)
    return {&RotateTokenBF16Native<PairLayout::kInterleaved, kPairs, true>, 0, true, true};
  return {&RotateTokenBF16Native<PairLayout::kInterleaved, kPairs>, 0, true};
}

// The whole-token kernel for rows of `pairs` pairs, or no fn. Out of place only: in place, the
// per-block test of RotateRowsBF16Native is needed (a token-level redo has no input left).
HWY_INLINE RowsChoice SelectTokenBF16Native(PairLayout layout, int pairs, bool in_place,
                                            bool stream) {
  if (in_place || (layout != PairLayout::kHalf && layout != PairLayout::kInterleaved)) return {};
  const bool half = layout == PairLayout::kHalf;
  switch (pairs) {
    case 32:
      return TokenBF16Native<32>(half, stream);
    case 64:
      return TokenBF16Native<64>(half, stream);
    case 128:
      return TokenBF16Native<128>(half, stream);
    default:
      return {};
  }
}
#else
#define ROPEKIT_HAVE_AVX512BF16_KERNELS 0
#endif

}  // namespace HWY_NAMESPACE
}  // namespace simd
}  // namespace ropekit
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
