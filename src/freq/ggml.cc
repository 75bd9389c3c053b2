// ggml's RoPE arguments (llama.cpp; ggml's `ggml_rope_ext` and its CPU kernel `rope_yarn`):
// what a GGUF file resolves to when the other scaling types cannot say it.
//
//   theta_extrap_i = p · theta^(−2i/d) / freq_factors[i]    freq_factors: Llama 3's `rope_freqs`
//                                                            or LongRoPE's factor tensors
//   theta_interp_i = theta_extrap_i / factor                 (freq_scale = 1 / factor)
//   ramp_mix_i     = ext_factor · (1 − clamp((i − low) / max(0.001, high − low), 0, 1))
//   theta_i        = theta_interp_i · (1 − ramp_mix_i) + theta_extrap_i · ramp_mix_i
//
// low / high are YaRN's correction dimensions (Peng et al., arXiv:2309.00071) for beta_fast and
// beta_slow over the original context, floored and ceiled as ggml always does. ggml also
// multiplies cos/sin by 1 + 0.1·ln(factor) whenever ext_factor != 0; llama.cpp cancels or keeps
// that term when it sets its attn_factor argument, and the GGUF front-end folds the net
// magnitude into attention_factor (docs/gguf.md). The values here are exact (double, rounded once
// by the plan); the llama.cpp numerics preset replays ggml's float32 running product instead.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "freq/freq_math.h"
#include "ropekit/error.h"

namespace ropekit::detail {

GgmlCorrDims ggml_corr_dims(int n_dims, std::int64_t n_ctx_orig, double freq_base, double beta_fast,
                            double beta_slow) {
  auto corr_dim = [&](double n_rot) {
    return n_dims * std::log(static_cast<double>(n_ctx_orig) / (n_rot * 2.0 * std::numbers::pi)) /
           (2.0 * std::log(freq_base));
  };
  GgmlCorrDims d;
  d.low = std::max(0.0, std::floor(corr_dim(beta_fast)));
  d.high = std::min(static_cast<double>(n_dims - 1), std::ceil(corr_dim(beta_slow)));
  return d;
}

PairFrequencies frequencies(const RopeConfig& c, const GgmlScaling& s, const PlanRequest&) {
  const int d = c.rotary_dim;
  const auto pairs = static_cast<std::size_t>(d / 2);
  if (!s.freq_factors.empty() && s.freq_factors.size() != pairs)
    throw ConfigError("freq_factors", "expected " + std::to_string(pairs) +
                                          " factors (rotary_dim / 2), got " +
                                          std::to_string(s.freq_factors.size()));
  if (!(s.factor > 0 && std::isfinite(s.factor)))
    throw ConfigError("factor", "expected a finite number > 0, got " + std::to_string(s.factor));
  GgmlCorrDims corr;
  if (s.ext_factor != 0) {
    if (s.original_max_position_embeddings <= 0)
      throw ConfigError("original_max_position_embeddings",
                        "expected an integer > 0 with a YaRN mix (ext_factor != 0)");
    corr = ggml_corr_dims(d, s.original_max_position_embeddings, c.rope_theta, s.beta_fast,
                          s.beta_slow);
  }
  PairFrequencies f;
  f.effective_theta = c.rope_theta;
  f.attention_factor = s.attention_factor;
  f.inv_freq = base_inv_freq(c.rope_theta, d);
  for (std::size_t i = 0; i < pairs; ++i) {
    const double extrap = f.inv_freq[i] / (s.freq_factors.empty() ? 1.0 : s.freq_factors[i]);
    const double interp = extrap / s.factor;
    double mix = 0;
    if (s.ext_factor != 0) {
      const double y = (static_cast<double>(i) - corr.low) / std::max(0.001, corr.high - corr.low);
      mix = (1.0 - std::clamp(y, 0.0, 1.0)) * s.ext_factor;
    }
    f.inv_freq[i] = interp * (1.0 - mix) + extrap * mix;
  }
  return f;
}

}  // namespace ropekit::detail
