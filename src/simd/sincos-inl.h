// Vectorised cos/sin of RoPE angles, with the angle reduced exactly (in double precision, or in
// 64-bit fixed-point turns).
//
// Why not hn::Sin/hn::Cos on θ: they reduce in float and are documented for |x| < 39000
// (without FMA they are off by 3e-2 at 1e6); RoPE angles reach the position itself
// (inv_freq_0 = 1), i.e. up to 2^31. Here the angle arrives as an exact pair of doubles
// (a, b) with θ = a + b, is reduced to r ∈ [-π/4, π/4] and a quadrant in double, and only then
// goes to a polynomial:
//
//   k = round((a + b)·2/π)
//   r = (((a − k·C1) + b) − k·C2) − k·C3      C1, C2: 20-bit pieces of π/2 (k·C1, k·C2 exact for
//                                              |k| < 2^33), C3 = the double rest (Cody–Waite)
//   q = k mod 4
//
// The absolute error of r is below 2^-38 for |θ| < 2^33 (the only rounding steps act on values
// below 2^15), i.e. far below a float ulp of the result.
//
// Where (a, b) come from (exact products, no FMA needed, so every target gives the same r):
//   exact mode  (CosSinCache tables) θ = p·inv: p = p_hi + p_lo with p_hi = p & ~4095 (≤ 20
//               significant bits) and p_lo ∈ [0, 4096); inv has 24 bits, so a = p_hi·inv and
//               b = p_lo·inv are exact in double.
//   hf mode     θ_f = float32(float32(p)·inv) is one float: a = θ_f, b = 0.
//
// apply_rope on the fly in exact mode skips (a, b) and the Cody–Waite steps: the angle is an
// integer multiple of a 64-bit fraction of a turn, low64(p·T) (CosSinRowTurns below; T from
// kernel/angles.h turns_q64, with mlx-lm's position scale folded into T), whose top bits are the
// quadrant and whose rest is r. That is one integer multiplication per pair instead of ~10
// double operations, within 2^-34 turn of the exact angle at |p| = 2^31 (3.7e-10 rad).
//
// Two polynomial back ends:
//   CosSinRowF32 / CosSinRowTurns  (apply_rope on the fly: hf mode / exact mode): r rounded to
//                 float, Cephes sinf/cosf minimax polynomials (|r| ≤ π/4, ≤ 1 ulp). cos/sin abs
//                 error ≤ ~1.2e-7 (r's rounding 2.3e-8 + polynomial + result rounding;
//                 measured ≤ 6e-8 in exact mode up to |p| = 2^31 − 1: simd_test,
//                 OnTheFlyCosSinAtExtremePositions).
//   CosSinRowF64  (CosSinCache tables): fdlibm __kernel_sin/__kernel_cos polynomials in double,
//                 A·cos and A·sin in double, rounded once to float: the correctly rounded float
//                 of the double result except within ~1e-12 of a float tie.
//
// Sources of the coefficients: Cephes Math Library (S. L. Moshier) sinf.c/cosf.c, and fdlibm
// k_sin.c/k_cos.c (Sun Microsystems, "Permission to use, copy, modify, and distribute this
// software is freely granted, provided that this notice is preserved").

#if defined(ROPEKIT_SIMD_SINCOS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ROPEKIT_SIMD_SINCOS_INL_H_
#undef ROPEKIT_SIMD_SINCOS_INL_H_
#else
#define ROPEKIT_SIMD_SINCOS_INL_H_
#endif

#include <cstdint>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace ropekit {
namespace simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// π/2 = kPio2_1 + kPio2_2 + kPio2_3 (Cody–Waite); the first two have ≤ 20 significant bits.
constexpr double kPio2_1 = 0x1.921fap+0;
constexpr double kPio2_2 = 0x1.54442p-20;
constexpr double kPio2_3 = 0x1.a308d313198a3p-41;
constexpr double kTwoOverPi = 0.63661977236758134308;

