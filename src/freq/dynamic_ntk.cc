// Dynamic NTK-aware scaling. NTK-aware interpolation (bloc97, 2023,
// reddit.com/r/LocalLLaMA/comments/14lz7j5) raises the base instead of squeezing positions, so
// high-frequency pairs (local order) are barely changed while low-frequency pairs are
// interpolated; the dynamic variant (emozilla, 2023, reddit.com/r/LocalLLaMA/comments/14mrgpr)
// chooses the base from the current sequence length; formalised in YaRN, arXiv:2309.00071 §3.2.
//
//     L      = max(seq_len, max_position_embeddings)
//     theta' = theta · (s·L/L0 − (s − 1))^(d/(d−2))        (s = factor, L0 = max_position_embeddings)
//
// At L = L0 the bracket is 1 (no change); it grows linearly in L with slope s/L0. The exponent
// d/(d−2) makes the slowest pair (i = d/2 − 1, exponent −(d−2)/d) interpolate by exactly
// (s·L/L0 − (s−1)): theta'^(−(d−2)/d) = theta^(−(d−2)/d) / bracket.
// transformers: `_compute_dynamic_ntk_parameters` (threshold max_position_embeddings).
#include <algorithm>
#include <cmath>

#include "freq/freq_math.h"
#include "ropekit/error.h"

namespace ropekit::detail {

PairFrequencies frequencies(const RopeConfig& c, const DynamicNtkScaling& s,
                            const PlanRequest& r) {
  const std::optional<std::int64_t> seq_len = r.seq_len;
  const int d = c.rotary_dim;
  if (d <= 2)
    throw ConfigError("partial_rotary_factor",
                      "dynamic NTK needs a rotary width > 2 (its exponent is d/(d-2)), got " +
                          std::to_string(d));
  const double l0 = static_cast<double>(c.max_position_embeddings);
  const double len = std::max(static_cast<double>(seq_len.value_or(c.max_position_embeddings)), l0);
  const double bracket = s.factor * len / l0 - (s.factor - 1.0);
  const double theta = c.rope_theta * std::pow(bracket, static_cast<double>(d) / (d - 2));
  PairFrequencies f;
  f.inv_freq = base_inv_freq(theta, d);
  f.effective_theta = theta;
  if (r.arithmetic == FrequencyArithmetic::kTransformers)
    f.transformers_inv_freq = transformers_reciprocal(transformers_pos_freqs(theta, d / 2, d));
  return f;
}

}  // namespace ropekit::detail
