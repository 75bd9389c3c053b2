// Plain RoPE. Su et al., "RoFormer: Enhanced Transformer with Rotary Position Embedding",
// arXiv:2104.09864, eq. (15): pair i of a d-dimensional rotated slice turns by
//
//     θ_i(p) = p · theta^(−2i/d),   i = 0 … d/2 − 1
//
// so pair 0 turns one radian per token (wavelength 2π tokens) and the last pair turns slowest
// (wavelength ≈ 2π·theta). `theta` (rope_theta, the "base"; 10000 in the paper) sets how
// slow: larger bases (500000 for Llama 3, 1e6 for Qwen) give longer wavelengths.
// transformers: `compute_default_rope_parameters` (1 / base ** (arange(0, d, 2) / d)).
#include <cmath>

#include "freq/freq_math.h"

namespace ropekit::detail {

std::vector<double> base_inv_freq(double theta, int d) {
  std::vector<double> inv(static_cast<std::size_t>(d / 2));
  const double log_theta = std::log(theta);
  for (int i = 0; i < d / 2; ++i)
    inv[static_cast<std::size_t>(i)] = std::exp(-log_theta * (2.0 * i) / static_cast<double>(d));
  return inv;
}

PairFrequencies frequencies(const RopeConfig& c, const DefaultScaling&, const PlanRequest& r) {
  PairFrequencies f;
  f.inv_freq = base_inv_freq(c.rope_theta, c.rotary_dim);
  f.effective_theta = c.rope_theta;
  if (r.arithmetic == FrequencyArithmetic::kTransformers)
    f.transformers_inv_freq = transformers_reciprocal(
        transformers_pos_freqs(c.rope_theta, c.rotary_dim / 2, c.rotary_dim));
  return f;
}

}  // namespace ropekit::detail