// Reduces θ = a + b. Returns r (|r| ≲ π/4) and q = k mod 4 in {0, 1, 2, 3}.
template <class DD>
HWY_INLINE void ReduceQuarterPi(DD dd, hn::Vec<DD> a, hn::Vec<DD> b, hn::Vec<DD>& r,
                                hn::Vec<DD>& q) {
  const auto k = hn::Round(hn::Mul(hn::Add(a, b), hn::Set(dd, kTwoOverPi)));
  // k·C1 and k·C2 are exact, so fused or not these two steps give the same bits.
  auto t = hn::NegMulAdd(k, hn::Set(dd, kPio2_1), a);  // exact
  t = hn::Add(t, b);
  t = hn::NegMulAdd(k, hn::Set(dd, kPio2_2), t);
  r = hn::NegMulAdd(k, hn::Set(dd, kPio2_3), t);
  // k - 4·floor(k/4): exact for |k| < 2^52.
  q = hn::NegMulAdd(hn::Floor(hn::Mul(k, hn::Set(dd, 0.25))), hn::Set(dd, 4.0), k);
}

// sin and cos of r (|r| ≤ π/4) by the quadrant q: (s, c) -> per quadrant
//   q=0: ( s,  c)   q=1: ( c, -s)   q=2: (-s, -c)   q=3: (-c,  s)
template <class D>
HWY_INLINE void ApplyQuadrant(D d, hn::Vec<D> q, hn::Vec<D> s, hn::Vec<D> c, hn::Vec<D>& sin_out,
                              hn::Vec<D>& cos_out) {
  const auto m1 = hn::Eq(q, hn::Set(d, 1));
  const auto m2 = hn::Eq(q, hn::Set(d, 2));
  const auto m3 = hn::Eq(q, hn::Set(d, 3));
  const auto odd = hn::Or(m1, m3);
  const auto sv = hn::IfThenElse(odd, c, s);
  const auto cv = hn::IfThenElse(odd, s, c);
  sin_out = hn::IfThenElse(hn::Or(m2, m3), hn::Neg(sv), sv);
  cos_out = hn::IfThenElse(hn::Or(m1, m2), hn::Neg(cv), cv);
}

// Cephes sinf/cosf kernels on [-π/4, π/4].
template <class DF>
HWY_INLINE void SinCosPolyF32(DF df, hn::Vec<DF> r, hn::Vec<DF>& s, hn::Vec<DF>& c) {
  const auto z = hn::Mul(r, r);
  auto ps = hn::MulAdd(z, hn::Set(df, -1.9515295891e-4f), hn::Set(df, 8.3321608736e-3f));
  ps = hn::MulAdd(z, ps, hn::Set(df, -1.6666654611e-1f));
  s = hn::MulAdd(hn::Mul(r, z), ps, r);
  auto pc = hn::MulAdd(z, hn::Set(df, 2.443315711809948e-5f), hn::Set(df, -1.388731625493765e-3f));
  pc = hn::MulAdd(z, pc, hn::Set(df, 4.166664568298827e-2f));
  // 1 - z/2 + z²·P(z): the small terms first, 1 last (keeps the rounding at the end).
  const auto small = hn::MulAdd(hn::Mul(z, z), pc, hn::Mul(z, hn::Set(df, -0.5f)));
  c = hn::Add(small, hn::Set(df, 1.0f));
}

