// transformers' float32 arithmetic for inverse frequencies (FrequencyArithmetic::kTransformers):
// the shared first steps. Each scaling type's file replays its own remaining steps. torch
// evaluates each step on float32 tensors, with Python scalars converted to float32, so every
// intermediate is rounded to float32:
//   exponent  e_i  = float32(2i) / d                          (arange(0, d, 2).float() / d)
//   pow       p_i  = float32(theta_f32 ^ e_i)                 (torch.pow, ≤ 1 ulp; we round the
//   exact value) default   inv  = float32(1 / p_i)
// Every step is one float32 operation, written as its own statement so no compiler fuses two
// of them (no -ffp-contract surprises). Bit-identical to the goldens' inv_freq.
#include <cmath>

#include "freq/freq_math.h"

namespace ropekit::detail {

std::vector<float> transformers_pos_freqs(double theta, int n, int denom) {
  const float base = f32(theta);
  std::vector<float> p(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const float e = f32(static_cast<double>(static_cast<float>(2 * i)) /
                        static_cast<double>(static_cast<float>(denom)));
    p[static_cast<std::size_t>(i)] =
        f32(std::pow(static_cast<double>(base), static_cast<double>(e)));
  }
  return p;
}

std::vector<float> transformers_reciprocal(const std::vector<float>& p) {
  std::vector<float> r(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) r[i] = 1.0f / p[i];
  return r;
}

}  // namespace ropekit::detail
