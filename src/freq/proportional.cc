// Gemma 4 "proportional" RoPE (transformers `_compute_proportional_rope_parameters`, mlx-lm
// ProportionalRoPE). Only k = int(partial_rotary_factor · head_dim / 2) pairs rotate, but
// their exponent divides by the full head_dim (not the rotated width), so the rotated pairs
// keep the frequencies they would have in a full-width RoPE:
//
//     inv_i = theta^(−2i/head_dim) / factor   for i < k,     inv_i = 0 for k ≤ i < head_dim/2
//
// A zero frequency is the identity rotation: the whole head is "rotated" with width
// head_dim, and pairs past k pass through unchanged (half-split pairs (i, i + head_dim/2)).
#include "freq/freq_math.h"

namespace ropekit::detail {

PairFrequencies frequencies(const RopeConfig& c, const ProportionalScaling& s,
                            const PlanRequest& r) {
  const int half = c.head_dim / 2;
  // Python: int(partial_rotary_factor * head_dim // 2)
  const int rotated = static_cast<int>(c.partial_rotary_factor * c.head_dim) / 2;
  PairFrequencies f;
  f.effective_theta = c.rope_theta;
  const std::vector<double> full = base_inv_freq(c.rope_theta, c.head_dim);
  f.inv_freq.assign(static_cast<std::size_t>(half), 0.0);
  for (int i = 0; i < rotated && i < half; ++i)
    f.inv_freq[static_cast<std::size_t>(i)] = full[static_cast<std::size_t>(i)] / s.factor;
  if (r.arithmetic == FrequencyArithmetic::kTransformers) {
    f.transformers_inv_freq =
        transformers_reciprocal(transformers_pos_freqs(c.rope_theta, rotated, c.head_dim));
    f.transformers_inv_freq.resize(static_cast<std::size_t>(half), 0.0f);
    const float factor = f32(s.factor);
    for (float& v : f.transformers_inv_freq) v = v / factor;
  }
  return f;
}

}  // namespace ropekit::detail