// fdlibm __kernel_sin / __kernel_cos (y = 0) on [-π/4, π/4], in double.
template <class DD>
HWY_INLINE void SinCosPolyF64(DD dd, hn::Vec<DD> r, hn::Vec<DD>& s, hn::Vec<DD>& c) {
  const auto z = hn::Mul(r, r);
  auto ps = hn::MulAdd(z, hn::Set(dd, 1.58969099521155010221e-10),
                       hn::Set(dd, -2.50507602534068634195e-08));
  ps = hn::MulAdd(z, ps, hn::Set(dd, 2.75573137070700676789e-06));
  ps = hn::MulAdd(z, ps, hn::Set(dd, -1.98412698298579493134e-04));
  ps = hn::MulAdd(z, ps, hn::Set(dd, 8.33333333332248946124e-03));
  ps = hn::MulAdd(z, ps, hn::Set(dd, -1.66666666666666324348e-01));
  s = hn::MulAdd(hn::Mul(r, z), ps, r);
  auto pc = hn::MulAdd(z, hn::Set(dd, -1.13596475577881948265e-11),
                       hn::Set(dd, 2.08757232129817482790e-09));
  pc = hn::MulAdd(z, pc, hn::Set(dd, -2.75573143513906633035e-07));
  pc = hn::MulAdd(z, pc, hn::Set(dd, 2.48015872894767294178e-05));
  pc = hn::MulAdd(z, pc, hn::Set(dd, -1.38888888888741095749e-03));
  pc = hn::MulAdd(z, pc, hn::Set(dd, 4.16666666666666019037e-02));
  // fdlibm: w = 1 - hz computed with its own rounding error recovered, for |cos - 1| accuracy.
  const auto hz = hn::Mul(z, hn::Set(dd, 0.5));
  const auto one = hn::Set(dd, 1.0);
  const auto w = hn::Sub(one, hz);
  const auto rest = hn::Sub(hn::Sub(one, w), hz);  // exact rounding error of 1 - hz
  c = hn::Add(w, hn::Add(rest, hn::Mul(hn::Mul(z, z), pc)));
}

// Per-call constants of the angle computation (see the file comment).
struct AngleParams {
  const float* inv_hi = nullptr;         // [padded pairs]: inv (hf mode, table fill)
  const std::uint64_t* turns = nullptr;  // [padded pairs]: turns_q64 (exact mode on the fly)
  int pairs = 0;
  float position_scale = 1.0f;  // hf mode: float32(scale·float32(p))
  float amplitude = 1.0f;
  bool negate_sin = false;  // inverse rotation: R(p)ᵀ = R(−θ)
};

// Per-token positions: either one position for all pairs, or one per pair (M-RoPE).
struct TokenAngles {
  // exact mode: the position (on the fly, turns), its exact split (table fill)
  std::int64_t p = 0;
  const std::int64_t* pp = nullptr;  // per pair (M-RoPE), padded
  double p_hi = 0, p_lo = 0;
  // hf mode
  float p_f = 0;
  const float* pp_f = nullptr;  // per pair (M-RoPE), padded
};

// Exact split of an integer position (|p| ≤ 2^31) for the exact mode.
HWY_INLINE void SplitPosition(std::int64_t p, double& hi, double& lo) {
  const std::int64_t h = p & ~std::int64_t{4095};  // floor to a multiple of 4096 (also p < 0)
  hi = static_cast<double>(h);
  lo = static_cast<double>(p - h);
}

// hf-mode position: float32(p), then float32(scale·that) when scaled.
HWY_INLINE float HfPosition(std::int64_t p, bool has_scale, float scale) {
  float pf = static_cast<float>(p);
  if (has_scale) pf = pf * scale;
  return pf;
}

// Computes θ = a + b for the pairs [i, i + Lanes(dd)) (per-pair positions: hf mode only).
template <bool kHf, bool kPerPair, class DD>
HWY_INLINE void AnglesAt(DD dd, const AngleParams& ap, const TokenAngles& ta, std::size_t i,
                         hn::Vec<DD>& a, hn::Vec<DD>& b) {
  const hn::Rebind<float, DD> dfh;
  if constexpr (kHf) {
    const auto pf = kPerPair ? hn::LoadU(dfh, ta.pp_f + i) : hn::Set(dfh, ta.p_f);
    const auto theta = hn::Mul(pf, hn::LoadU(dfh, ap.inv_hi + i));  // float32 product (RNE)
    a = hn::PromoteTo(dd, theta);
    b = hn::Zero(dd);
  } else {
    static_assert(!kPerPair, "exact mode per pair goes through turns");
    const auto inv = hn::PromoteTo(dd, hn::LoadU(dfh, ap.inv_hi + i));
    a = hn::Mul(hn::Set(dd, ta.p_hi), inv);
    b = hn::Mul(hn::Set(dd, ta.p_lo), inv);
  }
}

