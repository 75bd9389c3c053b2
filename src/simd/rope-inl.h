// The per-target RoPE range kernel, instantiated once per input dtype (rope_f32.cc, rope_f16.cc,
// rope_bf16.cc each instantiate RopeRange<their dtype>).
//
// Per token: cos/sin are obtained ONCE (a CosSinCache row copied to an aligned buffer, or
// computed on the fly by sincos-inl.h), rearranged once if a row kernel wants another order
// (TokenTrig), then every head of q and of k is rotated with them. Rows with stride_dim == 1 take
// a vector kernel (full vectors, then halving CappedTag tails: Highway 1.0.3 has no
// LoadN/StoreN, and MaskedLoad reads past the row on SSE4/SCALAR); other strides take a scalar
// path with the same f32 formulas. Math is f32; stores round once (RNE), bit-identical to
// dtype.h's conversions on every target.
//
//   forward  y_a = x_a·c − x_b·s,  y_b = x_b·c + x_a·s       (inverse: s → −s, once per token)
//
// Row kernels (SelectRowsOut): generic (any in/out dtype and layout); bf16 -> bf16 half-split
// with an even/odd lane split (no permutes) or, on AVX3 CPUs with AVX512_BF16, hardware RNE
// conversion; interleaved F16C f16 as x·C + swap(x)·S without de-interleaving;
// interleaved bf16 with AVX512_BF16 split by shift/AND and re-interleaved after conversion;
// out-of-place bf16 rows of 32/64/128 pairs with AVX512_BF16 a whole token at a time, cos/sin
// in registers (RotateTokenBF16Native);
// kInterleavedToHalf in place through a copy of the row.

#if defined(ROPEKIT_SIMD_ROPE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ROPEKIT_SIMD_ROPE_INL_H_
#undef ROPEKIT_SIMD_ROPE_INL_H_
#else
#define ROPEKIT_SIMD_ROPE_INL_H_
#endif

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "apply/angles.h"
#include "apply/job.h"
#include "hwy/highway.h"
#include "ropekit/cos_sin_cache.h"
#include "simd/hwy_compat-inl.h"
#include "simd/simd_api.h"
#include "simd/sincos-inl.h"

#ifdef ROPEKIT_HAVE_AVX512BF16_KERNELS
#undef ROPEKIT_HAVE_AVX512BF16_KERNELS
#endif

