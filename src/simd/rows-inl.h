// Portable row kernels (any Highway target): rotate every head of one token of one tensor with
// the token's cos/sin. Rows with stride_dim == 1 take a vector kernel (full vectors, then
// halving CappedTag tails: Highway 1.0.3 has no LoadN/StoreN, and MaskedLoad reads past the row
// on SSE4/SCALAR); other strides take a scalar path with the same f32 formulas. Math is f32;
// stores round once (RNE), bit-identical to dtype.h's conversions on every target.
//
//   forward  y_a = x_a·c − x_b·s,  y_b = x_b·c + x_a·s       (inverse: s → −s, once per token)
//
// Kernels: generic (any in/out dtype and layout, kInterleavedToHalf in place through a copy of
// the row); bf16 -> bf16 half-split with an even/odd lane split (no permutes); interleaved F16C
// f16 as x·C + swap(x)·S without de-interleaving; any strides. The x86-only kernels are in
// rows_x86-inl.h; rope-inl.h selects a kernel per tensor and drives the tokens.
#if defined(ROPEKIT_SIMD_ROWS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ROPEKIT_SIMD_ROWS_INL_H_
#undef ROPEKIT_SIMD_ROWS_INL_H_
#else
#define ROPEKIT_SIMD_ROWS_INL_H_
#endif

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "hwy/highway.h"
#include "simd/hwy_compat-inl.h"
#include "simd/prepared_work.h"
#include "simd/simd_api.h"