// r and q of the pairs [i, i + Lanes(dd)) as floats, hf mode.
template <bool kPerPair, class DD>
HWY_INLINE void ReducedAt(DD dd, const AngleParams& ap, const TokenAngles& ta, std::size_t i,
                          hn::Vec<hn::Rebind<float, DD>>& rf, hn::Vec<hn::Rebind<float, DD>>& qf) {
  const hn::Rebind<float, DD> dfh;
  hn::Vec<DD> a, b, r, q;
  AnglesAt<true, kPerPair>(dd, ap, ta, i, a, b);
  ReduceQuarterPi(dd, a, b, r, q);
  rf = hn::DemoteTo(dfh, r);
  qf = hn::DemoteTo(dfh, q);
}

// The last steps of every float row: the attention factor, the inverse's sign, the stores.
// (amplitude and negate_sin are passed by value so that loops can read AngleParams once: the
// compiler cannot keep its fields in registers across stores to float outputs.)
template <class DF>
HWY_INLINE void StoreCosSin(DF df, hn::Vec<DF> co, hn::Vec<DF> so, float amplitude, bool negate_sin,
                            float* HWY_RESTRICT cos_out, float* HWY_RESTRICT sin_out) {
  if (amplitude != 1.0f) {
    const auto amp = hn::Set(df, amplitude);
    co = hn::Mul(co, amp);
    so = hn::Mul(so, amp);
  }
  if (negate_sin) so = hn::Neg(so);
  hn::StoreU(co, df, cos_out);
  hn::StoreU(so, df, sin_out);
}

template <class DF>
HWY_INLINE void FinishCosSin(DF df, hn::Vec<DF> rf, hn::Vec<DF> qf, const AngleParams& ap,
                             float* HWY_RESTRICT cos_out, float* HWY_RESTRICT sin_out) {
  hn::Vec<DF> s, c, so, co;
  SinCosPolyF32(df, rf, s, c);
  ApplyQuadrant(df, qf, s, c, so, co);
  StoreCosSin(df, co, so, ap.amplitude, ap.negate_sin, cos_out, sin_out);
}

// cos/sin for one token in hf mode, all pairs, float polynomial. Writes round_up(pairs,
// 2·Lanes(dd)) values (buffers and inputs are padded to kPairPad).
template <bool kPerPair>
HWY_NOINLINE void CosSinRowF32(const AngleParams& ap, const TokenAngles& ta,
                               float* HWY_RESTRICT cos_out, float* HWY_RESTRICT sin_out) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> dfh;
  const std::size_t n = hn::Lanes(dd);
#if HWY_TARGET != HWY_SCALAR
  // The reduction needs double lanes (half as many per vector); the polynomials run on full
  // float vectors made of two reduced halves.
  const hn::Twice<decltype(dfh)> df;
  for (std::size_t i = 0; i < static_cast<std::size_t>(ap.pairs); i += 2 * n) {
    hn::Vec<decltype(dfh)> r0, q0, r1, q1;
    ReducedAt<kPerPair>(dd, ap, ta, i, r0, q0);
    ReducedAt<kPerPair>(dd, ap, ta, i + n, r1, q1);
    FinishCosSin(df, hn::Combine(df, r1, r0), hn::Combine(df, q1, q0), ap, cos_out + i,
                 sin_out + i);
  }
