// LongRoPE / "su" scaling. Ding et al., "LongRoPE: Extending LLM Context Window Beyond 2
// Million Tokens", arXiv:2402.13753; used by Phi-3 (Abdin et al., arXiv:2404.14219).
// An evolutionary search finds one rescale factor λ_i per pair (non-uniform interpolation):
//
//     inv_i = 1 / (λ_i · theta^(2i/d))
//
// with two sets: `short_factor` for sequences within the original context and `long_factor`
// beyond it (transformers switches when seq_len > original_max_position_embeddings).
// Magnitude: with s = factor (default max_position_embeddings / original), cos and sin are
// multiplied by sqrt(1 + ln(s) / ln(L0)) (1 for s ≤ 1) — the attention-entropy correction of
// the Phi-3 code, applied to short and long alike. An explicit attention_factor overrides it.
// transformers: `_compute_longrope_parameters`.
#include <cmath>

#include "freq/freq_math.h"

namespace ropekit::detail {

PairFrequencies frequencies(const RopeConfig& c, const LongRopeScaling& s, const PlanRequest& r) {
  // transformers switches to the long factors past the original context; mlx-lm always uses
  // them (SeqLenPolicy in ropekit/frequencies.h).
  const bool use_long = r.policy == SeqLenPolicy::kMlxLm ||
                        (r.seq_len && *r.seq_len > s.original_max_position_embeddings);
  PairFrequencies f = frequencies(c, DefaultScaling{}, PlanRequest{});
  const std::vector<double>& ext = use_long ? s.long_factor : s.short_factor;
  for (std::size_t i = 0; i < f.inv_freq.size(); ++i) f.inv_freq[i] /= ext[i];
  f.uses_long_factor = use_long;
  if (r.arithmetic == FrequencyArithmetic::kTransformers) {
    const std::vector<float> p =
        transformers_pos_freqs(c.rope_theta, c.rotary_dim / 2, c.rotary_dim);
    f.transformers_inv_freq.resize(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
      const float scaled = f32(ext[i]) * p[i];
      f.transformers_inv_freq[i] = 1.0f / scaled;
    }
  }
  const double l0 = static_cast<double>(s.original_max_position_embeddings);
  const double factor = s.factor.value_or(static_cast<double>(c.max_position_embeddings) / l0);
  if (s.attention_factor) {
    f.attention_factor = *s.attention_factor;
  } else if (factor <= 1.0 || l0 <= 1.0) {
    f.attention_factor = 1.0;
  } else {
    f.attention_factor = std::sqrt(1.0 + std::log(factor) / std::log(l0));
  }
  return f;
}

}  // namespace ropekit::detail
