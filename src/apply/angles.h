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

inline void exact_cos_sin(std::int64_t p, double m, double& c, double& s) { exact_cos_sin(p, m, 0.0, c, s); }

// inv · scale as an unevaluated sum m + m_lo, exact for a float inv and a double scale (FMA).
inline void exact_multiplier(float inv, double scale, double& m, double& m_lo) {
  m = static_cast<double>(inv) * scale;
  m_lo = std::fma(static_cast<double>(inv), scale, -m);
}

// transformers / MLX: float32(float32(p) · inv_freq), positions optionally scaled in float32.
inline float hf_angle(std::int64_t p, float inv, bool has_scale, float scale) {
  float pf = static_cast<float>(p);
  if (has_scale) pf = scale * pf;
  return pf * inv;
}

}  // namespace ropekit::detail