HWY_BEFORE_NAMESPACE();
namespace ropekit {
namespace simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Geometry shared by every row of one tensor.
struct RowGeom {
  int pairs = 0;
  int rotary_dim = 0;
  int head_dim = 0;
  std::int64_t in_sd = 1, out_sd = 1;  // element strides along head_dim
  std::int64_t in_sh = 0, out_sh = 0;  // element strides between heads
  std::int64_t heads = 0;
  bool in_place = false;
};

// cos/sin of one token in the arrangements the row kernels read (built once per token, only
// those some tensor of the job needs).
struct TokenTrig {
  const float* c = nullptr;  // [pairs] natural order
  const float* s = nullptr;
  // bf16 half-split rows: per block of 2N pairs, the N even pairs' values then the N odd ones
  // (a 2N-element bf16 load splits into even/odd f32 lanes with one shift / one AND).
  const float* c_eo = nullptr;
  const float* s_eo = nullptr;
  // interleaved rows: [c0 c0 c1 c1 ...] and [-s0 s0 -s1 s1 ...], so that
  // y = x·C + swap_pairs(x)·S rotates interleaved pairs without de-interleaving.
  const float* c_dup = nullptr;
  const float* s_dup = nullptr;
};

enum TrigNeeds : unsigned { kNeedEvenOdd = 1, kNeedDup = 2 };

// Rotates all heads of one token: in/out point at head 0 of the token.
using RowsFn = void (*)(const void* in, void* out, const TokenTrig& tt, const RowGeom& g);

// ---- contiguous rows, generic (any in/out dtype, any layout) -----------------------------------
template <PairLayout L, class DF, typename TIn, typename TOut>
HWY_INLINE void RotateStep(DF df, const TIn* in, TOut* out, const float* c,
                           const float* s, std::size_t i, std::size_t pairs) {
  const auto vc = hn::LoadU(df, c + i);
  const auto vs = hn::LoadU(df, s + i);
  VF<DF> a, b;
  if constexpr (L == PairLayout::kHalf) {
    a = LoadRow(df, in + i);
    b = LoadRow(df, in + pairs + i);
  } else {
    LoadPairs(df, in + 2 * i, a, b);
  }
  const auto ya = hn::MulSub(a, vc, hn::Mul(b, vs));
  const auto yb = hn::MulAdd(b, vc, hn::Mul(a, vs));
  if constexpr (L == PairLayout::kInterleaved) {
    StorePairs(df, ya, yb, out + 2 * i);
  } else {  // kHalf, kInterleavedToHalf
    StoreRow(df, ya, out + i);
    StoreRow(df, yb, out + pairs + i);
  }
}

// Pairs [i, pairs) with full vectors then halving capped vectors (each used at most once).
template <std::size_t kLanes, PairLayout L, typename TIn, typename TOut>
HWY_INLINE void RotateTail(const TIn* in, TOut* out, const float* c, const float* s,
                           std::size_t i, std::size_t pairs) {
  if constexpr (kLanes >= 1) {
    const hn::CappedTag<float, kLanes> d;
    if (pairs - i >= kLanes) {
      RotateStep<L>(d, in, out, c, s, i, pairs);
      i += kLanes;
    }
    RotateTail<kLanes / 2, L>(in, out, c, s, i, pairs);
  }
}

template <PairLayout L, typename TIn, typename TOut>
HWY_INLINE void RotatePairsFrom(const TIn* in, TOut* out, const float* c,
                                const float* s, std::size_t i, std::size_t pairs) {
  const hn::ScalableTag<float> df;
  const std::size_t N = hn::Lanes(df);
  for (; i + N <= pairs; i += N) RotateStep<L>(df, in, out, c, s, i, pairs);
  RotateTail<HWY_LANES(float) / 2, L>(in, out, c, s, i, pairs);
}

template <class DF, typename TIn, typename TOut>
HWY_INLINE void ConvertStep(DF df, const TIn* HWY_RESTRICT in, TOut* out, std::size_t i) {
  StoreRow(df, LoadRow(df, in + i), out + i);
}
template <std::size_t kLanes, typename TIn, typename TOut>
HWY_INLINE void ConvertTail(const TIn* HWY_RESTRICT in, TOut* out, std::size_t i, std::size_t n) {
  if constexpr (kLanes >= 1) {
    const hn::CappedTag<float, kLanes> d;
    if (n - i >= kLanes) {
      ConvertStep(d, in, out, i);
      i += kLanes;
    }
    ConvertTail<kLanes / 2>(in, out, i, n);
  }
}

// Pass-through features [rotary_dim, head_dim) out of place: bit copy for equal types, else one
// RNE conversion (as the reference's store_from_double(load_as_double(x)) does).
template <typename TIn, typename TOut>
HWY_INLINE void PassThrough(const TIn* HWY_RESTRICT in, TOut* out, std::size_t n) {
  if constexpr (std::is_same_v<TIn, TOut>) {
    std::memcpy(out, in, n * sizeof(TIn));
  } else {
    const hn::ScalableTag<float> df;
    const std::size_t N = hn::Lanes(df);
    std::size_t i = 0;
    for (; i + N <= n; i += N) ConvertStep(df, in, out, i);
    ConvertTail<HWY_LANES(float) / 2>(in, out, i, n);
  }
}

// Per-row loop structure shared by the kernels: the decisions that are the same for every row
// (is there a tail, is there a pass-through part) are taken once per token, and the row
// geometry is copied to locals so that stores through `out` cannot force reloads.
struct RowLoop {
  std::size_t pairs, rot, rest;
  std::int64_t heads, in_sh, out_sh;
  bool pass;
  explicit RowLoop(const RowGeom& g)
      : pairs(static_cast<std::size_t>(g.pairs)),
        rot(static_cast<std::size_t>(g.rotary_dim)),
        rest(static_cast<std::size_t>(g.head_dim - g.rotary_dim)),
        heads(g.heads),
        in_sh(g.in_sh),
        out_sh(g.out_sh),
        pass(g.head_dim != g.rotary_dim && !g.in_place) {}
};

template <PairLayout L, typename TIn, typename TOut>
HWY_NOINLINE void RotateRowsContig(const void* in_v, void* out_v, const TokenTrig& tt,
                                   const RowGeom& g) {
  const hn::ScalableTag<float> df;
  const std::size_t N = hn::Lanes(df);
  const RowLoop lp(g);
  const std::size_t full = lp.pairs - lp.pairs % N;
  const float* HWY_RESTRICT c = tt.c;
  const float* HWY_RESTRICT s = tt.s;
  const TIn* in = static_cast<const TIn*>(in_v);
  TOut* out = static_cast<TOut*>(out_v);
  if constexpr (L == PairLayout::kInterleavedToHalf) {
    if (g.in_place) {
      // De-interleaving in place writes y(i) over x(i) before pair i's odd partner is read:
      // rotate from a copy of the row's rotated part.
      HWY_ALIGN TIn row[2 * kMaxPairsPadded];
      for (std::int64_t h = 0; h < lp.heads; ++h, in += lp.in_sh, out += lp.out_sh) {
        std::memcpy(row, in, lp.rot * sizeof(TIn));
        RotatePairsFrom<L>(row, out, c, s, 0, lp.pairs);
      }
      return;
    }
  }
  for (std::int64_t h = 0; h < lp.heads; ++h, in += lp.in_sh, out += lp.out_sh) {
    for (std::size_t i = 0; i < full; i += N) RotateStep<L>(df, in, out, c, s, i, lp.pairs);
    if (HWY_UNLIKELY(full != lp.pairs)) {
      RotateTail<HWY_LANES(float) / 2, L>(in, out, c, s, full, lp.pairs);
    }
    if (HWY_UNLIKELY(lp.pass)) PassThrough(in + lp.rot, out + lp.rot, lp.rest);
  }
}

// ---- bf16 -> bf16, half-split rows --------------------------------------------------------------
// 2N pairs per step: one u32 load holds pairs (2j, 2j+1) of the half; bf16 -> f32 is a shift
// (even) or an AND (odd), and the two rounded results recombine into one u32 store, so no lane
// permutation is needed anywhere (cos/sin come in the matching even/odd order, tt.c_eo).
template <class DF>
HWY_INLINE void RotateBF16HalfBlock(DF df, const BF16* in, BF16* out,
                                    const float* c_eo, const float* s_eo, std::size_t i,
                                    std::size_t pairs) {
  const hn::RebindToUnsigned<DF> du;
  const std::size_t N = hn::Lanes(df);
  const auto hi = hn::Set(du, 0xFFFF0000u);
  const auto wa = hn::LoadU(du, reinterpret_cast<const std::uint32_t*>(in + i));
  const auto wb = hn::LoadU(du, reinterpret_cast<const std::uint32_t*>(in + pairs + i));
  const auto ae = hn::BitCast(df, hn::ShiftLeft<16>(wa));
  const auto ao = hn::BitCast(df, hn::And(wa, hi));
  const auto be = hn::BitCast(df, hn::ShiftLeft<16>(wb));
  const auto bo = hn::BitCast(df, hn::And(wb, hi));
  const auto ce = hn::LoadU(df, c_eo + i), co = hn::LoadU(df, c_eo + i + N);
  const auto se = hn::LoadU(df, s_eo + i), so = hn::LoadU(df, s_eo + i + N);
  const auto yae = hn::MulSub(ae, ce, hn::Mul(be, se));
  const auto yao = hn::MulSub(ao, co, hn::Mul(bo, so));
  const auto ybe = hn::MulAdd(be, ce, hn::Mul(ae, se));
  const auto ybo = hn::MulAdd(bo, co, hn::Mul(ao, so));
  const auto ra = hn::Or(hn::ShiftRight<16>(BF16RneHigh(df, yae)), hn::And(BF16RneHigh(df, yao), hi));
  const auto rb = hn::Or(hn::ShiftRight<16>(BF16RneHigh(df, ybe)), hn::And(BF16RneHigh(df, ybo), hi));
  hn::StoreU(ra, du, reinterpret_cast<std::uint32_t*>(out + i));
  hn::StoreU(rb, du, reinterpret_cast<std::uint32_t*>(out + pairs + i));
}

template <typename T = BF16>  // a template so that every dtype TU may instantiate it (ODR)
HWY_NOINLINE void RotateRowsBF16Half(const void* in_v, void* out_v, const TokenTrig& tt,
                                     const RowGeom& g) {
  const hn::ScalableTag<float> df;
  const std::size_t N2 = 2 * hn::Lanes(df);
  const RowLoop lp(g);
  const std::size_t full = lp.pairs - lp.pairs % N2;
  const BF16* in = static_cast<const BF16*>(in_v);
  BF16* out = static_cast<BF16*>(out_v);
  for (std::int64_t h = 0; h < lp.heads; ++h, in += lp.in_sh, out += lp.out_sh) {
    for (std::size_t i = 0; i < full; i += N2) RotateBF16HalfBlock(df, in, out, tt.c_eo, tt.s_eo, i, lp.pairs);
    if (HWY_UNLIKELY(full != lp.pairs)) {
      RotatePairsFrom<PairLayout::kHalf>(in, out, tt.c, tt.s, full, lp.pairs);
    }
    if (HWY_UNLIKELY(lp.pass)) PassThrough(in + lp.rot, out + lp.rot, lp.rest);
  }
}

// ---- interleaved rows without de-interleaving (x86 targets: needs a pair swap) -----------------
#if HWY_TARGET != HWY_SCALAR
// N elements = N/2 pairs per step: y = x·C + swap(x)·S, C = [c c], S = [-s s] per pair.
template <typename T>
HWY_NOINLINE void RotateRowsInterleavedSwap(const void* in_v, void* out_v, const TokenTrig& tt,
                                            const RowGeom& g) {
  const hn::ScalableTag<float> df;
  const std::size_t N = hn::Lanes(df);
  const RowLoop lp(g);
  const std::size_t full = lp.rot - lp.rot % (2 * N);  // elements, two vectors per step
  const float* HWY_RESTRICT cd = tt.c_dup;
  const float* HWY_RESTRICT sd = tt.s_dup;
  const T* in = static_cast<const T*>(in_v);
  T* out = static_cast<T*>(out_v);
  for (std::int64_t h = 0; h < lp.heads; ++h, in += lp.in_sh, out += lp.out_sh) {
    for (std::size_t e = 0; e < full; e += 2 * N) {
      const auto x0 = LoadRow(df, in + e);
      const auto x1 = LoadRow(df, in + e + N);
      const auto y0 = hn::MulAdd(x0, hn::LoadU(df, cd + e), hn::Mul(hn::Shuffle2301(x0), hn::LoadU(df, sd + e)));
      const auto y1 = hn::MulAdd(x1, hn::LoadU(df, cd + e + N),
                                 hn::Mul(hn::Shuffle2301(x1), hn::LoadU(df, sd + e + N)));
      StoreRow(df, y0, out + e);
      StoreRow(df, y1, out + e + N);
    }
    if (HWY_UNLIKELY(full != lp.rot)) {
      RotatePairsFrom<PairLayout::kInterleaved>(in, out, tt.c, tt.s, full / 2, lp.pairs);
    }
    if (HWY_UNLIKELY(lp.pass)) PassThrough(in + lp.rot, out + lp.rot, lp.rest);
  }
}
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
#ifndef ROPEKIT_AVX512BF16_ATTR
#define ROPEKIT_AVX512BF16_ATTR __attribute__((target(HWY_TARGET_STR ",avx512bf16")))
#endif
#define ROPEKIT_HAVE_AVX512BF16_KERNELS 1

// 32 bf16 words, RNE: words 0-15 from lo, 16-31 from hi.
ROPEKIT_AVX512BF16_ATTR HWY_INLINE __m512i CvtBF16x32(hn::Vec512<float> lo, hn::Vec512<float> hi) {
  return __builtin_bit_cast(__m512i, _mm512_cvtne2ps_pbh(hi.raw, lo.raw));
}

// The ±0 words of r (the only ones that can be flushed subnormals).
ROPEKIT_AVX512BF16_ATTR HWY_INLINE __mmask32 ZeroWords(__m512i r) {
  return _mm512_testn_epi16_mask(r, _mm512_set1_epi16(0x7FFF));
}

// Exact test of one block converted from lo and hi: false if a lane was flushed.
ROPEKIT_AVX512BF16_ATTR HWY_INLINE bool NoFlushedLane(__m512i r, hn::Vec512<float> lo, hn::Vec512<float> hi) {
  if (HWY_LIKELY(ZeroWords(r) == 0)) return true;
  return (_mm512_fpclass_ps_mask(lo.raw, 0x20) | _mm512_fpclass_ps_mask(hi.raw, 0x20)) == 0;
}

using VF16 = hn::Vec512<float>;

// One half-split block of 32 pairs starting at pair i (row of `pairs` pairs), rotated in f32 by
// (c0, c1), (s0, s1): ya = first-half results, yb = second-half results.
ROPEKIT_AVX512BF16_ATTR HWY_INLINE void RotateHalfBlock(const BF16* in, std::size_t pairs, std::size_t i, VF16 c0,
                                                        VF16 c1, VF16 s0, VF16 s1, VF16& ya0, VF16& ya1, VF16& yb0,
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
ROPEKIT_AVX512BF16_ATTR HWY_INLINE void RotateInterleavedBlock(const BF16* in, VF16 cv, VF16 sv, VF16& y0, VF16& y1) {
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
ROPEKIT_AVX512BF16_ATTR HWY_INLINE void RotateHalfBlockEvenOdd(const BF16* in, std::size_t pairs, std::size_t i,
                                                               VF16 ce, VF16 co, VF16 se, VF16 so, VF16& ya_e,
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

// The word permutation that puts CvtBF16x32(y0, y1) of an interleaved block back in pair order:
// word j of the result is pair j/2's first (j even) or second (j odd) result; in the converted
// vector the first results are words 0-15 and the second ones words 16-31.
ROPEKIT_AVX512BF16_ATTR HWY_INLINE __m512i PairOrderWords() {
  return _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4,
                          19, 3, 18, 2, 17, 1, 16, 0);
}

// The rotated pairs [0, full) of one half-split row, full a multiple of 32. kExact: each block
// is tested and falls back on its own (returns 0); otherwise: no test, returns the OR of the ±0
// lane masks (non-zero: the caller must redo the row exactly).
template <bool kExact>
ROPEKIT_AVX512BF16_ATTR HWY_INLINE __mmask32 BF16HalfNativeRow(const BF16* in, BF16* out, const float* HWY_RESTRICT c,
                                                               const float* HWY_RESTRICT s, std::size_t pairs,
                                                               std::size_t full) {
  const hn::ScalableTag<float> df;  // 16 lanes
  __mmask32 zero = 0;
  for (std::size_t i = 0; i < full; i += 32) {
    VF16 ya0, ya1, yb0, yb1;
    RotateHalfBlock(in, pairs, i, hn::LoadU(df, c + i), hn::LoadU(df, c + i + 16), hn::LoadU(df, s + i),
                    hn::LoadU(df, s + i + 16), ya0, ya1, yb0, yb1);
    const __m512i ra = CvtBF16x32(ya0, ya1);
    const __m512i rb = CvtBF16x32(yb0, yb1);
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
    _mm512_storeu_si512(out + i, ra);
    _mm512_storeu_si512(out + pairs + i, rb);
  }
  return zero;
}

// Interleaved rows, 16 pairs per block (RotateInterleavedBlock); on the way out the two results
// are converted by one vcvtne2ps2bf16 and re-interleaved by one word permutation (PairOrderWords).
// Rotates pairs [0, full), full a multiple of 16; kExact and the return
// value as for BF16HalfNativeRow. (The loop counts elements: counting pairs compiled to a loop
// measured ~0.15x of the copy slower at decode sizes.)
template <bool kExact>
ROPEKIT_AVX512BF16_ATTR HWY_INLINE __mmask32 BF16InterleavedNativeRow(const BF16* in, BF16* out,
                                                                      const float* HWY_RESTRICT c,
                                                                      const float* HWY_RESTRICT s,
                                                                      std::size_t full) {  // pairs
  const hn::ScalableTag<float> df;  // 16 lanes
  const __m512i interleave = PairOrderWords();
  __mmask32 zero = 0;
  for (std::size_t e = 0; e < 2 * full; e += 32) {  // elements
    VF16 y0, y1;
    RotateInterleavedBlock(in + e, hn::LoadU(df, c + e / 2), hn::LoadU(df, s + e / 2), y0, y1);
    const __m512i r = CvtBF16x32(y0, y1);
    if constexpr (kExact) {
      if (HWY_UNLIKELY(!NoFlushedLane(r, y0, y1))) {
        StorePairs(df, y0, y1, out + e);
        continue;
      }
    } else {
      zero |= ZeroWords(r);
    }
    _mm512_storeu_si512(out + e, _mm512_permutexvar_epi16(interleave, r));
  }
  return zero;
}

// Whole blocks of one row in layout L (half-split: 32 pairs per block, interleaved: 16).
template <PairLayout L, bool kExact>
ROPEKIT_AVX512BF16_ATTR HWY_INLINE __mmask32 BF16NativeBlocks(const BF16* in, BF16* out, const float* HWY_RESTRICT c,
                                                              const float* HWY_RESTRICT s, std::size_t pairs,
                                                              std::size_t full) {
  if constexpr (L == PairLayout::kHalf) return BF16HalfNativeRow<kExact>(in, out, c, s, pairs, full);
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
// below in docs/benchmarks.md.
template <PairLayout L, std::size_t kPairs>
ROPEKIT_AVX512BF16_ATTR HWY_NOINLINE void RotateTokenBF16Native(const void* in_v, void* out_v, const TokenTrig& tt,
                                                                const RowGeom& g) {
  static_assert(kPairs % 32 == 0 && kPairs <= 128, "whole 32-pair blocks, cos/sin kept in registers");
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
      const VF16 c_even = hn::ConcatEven(df, cv[k + 1], cv[k]), c_odd = hn::ConcatOdd(df, cv[k + 1], cv[k]);
      const VF16 s_even = hn::ConcatEven(df, sv[k + 1], sv[k]), s_odd = hn::ConcatOdd(df, sv[k + 1], sv[k]);
      cv[k] = c_even;
      cv[k + 1] = c_odd;
      sv[k] = s_even;
      sv[k + 1] = s_odd;
    }
  }
  const __m512i magnitude = _mm512_set1_epi16(0x7FFF);
  const __m512i interleave = PairOrderWords();
  __mmask32 nonzero_a = ~__mmask32{0}, nonzero_b = ~__mmask32{0};
  const BF16* in = static_cast<const BF16*>(in_v);
  BF16* out = static_cast<BF16*>(out_v);
  for (std::int64_t h = 0; h < lp.heads; ++h, in += lp.in_sh, out += lp.out_sh) {
    if constexpr (L == PairLayout::kHalf) {
      for (std::size_t k = 0; k < kVecs; k += 2) {  // unrolled: kVecs is a constant
        const std::size_t i = 16 * k;
        VF16 ya_e, ya_o, yb_e, yb_o;
        RotateHalfBlockEvenOdd(in, kPairs, i, cv[k], cv[k + 1], sv[k], sv[k + 1], ya_e, ya_o, yb_e, yb_o);
        const __m512i ra = CvtBF16x32(ya_e, ya_o);
        const __m512i rb = CvtBF16x32(yb_e, yb_o);
        nonzero_a = _mm512_mask_test_epi16_mask(nonzero_a, ra, magnitude);
        nonzero_b = _mm512_mask_test_epi16_mask(nonzero_b, rb, magnitude);
        _mm512_storeu_si512(out + i, _mm512_permutexvar_epi16(interleave, ra));
        _mm512_storeu_si512(out + kPairs + i, _mm512_permutexvar_epi16(interleave, rb));
      }
    } else {
      for (std::size_t k = 0; k < kVecs; ++k) {  // 16 pairs = 32 elements per block
        VF16 y0, y1;
        RotateInterleavedBlock(in + 32 * k, cv[k], sv[k], y0, y1);
        const __m512i r = CvtBF16x32(y0, y1);
        if (k % 2 == 0) {
          nonzero_a = _mm512_mask_test_epi16_mask(nonzero_a, r, magnitude);
        } else {
          nonzero_b = _mm512_mask_test_epi16_mask(nonzero_b, r, magnitude);
        }
        _mm512_storeu_si512(out + 32 * k, _mm512_permutexvar_epi16(interleave, r));
      }
    }
    if (HWY_UNLIKELY(lp.pass)) PassThrough(in + lp.rot, out + lp.rot, lp.rest);
  }
  if (HWY_UNLIKELY((nonzero_a & nonzero_b) != ~__mmask32{0})) {
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
ROPEKIT_AVX512BF16_ATTR HWY_NOINLINE void RotateRowsBF16Native(const void* in_v, void* out_v, const TokenTrig& tt,
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

// The whole-token kernel for rows of `pairs` pairs, or nullptr. Out of place only: in place,
// the per-block test of RotateRowsBF16Native is needed (a token-level redo has no input left).
HWY_INLINE RowsFn SelectTokenBF16Native(PairLayout layout, int pairs, bool in_place) {
  if (in_place || (layout != PairLayout::kHalf && layout != PairLayout::kInterleaved)) return nullptr;
  const bool half = layout == PairLayout::kHalf;
  switch (pairs) {
    case 32: return half ? &RotateTokenBF16Native<PairLayout::kHalf, 32> : &RotateTokenBF16Native<PairLayout::kInterleaved, 32>;
    case 64: return half ? &RotateTokenBF16Native<PairLayout::kHalf, 64> : &RotateTokenBF16Native<PairLayout::kInterleaved, 64>;
    case 128: return half ? &RotateTokenBF16Native<PairLayout::kHalf, 128> : &RotateTokenBF16Native<PairLayout::kInterleaved, 128>;
    default: return nullptr;
  }
}
#else
#define ROPEKIT_HAVE_AVX512BF16_KERNELS 0
#endif

// ---- F16C f16 -> f16, half-split rows of a fixed width, a whole token at a time ----------------
// The bf16 whole-token structure without the ±0 check: cos/sin loaded into registers once per
// token, every row unrolled. The conversions (vcvtph2ps / vcvtps2ph) bound f16 decode on AVX3
// CPUs (docs/benchmarks.md); what this removes is the per-row cos/sin reloads and loop
// bookkeeping. In place is fine: each block reads both halves before writing them. kPairs is
// limited so that cos/sin use at most 16 vector registers (AVX3: up to 128 pairs; AVX2: 32).
#if ROPEKIT_HWY_NATIVE_F16
// cos + sin vectors kept live: half the vector registers (AVX3: 32 zmm, AVX2: 16 ymm).
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
inline constexpr std::size_t kMaxTrigVecs = 8;
#else
inline constexpr std::size_t kMaxTrigVecs = 4;
#endif
template <std::size_t kPairs>
HWY_NOINLINE void RotateTokenF16Half(const void* in_v, void* out_v, const TokenTrig& tt, const RowGeom& g) {
  const hn::ScalableTag<float> df;
  constexpr std::size_t kLanes = HWY_LANES(float);
  constexpr std::size_t kVecs = kPairs / kLanes;
  static_assert(kPairs % kLanes == 0 && kVecs <= kMaxTrigVecs, "cos/sin must fit in registers");
  const RowLoop lp(g);
  hn::Vec<decltype(df)> cv[kVecs], sv[kVecs];
  for (std::size_t k = 0; k < kVecs; ++k) {
    cv[k] = hn::LoadU(df, tt.c + kLanes * k);
    sv[k] = hn::LoadU(df, tt.s + kLanes * k);
  }
  const F16* in = static_cast<const F16*>(in_v);
  F16* out = static_cast<F16*>(out_v);
  for (std::int64_t h = 0; h < lp.heads; ++h, in += lp.in_sh, out += lp.out_sh) {
    for (std::size_t k = 0; k < kVecs; ++k) {  // unrolled: kVecs is a constant
      const std::size_t i = kLanes * k;
      const auto a = LoadRow(df, in + i);
      const auto b = LoadRow(df, in + kPairs + i);
      StoreRow(df, hn::MulSub(a, cv[k], hn::Mul(b, sv[k])), out + i);
      StoreRow(df, hn::MulAdd(b, cv[k], hn::Mul(a, sv[k])), out + kPairs + i);
    }
    if (HWY_UNLIKELY(lp.pass)) PassThrough(in + lp.rot, out + lp.rot, lp.rest);
  }
}

// The kernel for rows of kPairs pairs if its cos/sin fit in registers on this target, else null.
template <std::size_t kPairs>
HWY_INLINE RowsFn TokenF16HalfIfFits() {
  constexpr std::size_t kLanes = HWY_LANES(float);
  if constexpr (kPairs % kLanes == 0 && kPairs / kLanes <= kMaxTrigVecs) return &RotateTokenF16Half<kPairs>;
  return nullptr;
}

HWY_INLINE RowsFn SelectTokenF16Half(int pairs) {
  switch (pairs) {
    case 32: return TokenF16HalfIfFits<32>();
    case 64: return TokenF16HalfIfFits<64>();
    case 128: return TokenF16HalfIfFits<128>();
    default: return nullptr;
  }
}
#endif

// ---- any strides ------------------------------------------------------------------------------
template <PairLayout L, typename TIn, typename TOut>
HWY_NOINLINE void RotateRowsStrided(const void* in_v, void* out_v, const TokenTrig& tt,
                                    const RowGeom& g) {
  const TIn* in = static_cast<const TIn*>(in_v);
  TOut* out = static_cast<TOut*>(out_v);
  const float* c = tt.c;
  const float* s = tt.s;
  // In place, kInterleavedToHalf writes over inputs not read yet: read the row first.
  const bool stage = L == PairLayout::kInterleavedToHalf && g.in_place;
  HWY_ALIGN float row[2 * kMaxPairsPadded];
  for (std::int64_t h = 0; h < g.heads; ++h, in += g.in_sh, out += g.out_sh) {
    if (stage) {
      for (int d = 0; d < g.rotary_dim; ++d) row[d] = LoadScalar(in + d * g.in_sd);
    }
    for (int i = 0; i < g.pairs; ++i) {
      int ia = 0, ib = 0, oa = 0, ob = 0;
      detail::pair_features(L, g.pairs, i, ia, ib, oa, ob);
      const float a = stage ? row[ia] : LoadScalar(in + ia * g.in_sd);
      const float b = stage ? row[ib] : LoadScalar(in + ib * g.in_sd);
      const float ya = a * c[i] - b * s[i];
      const float yb = b * c[i] + a * s[i];
      StoreScalar(ya, out + oa * g.out_sd);
      StoreScalar(yb, out + ob * g.out_sd);
    }
    if (!g.in_place) {
      for (int d = g.rotary_dim; d < g.head_dim; ++d) {
        if constexpr (std::is_same_v<TIn, TOut>) {
          out[d * g.out_sd] = in[d * g.in_sd];  // bit copy
        } else {
          StoreScalar(LoadScalar(in + d * g.in_sd), out + d * g.out_sd);
        }
      }
    }
  }
}

struct RowsChoice {
  RowsFn fn = nullptr;
  unsigned needs = 0;  // TrigNeeds
  // The kernel reads tt.c / tt.s once per token (into registers), so they may point straight
  // into a CosSinCache row, unaligned, instead of an aligned copy.
  bool trig_once = false;
};

template <typename TIn, typename TOut>
HWY_INLINE RowsChoice SelectRowsOut(PairLayout layout, bool contiguous, int pairs, bool in_place) {
  (void)pairs;  // used by the AVX512_BF16 kernels only
  (void)in_place;
  if (!contiguous) {
    switch (layout) {
      case PairLayout::kHalf: return {&RotateRowsStrided<PairLayout::kHalf, TIn, TOut>, 0};
      case PairLayout::kInterleaved: return {&RotateRowsStrided<PairLayout::kInterleaved, TIn, TOut>, 0};
      case PairLayout::kInterleavedToHalf:
        return {&RotateRowsStrided<PairLayout::kInterleavedToHalf, TIn, TOut>, 0};
    }
  }
  if constexpr (std::is_same_v<TIn, BF16> && std::is_same_v<TOut, BF16>) {
#if ROPEKIT_HAVE_AVX512BF16_KERNELS
    if (detail::avx512_bf16_enabled()) {
      if (RowsFn fn = SelectTokenBF16Native(layout, pairs, in_place)) return {fn, 0, true};
      if (layout == PairLayout::kHalf) return {&RotateRowsBF16Native<PairLayout::kHalf>, 0};
      if (layout == PairLayout::kInterleaved) return {&RotateRowsBF16Native<PairLayout::kInterleaved>, 0};
    }
#endif
    if (layout == PairLayout::kHalf) return {&RotateRowsBF16Half<BF16>, kNeedEvenOdd};
  }
#if ROPEKIT_HWY_NATIVE_F16
  if constexpr (std::is_same_v<TIn, F16> && std::is_same_v<TOut, F16>) {
    if (layout == PairLayout::kHalf) {
      if (RowsFn fn = SelectTokenF16Half(pairs)) return {fn, 0, true};
    }
  }
#endif
#if HWY_TARGET != HWY_SCALAR
  // F16C f16: the swap kernel beats de-interleaving (decode 2.1x against 3.3x the copy). f32 does
  // not: de-interleaving loads measured 0.91-1.01x at the 8-head long shape against 1.13-1.22x
  // for the swap (whose per-token dup tables and doubled cos/sin loads cost), and 1.25-1.35x
  // against 1.30-1.45x at decode. bf16 pairs split with a shift/AND already (LoadPairs).
  if constexpr (std::is_same_v<TIn, TOut> && std::is_same_v<TIn, F16> && ROPEKIT_HWY_NATIVE_F16) {
    if (layout == PairLayout::kInterleaved) return {&RotateRowsInterleavedSwap<TIn>, kNeedDup};
  }
#endif
  switch (layout) {
    case PairLayout::kHalf: return {&RotateRowsContig<PairLayout::kHalf, TIn, TOut>, 0};
    case PairLayout::kInterleaved: return {&RotateRowsContig<PairLayout::kInterleaved, TIn, TOut>, 0};
    case PairLayout::kInterleavedToHalf:
      return {&RotateRowsContig<PairLayout::kInterleavedToHalf, TIn, TOut>, 0};
  }
  return {};
}

template <typename TIn>
HWY_INLINE RowsChoice SelectRows(DType out, PairLayout layout, bool contiguous, int pairs, bool in_place) {
  switch (out) {
    case DType::kF32: return SelectRowsOut<TIn, float>(layout, contiguous, pairs, in_place);
    case DType::kF16: return SelectRowsOut<TIn, F16>(layout, contiguous, pairs, in_place);
    case DType::kBF16: return SelectRowsOut<TIn, BF16>(layout, contiguous, pairs, in_place);
  }
  return {};
}

// Builds the arrangements of tt.c / tt.s that `needs` asks for into the given buffers.
HWY_INLINE void PrepareTrig(unsigned needs, int pairs_i, TokenTrig& tt, float* c_eo, float* s_eo,
                            float* c_dup, float* s_dup) {
  const hn::ScalableTag<float> df;
  const std::size_t N = hn::Lanes(df);
  const auto pairs = static_cast<std::size_t>(pairs_i);
  if (needs & kNeedEvenOdd) {
    for (std::size_t i = 0; i + 2 * N <= pairs; i += 2 * N) {
      hn::Vec<decltype(df)> e, o;
      hn::LoadInterleaved2(df, tt.c + i, e, o);
      hn::StoreU(e, df, c_eo + i);
      hn::StoreU(o, df, c_eo + i + N);
      hn::LoadInterleaved2(df, tt.s + i, e, o);
      hn::StoreU(e, df, s_eo + i);
      hn::StoreU(o, df, s_eo + i + N);
    }
    tt.c_eo = c_eo;
    tt.s_eo = s_eo;
  }
  if (needs & kNeedDup) {
    std::size_t i = 0;
    for (; i + N <= pairs; i += N) {
      const auto c = hn::LoadU(df, tt.c + i);
      const auto s = hn::LoadU(df, tt.s + i);
      hn::StoreInterleaved2(c, c, df, c_dup + 2 * i);
      hn::StoreInterleaved2(hn::Neg(s), s, df, s_dup + 2 * i);
    }
    for (; i < pairs; ++i) {
      c_dup[2 * i] = c_dup[2 * i + 1] = tt.c[i];
      s_dup[2 * i] = -tt.s[i];
      s_dup[2 * i + 1] = tt.s[i];
    }
    tt.c_dup = c_dup;
    tt.s_dup = s_dup;
  }
}

struct TensorWork {
  RowsFn fn = nullptr;
  const char* in = nullptr;  // bytes
  char* out = nullptr;
  std::int64_t in_st = 0, out_st = 0;  // token strides in bytes
  std::int64_t in_sb = 0, out_sb = 0;  // batch strides in bytes
  std::int64_t seq = 0;                // tokens per sequence (0: one sequence)
  RowGeom g;
};

template <typename TIn>
HWY_INLINE bool MakeWork(const detail::ApplyJob& job, const detail::JobTensor& t, TensorWork& w,
                         unsigned& needs, bool& trig_once) {
  if (t.heads <= 0 || t.in == nullptr) return false;
  const bool contiguous = t.in_stride_dim == 1 && t.out_stride_dim == 1;
  const RowsChoice choice = SelectRows<TIn>(t.out_type, job.layout, contiguous, job.pairs, t.in_place);
  w.fn = choice.fn;
  needs |= choice.needs;
  trig_once = trig_once && choice.trig_once;
  w.in = static_cast<const char*>(t.in);
  w.out = static_cast<char*>(t.out);
  w.in_st = t.in_stride_token * static_cast<std::int64_t>(dtype_size(t.in_type));
  w.out_st = t.out_stride_token * static_cast<std::int64_t>(dtype_size(t.out_type));
  w.in_sb = t.in_stride_batch * static_cast<std::int64_t>(dtype_size(t.in_type));
  w.out_sb = t.out_stride_batch * static_cast<std::int64_t>(dtype_size(t.out_type));
  w.seq = t.seq;
  w.g.pairs = job.pairs;
  w.g.rotary_dim = job.rotary_dim;
  w.g.head_dim = job.head_dim;
  w.g.in_sd = t.in_stride_dim;
  w.g.out_sd = t.out_stride_dim;
  w.g.in_sh = t.in_stride_head;
  w.g.out_sh = t.out_stride_head;
  w.g.heads = t.heads;
  w.g.in_place = t.in_place;
  return true;
}

using CosSinFn = void (*)(const AngleParams&, const TokenAngles&, float*, float*);

// Fills the per-pair constants of on-the-fly cos/sin (padded with zeros to `padded`: θ = 0
// there, computed but never read) and returns the row function that uses them: in hf mode the
// float inverse frequencies (the position scale goes into the float position), in exact mode
// the 64-bit turns of inv_freq (·scale as m + m_lo, exactly as the reference forms it).
// turns_q64 cannot refuse here: simd_kernel_for admits |inv_freq·scale| ≤ 4, under one turn
// per position.
template <int kOdr = 0>  // a template so that every dtype TU may instantiate it (ODR)
HWY_NOINLINE CosSinFn PrepareAngles(const detail::ApplyJob& job, int padded, float* inv_hi, std::uint64_t* turns) {
  const bool per_pair = job.pos_kind == Positions::Kind::kMRope;
  if (job.angles == AngleMode::kHf) {
    for (int i = 0; i < padded; ++i) inv_hi[i] = i < job.pairs ? job.inv_freq[i] : 0.0f;
    return per_pair ? &CosSinRowF32<true> : &CosSinRowF32<false>;
  }
  for (int i = 0; i < padded; ++i) {
    double m = 0.0, m_lo = 0.0;
    if (i < job.pairs) {
      if (job.has_position_scale) {
        detail::exact_multiplier(job.inv_freq[i], job.position_scale_exact, m, m_lo);
      } else {
        m = job.inv_freq[i];
      }
    }
    [[maybe_unused]] const bool in_range = detail::turns_q64(m, m_lo, turns[i]);
    HWY_DASSERT(in_range);
  }
  return per_pair ? &CosSinRowTurns<true> : &CosSinRowTurns<false>;
}

// The range kernel for input dtype TIn (q and k share it; see simd_dispatch.cc for mixed inputs).
template <typename TIn>
HWY_INLINE void RopeRange(const detail::ApplyJob& job, std::int64_t t_begin, std::int64_t t_end) {
  TensorWork work[2];
  int n_work = 0;
  unsigned needs = 0;
  bool trig_once = true;  // every row kernel of the job reads cos/sin once per token
  if (MakeWork<TIn>(job, job.q, work[n_work], needs, trig_once)) ++n_work;
  if (MakeWork<TIn>(job, job.k, work[n_work], needs, trig_once)) ++n_work;
  if (n_work == 0 || t_begin >= t_end) return;

  const int pairs = job.pairs;
  const bool hf = job.angles == AngleMode::kHf;
  const bool scaled = job.has_position_scale;
  const bool per_pair = job.pos_kind == Positions::Kind::kMRope;

  HWY_ALIGN float cos_buf[kMaxPairsPadded];
  HWY_ALIGN float sin_buf[kMaxPairsPadded];
  HWY_ALIGN float c_eo[kMaxPairsPadded];
  HWY_ALIGN float s_eo[kMaxPairsPadded];
  HWY_ALIGN float c_dup[2 * kMaxPairsPadded];
  HWY_ALIGN float s_dup[2 * kMaxPairsPadded];
  const int padded = (pairs + kPairPad - 1) / kPairPad * kPairPad;
  // On-the-fly constants, prepared at the first token that needs them (a call served from a
  // CosSinCache never does).
  HWY_ALIGN float inv_hi[kMaxPairsPadded];
  HWY_ALIGN std::uint64_t turns[kMaxPairsPadded];
  AngleParams ap;
  ap.inv_hi = inv_hi;
  ap.turns = turns;
  ap.pairs = pairs;
  ap.position_scale = job.position_scale;
  ap.amplitude = static_cast<float>(job.amplitude);
  ap.negate_sin = job.inverse;
  CosSinFn cos_sin = nullptr;

  // Per-pair positions for M-RoPE.
  HWY_ALIGN float pp_f[kMaxPairsPadded];         // hf mode
  HWY_ALIGN std::int64_t pp[kMaxPairsPadded];   // exact mode
  TokenAngles ta;
  if (per_pair) {
    for (int i = pairs; i < padded; ++i) pp_f[i] = 0, pp[i] = 0;
    ta.pp = pp;
    ta.pp_f = pp_f;
  }

  // A cache row is used when the position is inside it; the position scale is not in the
  // cache, so scaled jobs always compute.
  const CosSinCache* cache = scaled ? nullptr : job.cache;
  const std::int64_t cache_n = cache ? cache->size() : 0;

  std::int64_t seq_hint =
      job.pos_kind == Positions::Kind::kPerSequence ? detail::seq_for_token(job, t_begin) : 0;

  for (std::int64_t t = t_begin; t < t_end; ++t) {
    const float* c = cos_buf;
    const float* s = sin_buf;
    if (!per_pair) {
      const std::int64_t p = detail::token_position(job, t, 0, seq_hint);
      if (p >= 0 && p < cache_n) {
        const float* cr = cache->cos_row(p);
        const float* sr = cache->sin_row(p);
        if (trig_once && !job.inverse) {
          // The row kernels read cos/sin once per token: use the cache row where it is.
          c = cr;
          s = sr;
        } else {
          // Copied to the aligned buffers: cache rows are only 16-byte aligned, and every head
          // would otherwise load them with cache-line-splitting vector loads (measured: 10-30%
          // slower than on the fly at DRAM sizes; with the copy the table path is as fast).
          std::memcpy(cos_buf, cr, static_cast<std::size_t>(pairs) * sizeof(float));
          if (job.inverse) {
            for (int i = 0; i < pairs; ++i) sin_buf[i] = -sr[i];
          } else {
            std::memcpy(sin_buf, sr, static_cast<std::size_t>(pairs) * sizeof(float));
          }
        }
      } else {
        if (hf) {
          ta.p_f = HfPosition(p, scaled, job.position_scale);
        } else {
          ta.p = p;
        }
        if (cos_sin == nullptr) cos_sin = PrepareAngles<>(job, padded, inv_hi, turns);
        cos_sin(ap, ta, cos_buf, sin_buf);
      }
    } else {
      std::int64_t pos[3];
      for (int axis = 0; axis < 3; ++axis) pos[axis] = detail::token_position(job, t, axis, seq_hint);
      bool in_cache = cache_n > 0;
      for (int axis = 0; axis < 3; ++axis) in_cache = in_cache && pos[axis] >= 0 && pos[axis] < cache_n;
      if (in_cache) {
        const float* crow[3] = {cache->cos_row(pos[0]), cache->cos_row(pos[1]), cache->cos_row(pos[2])};
        const float* srow[3] = {cache->sin_row(pos[0]), cache->sin_row(pos[1]), cache->sin_row(pos[2])};
        for (int i = 0; i < pairs; ++i) {
          const int axis = job.pair_axis[i];
          cos_buf[i] = crow[axis][i];
          sin_buf[i] = job.inverse ? -srow[axis][i] : srow[axis][i];
        }
      } else {
        if (hf) {
          float pf[3];
          for (int axis = 0; axis < 3; ++axis) pf[axis] = HfPosition(pos[axis], scaled, job.position_scale);
          for (int i = 0; i < pairs; ++i) pp_f[i] = pf[job.pair_axis[i]];
        } else {
          for (int i = 0; i < pairs; ++i) pp[i] = pos[job.pair_axis[i]];
        }
        if (cos_sin == nullptr) cos_sin = PrepareAngles<>(job, padded, inv_hi, turns);
        cos_sin(ap, ta, cos_buf, sin_buf);
      }
    }
    TokenTrig tt;
    tt.c = c;
    tt.s = s;
    if (needs != 0) PrepareTrig(needs, pairs, tt, c_eo, s_eo, c_dup, s_dup);
    for (int w = 0; w < n_work; ++w) {
      const TensorWork& tw = work[w];
      tw.fn(tw.in + detail::token_offset(t, tw.seq, tw.in_st, tw.in_sb),
            tw.out + detail::token_offset(t, tw.seq, tw.out_st, tw.out_sb), tt, tw.g);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace simd
}  // namespace ropekit
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