#else
  for (std::size_t i = 0; i < static_cast<std::size_t>(ap.pairs); i += n) {
    hn::Vec<decltype(dfh)> r0, q0;
    ReducedAt<kPerPair>(dd, ap, ta, i, r0, q0);
    FinishCosSin(dfh, r0, q0, ap, cos_out + i, sin_out + i);
  }
#endif
}

// ---- exact mode from 64-bit turns (kernel/angles.h, turns_q64)
// ------------------------------------ v = low64(p·T) is the angle in units of 2^-64 turn. The
// nearest quadrant is the top two bits of v + 2^61, and (int64)(v << 2) is the remainder times 4 in
// [−2^63, 2^63), i.e. r in [−π/4, π/4) after one multiplication by 2π/2^66. Integer steps are exact
// on every target; r goes through double (one rounding of a 64-bit integer, one multiplication) to
// float, so every target produces the same r and q.
constexpr double kTwoPiOver2Pow66 = 0x1.921fb54442d18p-64;

// low64(a·b) of u64 lanes (wrapping).
template <class DU>
HWY_INLINE hn::Vec<DU> MulLow64(DU du, hn::Vec<DU> a, hn::Vec<DU> b) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_SCALAR
  (void)du;
  return hn::Mul(a, b);  // vpmullq (AVX512DQ) / a plain multiply
#else
  // a_lo·b_lo + ((a_lo·b_hi + a_hi·b_lo) << 32) from three 32×32 → 64 products.
  const hn::Repartition<std::uint32_t, DU> d32;
  const auto a32 = hn::BitCast(d32, a);
  const auto b32 = hn::BitCast(d32, b);
  const auto lo = hn::MulEven(a32, b32);
  const auto cross = hn::Add(hn::MulEven(a32, hn::BitCast(d32, hn::ShiftRight<32>(b))),
                             hn::MulEven(hn::BitCast(d32, hn::ShiftRight<32>(a)), b32));
  return hn::Add(lo, hn::ShiftLeft<32>(cross));
#endif
}

// The angle of the pairs [i, i + Lanes(du)) in 2^-64 turns, plus 2^61 (rounding to the nearest
// quadrant): the quadrant is bits 63..62 of the result, and r comes from the angle itself.
template <bool kPerPair, class DU>
HWY_INLINE void TurnsAt(DU du, const AngleParams& ap, const TokenAngles& ta, std::size_t i,
                        hn::Vec<DU>& v, hn::Vec<DU>& quadrant_bits) {
  const hn::RebindToSigned<DU> di;
  const auto p = kPerPair ? hn::BitCast(du, hn::LoadU(di, ta.pp + i))
                          : hn::Set(du, static_cast<std::uint64_t>(ta.p));
  v = MulLow64(du, p, hn::LoadU(du, ap.turns + i));
  quadrant_bits = hn::Add(v, hn::Set(du, std::uint64_t{1} << 61));
}

// r = remainder · 2π/2^64 in [−π/4, π/4) as floats: (int64)(v << 2) = 4·remainder, through double.
template <class DD>
HWY_INLINE hn::Vec<hn::Rebind<float, DD>> RemainderToFloat(DD dd,
                                                           hn::Vec<hn::RebindToUnsigned<DD>> v) {
  const hn::Rebind<float, DD> dfh;
  const hn::RebindToSigned<DD> di;
  const auto w = hn::BitCast(di, hn::ShiftLeft<2>(v));
  return hn::DemoteTo(dfh, hn::Mul(hn::ConvertTo(dd, w), hn::Set(dd, kTwoPiOver2Pow66)));
}

