// Linear position interpolation. Chen et al., "Extending Context Window of Large Language
// Models via Positional Interpolation", arXiv:2306.15595 (and kaiokendev's SuperHOT):
// positions are squeezed by the context extension ratio s = `factor`, p → p / s, so a model
// trained on L tokens sees angles it knows for s·L tokens. transformers expresses it on the
// frequencies (inv_freq / s; `_compute_linear_scaling_rope_parameters`); mlx-lm scales the
// positions instead (nn.RoPE scale = 1/s) — the same angles, different float32 rounding.
#include "freq/freq_math.h"

namespace ropekit::detail {

PairFrequencies frequencies(const RopeConfig& c, const LinearScaling& s, const PlanRequest& r) {
  PairFrequencies f = frequencies(c, DefaultScaling{}, r);
  for (double& v : f.inv_freq) v /= s.factor;
  const float factor = f32(s.factor);
  for (float& v : f.transformers_inv_freq) v = v / factor;  // float32 division, as torch
  return f;
}

}  // namespace ropekit::detail