HWY_BEFORE_NAMESPACE();
namespace ropekit {
namespace simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

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

// The row kernel chosen for one tensor (rope-inl.h: SelectRows) and what it needs.
struct RowsChoice {
  RowsFn fn = nullptr;
  unsigned needs = 0;  // TrigNeeds
  // The kernel reads tt.c / tt.s once per token (into registers), so they may point straight
  // into a CosSinCache row, unaligned, instead of an aligned copy.
  bool trig_once = false;
  // The kernel stores non-temporally (KernelStreams): the range must end with a fence.
  bool streams = false;
};

// The row kernels with a non-temporal form (kStream): the one rule for which kernel streams.
// Only where every store is a whole 64-byte line (AVX-512 vectors) and streaming measured faster
// on the AVX-512 machine of docs/benchmarks.md (32768 tokens × 8 heads × 128, out of place, side
// by side with regular stores):
//   kTokenRegs       f32 rows, half-split or interleaved-to-half: 8-17% faster. Not f32 pairs
//                    (StoreInterleaved2 has no non-temporal form), not 16-bit rows (32-byte
//                    stores: the f16 kernels measured up to 22% slower on the fly).
//   kTokenRegsSwap   f32 interleaved pairs: as f32 rows.
//   kTokenBF16Native the AVX512_BF16 kernel (rows_x86-inl.h), half-split: 9-22% faster from a
//                    table and as fast on the fly (0.96-1.04×). Interleaved: 7-27% slower on
//                    the fly and no faster from a table when this VM's memory was fast, but
//                    15-40% faster from a table and on the fly when it ran at half that
//                    bandwidth, where regular stores tied the bench's plain loop (which
//                    writes with regular stores) and streaming read 0.70-0.77x its time.
enum class StreamingKernel { kTokenRegs, kTokenRegsSwap, kTokenBF16Native };
template <StreamingKernel K, PairLayout L, typename TOut>
constexpr bool KernelStreams() {
  if (HWY_LANES(float) * sizeof(float) != 64) return false;
  switch (K) {
    case StreamingKernel::kTokenRegs:
      return std::is_same_v<TOut, float> && L != PairLayout::kInterleaved;
    case StreamingKernel::kTokenRegsSwap:
      return std::is_same_v<TOut, float> && L == PairLayout::kInterleaved;
    case StreamingKernel::kTokenBF16Native:
      return std::is_same_v<TOut, BF16> &&
             (L == PairLayout::kHalf || L == PairLayout::kInterleaved);
  }
  return false;
}

// ---- contiguous rows, generic (any in/out dtype, any layout) -----------------------------------
template <PairLayout L, class DF, typename TIn, typename TOut>
HWY_INLINE void RotateStep(DF df, const TIn* in, TOut* out, const float* c, const float* s,
                           std::size_t i, std::size_t pairs) {
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
HWY_INLINE void RotateTail(const TIn* in, TOut* out, const float* c, const float* s, std::size_t i,
                           std::size_t pairs) {
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
HWY_INLINE void RotatePairsFrom(const TIn* in, TOut* out, const float* c, const float* s,
                                std::size_t i, std::size_t pairs) {
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

// ---- contiguous rows of a fixed width, a whole token at a time
// ----------------------------------- cos/sin loaded into registers once per token and every row
// unrolled: no per-row reloads of cos/sin and no loop bookkeeping, which is most of a decode step's
// cost and what lets a cache row be read in place (rope-inl.h: trig_once). Same formulas as
// RotateStep, so bit-identical to the generic kernel. In place is fine for kHalf and kInterleaved:
// each step reads both halves of its pairs before writing them. kPairs is limited so that cos/sin
// use at most half the vector registers (AVX3: 32 registers, up to 8 vectors each; other targets:
// 4).
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
inline constexpr std::size_t kMaxTrigVecs = 8;
#else
inline constexpr std::size_t kMaxTrigVecs = 4;
#endif
// kStream: non-temporal stores of the rotated rows (hwy_compat-inl.h: StoreVec), for outputs
// aligned to 64 bytes (rope-inl.h: ShapeMayStream, AlignedForStreams).
template <PairLayout L, typename TIn, typename TOut, std::size_t kPairs, bool kStream = false>
HWY_NOINLINE void RotateTokenRegs(const void* in_v, void* out_v, const TokenTrig& tt,
                                  const RowGeom& g) {
  static_assert(!kStream || KernelStreams<StreamingKernel::kTokenRegs, L, TOut>());
  const hn::ScalableTag<float> df;
  constexpr std::size_t kLanes = HWY_LANES(float);
  constexpr std::size_t kVecs = kPairs / kLanes;
  static_assert(kPairs % kLanes == 0 && kVecs <= kMaxTrigVecs, "cos/sin must fit in registers");
  const RowLoop lp(g);
  hn::Vec<decltype(df)> cv[kVecs], sv[kVecs];
  // Unrolled before GCC's scalar replacement of the arrays, so that they live in registers (not
  // unrolled, they were stored to the stack and loaded back at every call). Not in the swap and
  // AVX512_BF16 kernels: there, long out-of-place calls from a table read 1.15-1.23x their
  // on-the-fly twins with it against 1.00-1.08x without (f32 interleaved, 4 alternating rounds).
  HWY_UNROLL(8)
  for (std::size_t k = 0; k < kVecs; ++k) {
    cv[k] = hn::LoadU(df, tt.c + kLanes * k);
    sv[k] = hn::LoadU(df, tt.s + kLanes * k);
  }
  const TIn* in = static_cast<const TIn*>(in_v);
  TOut* out = static_cast<TOut*>(out_v);
  for (std::int64_t h = 0; h < lp.heads; ++h, in += lp.in_sh, out += lp.out_sh) {
    for (std::size_t k = 0; k < kVecs; ++k) {  // unrolled: kVecs is a constant
      const std::size_t i = kLanes * k;
      VF<decltype(df)> a, b;
      if constexpr (L == PairLayout::kHalf) {
        a = InRegister(LoadRow(df, in + i));
        b = InRegister(LoadRow(df, in + kPairs + i));
      } else {
        LoadPairs(df, in + 2 * i, a, b);
      }
      const auto ya = hn::MulSub(a, cv[k], hn::Mul(b, sv[k]));
      const auto yb = hn::MulAdd(b, cv[k], hn::Mul(a, sv[k]));
      if constexpr (L == PairLayout::kInterleaved) {
        StorePairs(df, ya, yb, out + 2 * i);
      } else if constexpr (kStream) {
        StoreVec<true>(ya, df, out + i);
        StoreVec<true>(yb, df, out + kPairs + i);
      } else {
        StoreRow(df, ya, out + i);
        StoreRow(df, yb, out + kPairs + i);
      }
    }
    if (HWY_UNLIKELY(lp.pass)) PassThrough(in + lp.rot, out + lp.rot, lp.rest);
  }
}

#if HWY_TARGET != HWY_SCALAR
// f32 interleaved rows without de-interleaving: with C = [c0 c0 c1 c1 ...] and
// S = [-s0 s0 -s1 s1 ...] built in registers once per token (one lane permutation each),
//   y = x·C + round(swap_pairs(x)·S)
// costs one in-lane swap per vector instead of the two-source permutations that split and
// re-interleave pairs (three per vector), which bound the de-interleaving kernel in L1. Lane by
// lane it is RotateStep's a·c − round(b·s) and b·c + round(a·s), so bit-identical to it.
template <std::size_t kPairs, bool kStream = false>
HWY_NOINLINE void RotateTokenRegsSwap(const void* in_v, void* out_v, const TokenTrig& tt,
                                      const RowGeom& g) {
  static_assert(!kStream ||
                KernelStreams<StreamingKernel::kTokenRegsSwap, PairLayout::kInterleaved, float>());
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  constexpr std::size_t kLanes = HWY_LANES(float);
  constexpr std::size_t kVecs = 2 * kPairs / kLanes;  // vectors per rotated row
  static_assert(kPairs % kLanes == 0 && kVecs <= kMaxTrigVecs, "C/S must fit in registers");
  const RowLoop lp(g);
  hn::Vec<decltype(df)> cd[kVecs], sd[kVecs];
  {
    // Lane i of the lower (upper) half-vector of pairs: pair i/2 (kLanes/2 + i/2).
    const auto lane = hn::Iota(di, 0);
    const auto lo = hn::IndicesFromVec(df, hn::ShiftRight<1>(lane));
    const auto hi = hn::IndicesFromVec(
        df, hn::Add(hn::ShiftRight<1>(lane), hn::Set(di, static_cast<std::int32_t>(kLanes / 2))));
    for (std::size_t j = 0; j < kVecs / 2; ++j) {
      const auto c = hn::LoadU(df, tt.c + kLanes * j);
      const auto s = hn::LoadU(df, tt.s + kLanes * j);
      cd[2 * j] = hn::TableLookupLanes(c, lo);
      cd[2 * j + 1] = hn::TableLookupLanes(c, hi);
      const auto s_lo = hn::TableLookupLanes(s, lo), s_hi = hn::TableLookupLanes(s, hi);
      sd[2 * j] = hn::OddEven(s_lo, hn::Neg(s_lo));
      sd[2 * j + 1] = hn::OddEven(s_hi, hn::Neg(s_hi));
    }
  }
  const float* in = static_cast<const float*>(in_v);
  float* out = static_cast<float*>(out_v);
  for (std::int64_t h = 0; h < lp.heads; ++h, in += lp.in_sh, out += lp.out_sh) {
    for (std::size_t k = 0; k < kVecs; ++k) {  // unrolled: kVecs is a constant
      const auto x = InRegister(hn::LoadU(df, in + kLanes * k));
      const auto y = hn::MulAdd(x, cd[k], hn::Mul(hn::Reverse2(df, x), sd[k]));
      StoreVec<kStream>(y, df, out + kLanes * k);
    }
    if (HWY_UNLIKELY(lp.pass)) PassThrough(in + lp.rot, out + lp.rot, lp.rest);
  }
}
#endif

// The whole-token kernel for rows of kPairs pairs if its cos/sin fit in registers on this
// target (else no fn); with stream, its non-temporal form where it has one (KernelStreams).
template <PairLayout L, typename TIn, typename TOut, std::size_t kPairs>
HWY_INLINE RowsChoice TokenRegsIfFits(bool stream) {
  constexpr std::size_t kLanes = HWY_LANES(float);
#if HWY_TARGET != HWY_SCALAR
  if constexpr (L == PairLayout::kInterleaved && std::is_same_v<TIn, float> &&
                std::is_same_v<TOut, float> && kPairs % kLanes == 0 &&
                2 * kPairs / kLanes <= kMaxTrigVecs) {
    if constexpr (KernelStreams<StreamingKernel::kTokenRegsSwap, L, TOut>()) {
      if (stream) return {&RotateTokenRegsSwap<kPairs, true>, 0, true, true};
    }
    return {&RotateTokenRegsSwap<kPairs>, 0, true};
  }
#endif
  if constexpr (kPairs % kLanes == 0 && kPairs / kLanes <= kMaxTrigVecs) {
    if constexpr (KernelStreams<StreamingKernel::kTokenRegs, L, TOut>()) {
      if (stream) return {&RotateTokenRegs<L, TIn, TOut, kPairs, true>, 0, true, true};
    }
    return {&RotateTokenRegs<L, TIn, TOut, kPairs>, 0, true};
  }
  return {};
}

// For contiguous rows: kInterleavedToHalf in place needs a copy of each row (RotateRowsContig).
template <PairLayout L, typename TIn, typename TOut>
HWY_INLINE RowsChoice SelectTokenRegs(int pairs, bool in_place, bool stream) {
  if (L == PairLayout::kInterleavedToHalf && in_place) return {};
  switch (pairs) {
    case 16:
      return TokenRegsIfFits<L, TIn, TOut, 16>(stream);
    case 32:
      return TokenRegsIfFits<L, TIn, TOut, 32>(stream);
    case 64:
      return TokenRegsIfFits<L, TIn, TOut, 64>(stream);
    case 128:
      return TokenRegsIfFits<L, TIn, TOut, 128>(stream);
    default:
      return {};
  }
}

// ---- bf16 -> bf16, half-split rows --------------------------------------------------------------
// 2N pairs per step: one u32 load holds pairs (2j, 2j+1) of the half; bf16 -> f32 is a shift
// (even) or an AND (odd), and the two rounded results recombine into one u32 store, so no lane
// permutation is needed anywhere (cos/sin come in the matching even/odd order, tt.c_eo).
template <class DF>
HWY_INLINE void RotateBF16HalfBlock(DF df, const BF16* in, BF16* out, const float* c_eo,
                                    const float* s_eo, std::size_t i, std::size_t pairs) {
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
  const auto ra =
      hn::Or(hn::ShiftRight<16>(BF16RneHigh(df, yae)), hn::And(BF16RneHigh(df, yao), hi));
  const auto rb =
      hn::Or(hn::ShiftRight<16>(BF16RneHigh(df, ybe)), hn::And(BF16RneHigh(df, ybo), hi));
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
    for (std::size_t i = 0; i < full; i += N2)
      RotateBF16HalfBlock(df, in, out, tt.c_eo, tt.s_eo, i, lp.pairs);
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
      const auto y0 = hn::MulAdd(x0, hn::LoadU(df, cd + e),
                                 hn::Mul(hn::Shuffle2301(x0), hn::LoadU(df, sd + e)));
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

}  // namespace HWY_NAMESPACE
}  // namespace simd
}  // namespace ropekit
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
