// Dynamic NTK-aware scaling. NTK-aware interpolation (bloc97, 2023,
// reddit.com/r/LocalLLaMA/comments/14lz7j5) raises the base instead of squeezing positions, so
// high-frequency pairs (local order) are barely changed while low-frequency pairs are
// interpolated; the dynamic variant (emozilla, 2023, reddit.com/r/LocalLLaMA/comments/14mrgpr)
// chooses the base from the current sequence length; formalised in YaRN, arXiv:2309.00071 §3.2.
//
//     L      = max(seq_len, max_position_embeddings)
//     theta' = theta · (s·L/L0 − (s − 1))^(d/(d−2))        (s = factor, L0 =
//     max_position_embeddings)
//
// At L = L0 the bracket is 1 (no change); it grows linearly in L with slope s/L0. The exponent
// d/(d−2) makes the slowest pair (i = d/2 − 1, exponent −(d−2)/d) interpolate by exactly
// (s·L/L0 − (s−1)): theta'^(−(d−2)/d) = theta^(−(d−2)/d) / bracket.
// transformers: `_compute_dynamic_ntk_parameters` (threshold max_position_embeddings).
//
// NTK-alpha (HunYuan; transformers `HunYuanDenseV1RotaryEmbedding`, vLLM
// `DynamicNTKAlphaRotaryEmbedding`): a fixed NTK-aware base chosen by `alpha` instead of the
// sequence length,
//
//     theta_a = theta · alpha^(h/(h−2)),   inv_freq_i = theta_a^(−2i/h),  attention factor 1
//
// with h = head_dim (transformers; vLLM writes rotary_dim in both places, the same for the
// full-rotary HunYuan models). transformers' `dynamic_rope_update` still runs for rope_type
// "dynamic": past max_position_embeddings it calls `_compute_dynamic_ntk_parameters`, which
// knows no alpha, so the base drops to theta · (s·L/L0 − (s − 1))^(d/(d−2)); back below
// max_position_embeddings it restores the alpha frequencies. SeqLenPolicy::kTransformers
// follows that; kMlxLm keeps the alpha base at every length, as vLLM and mlx-lm's HunYuan do.
#include <algorithm>
#include <cmath>

#include "freq/freq_math.h"
#include "ropekit/error.h"

namespace ropekit::detail {

namespace {

bool uses_alpha(const RopeConfig& c, const DynamicNtkScaling& s, const PlanRequest& r) {
  if (!s.alpha) return false;
  if (r.policy == SeqLenPolicy::kMlxLm || !r.seq_len) return true;
  return *r.seq_len <= c.max_position_embeddings;
}

PairFrequencies alpha_frequencies(const RopeConfig& c, double alpha, const PlanRequest& r) {
  const int h = c.head_dim;
  if (h <= 2)
    throw ConfigError("head_dim", "NTK-alpha needs head_dim > 2 (its exponent is h/(h-2)), got " +
                                      std::to_string(h));
  const double theta = c.rope_theta * std::pow(alpha, static_cast<double>(h) / (h - 2));
  const int n = c.rotary_dim / 2;
  PairFrequencies f;
  f.inv_freq.resize(static_cast<std::size_t>(n));
  const double log_theta = std::log(theta);
  for (int i = 0; i < n; ++i)
    f.inv_freq[static_cast<std::size_t>(i)] = std::exp(-log_theta * (2.0 * i) / h);
  f.effective_theta = theta;
  if (r.arithmetic == FrequencyArithmetic::kTransformers)
    f.transformers_inv_freq = transformers_reciprocal(transformers_pos_freqs(theta, n, h));
  return f;
}

}  // namespace

PairFrequencies frequencies(const RopeConfig& c, const DynamicNtkScaling& s, const PlanRequest& r) {
  if (uses_alpha(c, s, r)) return alpha_frequencies(c, *s.alpha, r);
  const std::optional<std::int64_t> seq_len = r.seq_len;
  const int d = c.rotary_dim;
  if (d <= 2)
    throw ConfigError(
        "partial_rotary_factor",
        "dynamic NTK needs a rotary width > 2 (its exponent is d/(d-2)), got " + std::to_string(d));
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
