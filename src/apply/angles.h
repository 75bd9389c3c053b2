// Internal: the two angle conventions, shared by the reference and the cos/sin cache.
#pragma once

#include <cmath>
#include <cstdint>

namespace ropekit::detail {

// cos and sin of p·m with the product kept exact: p·m = hi + lo exactly (FMA), then the
// angle-addition formulas cos(hi + lo) = cos(hi)·cos(lo) − sin(hi)·sin(lo) (and likewise sin).
// libm reduces hi modulo 2π exactly; lo is tiny (|lo| <= ulp(hi)/2, up to ~1e-3 rad when
// |p·m| reaches 1e13), so its cos/sin are evaluated too rather than approximated.
inline void exact_cos_sin(std::int64_t p, double m, double& c, double& s) {
  const double pd = static_cast<double>(p);  // exact: |p| < 2^53
  const double hi = pd * m;
  const double lo = std::fma(pd, m, -hi);
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

// transformers / MLX: float32(float32(p) · inv_freq), positions optionally scaled in float32.
inline float hf_angle(std::int64_t p, float inv, bool has_scale, float scale) {
  float pf = static_cast<float>(p);
  if (has_scale) pf = scale * pf;
  return pf * inv;
}

}  // namespace ropekit::detail
