// Llama 3 frequency smoothing. Meta, "The Llama 3 Herd of Models", arXiv:2407.21783; the
// formula is Meta's llama-models `apply_scaling` (Llama 3.1), transformers
// `_compute_llama3_parameters`. In wavelengths λ_i = 2π / inv_i, with L0 the original context
// (8192 for Llama 3.1), s = factor (8), and the band edges
//
//     λ_low  = L0 / low_freq_factor   (8192 tokens with low_freq_factor 1)
//     λ_high = L0 / high_freq_factor  (2048 tokens with high_freq_factor 4):
//
//   λ > λ_low   (fewer than low_freq_factor turns in L0): interpolated, inv / s;
//   λ < λ_high  (more than high_freq_factor turns in L0): kept, inv;
//   otherwise   blended: with t = (L0/λ − low) / (high − low) ∈ [0, 1],
//               inv' = (1 − t)·inv/s + t·inv  (inclusive edges, as transformers).
// When low_freq_factor == high_freq_factor (Llama 4 Scout) there is no band; a wavelength
// exactly on the edge would give t = 0/0 — it is taken as interpolated (t = 0).
#include <cmath>
#include <numbers>

#include "freq/freq_math.h"

namespace ropekit::detail {

PairFrequencies frequencies(const RopeConfig& c, const Llama3Scaling& s, const PlanRequest& r) {
  PairFrequencies f = frequencies(c, DefaultScaling{}, r);
  const double l0 = static_cast<double>(s.original_max_position_embeddings);
  const double low_wavelen = l0 / s.low_freq_factor;
  const double high_wavelen = l0 / s.high_freq_factor;
  for (double& inv : f.inv_freq) {
    const double wavelen = 2.0 * std::numbers::pi / inv;
    if (wavelen > low_wavelen) {
      inv /= s.factor;
    } else if (wavelen < high_wavelen) {
      // kept
    } else {
      const double span = s.high_freq_factor - s.low_freq_factor;
      const double t = span > 0 ? (l0 / wavelen - s.low_freq_factor) / span : 0.0;
      inv = (1.0 - t) * inv / s.factor + t * inv;
    }
  }
  if (!f.transformers_inv_freq.empty()) {  // the same steps, each rounded to float32
    const float two_pi = f32(2.0 * std::numbers::pi), factor = f32(s.factor);
    const float l0f = f32(l0), lowf = f32(s.low_freq_factor);
    const float spanf = f32(s.high_freq_factor - s.low_freq_factor);
    for (float& v : f.transformers_inv_freq) {
      const float wl = two_pi / v;
      const double wld = static_cast<double>(wl);
      float llama = wld > low_wavelen ? v / factor : v;
      const bool medium = !(wld < high_wavelen) && !(wld > low_wavelen);
      if (medium) {
        const float ratio = l0f / wl;
        const float shifted = ratio - lowf;
        const float sm = shifted / spanf;
        const float one_minus = 1.0f - sm;
        const float a0 = one_minus * llama;
        const float a = a0 / factor;
        const float b = sm * llama;
        llama = a + b;
      }
      v = llama;
    }
  }
  return f;
}

}  // namespace ropekit::detail