// cos/sin for one token from turns (exact mode). Same padding contract as CosSinRowF32.
template <bool kPerPair>
HWY_NOINLINE void CosSinRowTurns(const AngleParams& ap, const TokenAngles& ta,
                                 float* HWY_RESTRICT cos_out, float* HWY_RESTRICT sin_out) {
  const hn::ScalableTag<double> dd;
  const hn::RebindToUnsigned<decltype(dd)> du;
  const hn::Rebind<float, decltype(dd)> dfh;
  const std::size_t n = hn::Lanes(dd);
#if HWY_TARGET != HWY_SCALAR
  // Two u64 vectors make one full float vector. The quadrant is applied with integer masks
  // taken from the high 32 bits of each angle (bit 31: sin < 0; bit 30: swap sin and cos;
  // their XOR: cos < 0), the same table as ApplyQuadrant without converting q to float.
  const hn::Twice<decltype(dfh)> df;
  const hn::RebindToUnsigned<decltype(df)> du32;
  const auto sign = hn::Set(du32, 0x80000000u);
  const auto odd = hn::Set(du32, 0x40000000u);
  const float amplitude = ap.amplitude;
  const bool negate_sin = ap.negate_sin;
  for (std::size_t i = 0; i < static_cast<std::size_t>(ap.pairs); i += 2 * n) {
    hn::Vec<decltype(du)> v0, u0, v1, u1;
    TurnsAt<kPerPair>(du, ap, ta, i, v0, u0);
    TurnsAt<kPerPair>(du, ap, ta, i + n, v1, u1);
    const auto r = hn::Combine(df, RemainderToFloat(dd, v1), RemainderToFloat(dd, v0));
    const auto hi = hn::ConcatOdd(du32, hn::BitCast(du32, u1), hn::BitCast(du32, u0));
    hn::Vec<decltype(df)> s, c;
    SinCosPolyF32(df, r, s, c);
    const auto swap = hn::RebindMask(df, hn::TestBit(hi, odd));
    const auto sin_sign = hn::BitCast(df, hn::And(hi, sign));
    const auto cos_sign = hn::BitCast(df, hn::And(hn::Xor(hi, hn::ShiftLeft<1>(hi)), sign));
    const auto so = hn::Xor(hn::IfThenElse(swap, c, s), sin_sign);
    const auto co = hn::Xor(hn::IfThenElse(swap, s, c), cos_sign);
    StoreCosSin(df, co, so, amplitude, negate_sin, cos_out + i, sin_out + i);
  }
#else
  for (std::size_t i = 0; i < static_cast<std::size_t>(ap.pairs); i += n) {
    hn::Vec<decltype(du)> v, u;
    TurnsAt<kPerPair>(du, ap, ta, i, v, u);
    const auto q = hn::DemoteTo(
        dfh,
        hn::ConvertTo(dd, hn::BitCast(hn::RebindToSigned<decltype(dd)>(), hn::ShiftRight<62>(u))));
    FinishCosSin(dfh, RemainderToFloat(dd, v), q, ap, cos_out + i, sin_out + i);
  }
#endif
}

// cos/sin for one position, all pairs, double polynomial (table rows). Same padding contract.
template <bool kHf, class DD>
HWY_INLINE void CosSinRowF64(DD dd, const AngleParams& ap, const TokenAngles& ta, double amplitude,
                             float* HWY_RESTRICT cos_out, float* HWY_RESTRICT sin_out) {
  const hn::Rebind<float, DD> dfh;
  const std::size_t n = hn::Lanes(dd);
  const auto amp = hn::Set(dd, amplitude);
  for (std::size_t i = 0; i < static_cast<std::size_t>(ap.pairs); i += n) {
    hn::Vec<DD> a, b, r, q, s, c, so, co;
    AnglesAt<kHf, false>(dd, ap, ta, i, a, b);
    ReduceQuarterPi(dd, a, b, r, q);
    SinCosPolyF64(dd, r, s, c);
    ApplyQuadrant(dd, q, s, c, so, co);
    hn::StoreU(hn::DemoteTo(dfh, hn::Mul(co, amp)), dfh, cos_out + i);
    hn::StoreU(hn::DemoteTo(dfh, hn::Mul(so, amp)), dfh, sin_out + i);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace simd
}  // namespace ropekit
HWY_AFTER_NAMESPACE();

#endif  // toggle guard
