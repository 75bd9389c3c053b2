// Internal: the two angle conventions, shared by the reference and the cos/sin cache.
#pragma once

#include <cmath>
#include <cstdint>

namespace ropekit::detail {

// cos and sin of p·m with the product kept exact: p·m = hi + lo exactly (FMA), then the
// angle-addition formulas cos(hi + lo) = cos(hi)·cos(lo) − sin(hi)·sin(lo) (and likewise sin).
// libm reduces hi modulo 2π exactly; lo is tiny (|lo| <= ulp(hi)/2, up to ~1e-3 rad when
// |p·m| reaches 1e13), so its cos/sin are evaluated too rather than approximated.
//
// m_lo extends m when the multiplier is itself a rounded product (inv_freq · position scale):
// the angle is then p·(m + m_lo), with p·m_lo folded into the low part.
inline void exact_cos_sin(std::int64_t p, double m, double m_lo, double& c, double& s) {
  const double pd = static_cast<double>(p);  // exact: |p| < 2^53
  const double hi = pd * m;
  const double lo = std::fma(pd, m, -hi) + pd * m_lo;
  const double sh = std::sin(hi), ch = std::cos(hi);
  if (lo == 0.0) {
    c = ch;
    s = sh;
    return;
  }
  const double sl = std::sin(lo), cl = std::cos(lo);
  c = ch * cl - sh * sl;
  s = sh * cl + ch * sl;
}

inline void exact_cos_sin(std::int64_t p, double m, double& c, double& s) {
  exact_cos_sin(p, m, 0.0, c, s);
}

// inv · scale as an unevaluated sum m + m_lo, exact for a float inv and a double scale (FMA).
inline void exact_multiplier(float inv, double scale, double& m, double& m_lo) {
  m = static_cast<double>(inv) * scale;
  m_lo = std::fma(static_cast<double>(inv), scale, -m);
}

// ---- the exact angle as a 64-bit fraction of a turn (SIMD on-the-fly cos/sin) ----------------
// For an integer position p the angle p·m (m = m + m_lo, the multiplier of exact_cos_sin) is,
// in turns, p·(m/2π); only its fractional part matters. With T = frac(m/2π) rounded to 64
// fractional bits, the wrapping 64-bit product low64(p·T) (two's complement, any sign of p) is
// that fractional part times 2^64, off by at most |p|·2^-65 turns from rounding T: 2^-34 turn
// (3.7e-10 rad) at |p| = 2^31, far below the float32 resolution of cos/sin (6e-8). The kernel
// then needs one integer multiply per (token, frequency) instead of a double-precision
// Cody–Waite reduction, and the top two bits of the product are the quadrant.

// 1/(2π) as an unevaluated double-double hi + lo (relative error ~2^-107).
inline constexpr double kInvTwoPiHi = 0x1.45f306dc9c883p-3;
inline constexpr double kInvTwoPiLo = -0x1.6b01ec5417056p-57;
// |m|/(2π) must stay below this for turns_q64 (then |tail|·2^64 < 2^32 below); real inverse
// frequencies are at most a few turns per position.
inline constexpr double kMaxTurnsPerPosition = 1048576.0;  // 2^20

// T = frac((m + m_lo)/(2π))·2^64 rounded to nearest (mod 2^64). False when |m|/(2π) is out of
// range (the caller keeps the double reduction). Runs for every frequency of every apply call,
// inside the SIMD targets' code, where std::fma is one instruction (AVX2/AVX3). Every step is
// exact or rounds once whether or not the compiler contracts a·b + c into an FMA (GCC does by
// default in C++), which is why the exact product uses std::fma rather than Dekker's splitting.
inline bool turns_q64(double m, double m_lo, std::uint64_t& t) {
  constexpr double kTwo64 = 18446744073709551616.0;  // 2^64
  if (m < 0.0) {  // T(−m) = −T(m) mod 2^64; x − floor(x) is only exact for x ≥ 0
    const bool ok = turns_q64(-m, -m_lo, t);
    t = std::uint64_t{0} - t;
    return ok;
  }
  const double x = m * kInvTwoPiHi;
  if (!(x < kMaxTurnsPerPosition)) return false;
  const double e = std::fma(m, kInvTwoPiHi, -x);                   // x + e = m·C_hi exactly
  const double tail = e + (m * kInvTwoPiLo + m_lo * kInvTwoPiHi);  // |tail| ≲ ulp(x) ≤ 2^-32
  const double f = x - static_cast<double>(static_cast<std::int64_t>(x));  // exact, in [0, 1)
  // f·2^64 (exact) = an integer part below 2^64 plus a fraction, to which the tail (< 2^32 in
  // these units) is added before the single rounding.
  const double scaled = f * kTwo64;
  const std::uint64_t whole = static_cast<std::uint64_t>(scaled);  // trunc, exact in double
  const double rest = (scaled - static_cast<double>(whole)) + tail * kTwo64;
  const std::int64_t rest_rounded =
      static_cast<std::int64_t>(rest >= 0.0 ? rest + 0.5 : rest - 0.5);
  t = whole + static_cast<std::uint64_t>(rest_rounded);  // wraps mod 2^64 (a fraction of a turn)
  return true;
}

// transformers / MLX: float32(float32(p) · inv_freq), positions optionally scaled in float32.
inline float hf_angle(std::int64_t p, float inv, bool has_scale, float scale) {
  float pf = static_cast<float>(p);
  if (has_scale) pf = scale * pf;
  return pf * inv;
}

}  // namespace ropekit::detail
