// YaRN. Peng, Quesnelle, Fan, Shippole, "YaRN: Efficient Context Window Extension of Large
// Language Models", arXiv:2309.00071 (reference code: github.com/jquesnelle/yarn).
// transformers: `_compute_yarn_parameters`; DeepSeek-V2 (arXiv:2405.04434) adds mscale.
//
// 1. Which pairs to interpolate ("NTK-by-parts", §3.2). Pair i has wavelength
//    λ_i = 2π·theta^(2i/d); in the original context L0 it completes r_i = L0/λ_i turns.
//    Pairs that turn many times (r ≥ beta_fast = 32) already saw every angle during training:
//    they are kept (extrapolated). Pairs that turn at most once (r ≤ beta_slow = 1) never
//    completed a turn: they are interpolated by s = factor like linear scaling. Between the
//    two, a linear ramp blends them. Solving r_i = β for i gives the correction dimension
//        i(β) = d · ln(L0 / (2π·β)) / (2 · ln theta)
//    low = i(beta_fast), high = i(beta_slow); truncate (default) floors low and ceils high
//    (gpt-oss ships truncate=false and keeps the fractional bounds); both are clamped to
//    [0, d−1]; if low == high, high += 0.001 to avoid dividing by zero.
//        ramp_i  = clamp((i − low) / (high − low), 0, 1)         (0: keep, 1: interpolate)
//        inv_i   = inv_base_i / s · ramp_i + inv_base_i · (1 − ramp_i)
// 2. Attention temperature (§3.4): stretching the context flattens attention logits; YaRN
//    multiplies q and k by mscale = 0.1·ln(s) + 1 (fitted in the paper; 1 for s ≤ 1), i.e.
//    logits by mscale². transformers folds it into cos/sin as `attention_factor`.
//    DeepSeek configs give mscale and mscale_all_dim: the factor is
//    g(s, mscale) / g(s, mscale_all_dim) with g(s, m) = 0.1·m·ln(s) + 1 (both must be
//    non-zero, else plain g(s)); the model also multiplies its softmax scale by
//    g(s, mscale_all_dim)² — returned as softmax_scale_multiplier, never applied here.
//    An explicit attention_factor overrides all of this.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "freq/freq_math.h"

namespace ropekit {

double yarn_mscale(double scale, double m) {
  constexpr double kTemperatureSlope = 0.1;  // YaRN §3.4: sqrt(1/t) = 0.1·ln(s) + 1
  if (scale <= 1.0) return 1.0;
  return kTemperatureSlope * m * std::log(scale) + 1.0;
}

namespace detail {
namespace {
double correction_dim(double turns, int d, double theta, double original_max) {
  return d * std::log(original_max / (turns * 2.0 * std::numbers::pi)) / (2.0 * std::log(theta));
}
}  // namespace

PairFrequencies frequencies(const RopeConfig& c, const YarnScaling& s, const PlanRequest& r) {
  const int d = c.rotary_dim;
  const double l0 = static_cast<double>(s.original_max_position_embeddings);
  double low = correction_dim(s.beta_fast, d, c.rope_theta, l0);
  double high = correction_dim(s.beta_slow, d, c.rope_theta, l0);
  if (s.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(d - 1));
  constexpr double kDegenerateRampWidth = 0.001;  // transformers' guard against low == high
  if (low == high) high += kDegenerateRampWidth;

  PairFrequencies f;
  f.effective_theta = c.rope_theta;
  const std::vector<double> base = base_inv_freq(c.rope_theta, d);
  f.inv_freq.resize(base.size());
  for (std::size_t i = 0; i < base.size(); ++i) {
    const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
    const double extrapolation = 1.0 - ramp;  // transformers' inv_freq_extrapolation_factor
    f.inv_freq[i] = base[i] / s.factor * (1.0 - extrapolation) + base[i] * extrapolation;
  }
  const bool ratio = s.mscale.value_or(0.0) != 0.0 && s.mscale_all_dim.value_or(0.0) != 0.0;
  if (s.attention_factor) {
    f.attention_factor = *s.attention_factor;
  } else if (ratio) {
    f.attention_factor =
        yarn_mscale(s.factor, *s.mscale) / yarn_mscale(s.factor, *s.mscale_all_dim);
  } else {
    f.attention_factor = yarn_mscale(s.factor);
  }
  if (s.mscale_all_dim.value_or(0.0) != 0.0) {
    const double m = yarn_mscale(s.factor, *s.mscale_all_dim);
    f.softmax_scale_multiplier = m * m;
  }
  if (r.arithmetic == FrequencyArithmetic::kTransformers) {
    // The same ramp with each step rounded to float32; low/high stay Python doubles.
    const std::vector<float> p = transformers_pos_freqs(c.rope_theta, d / 2, d);
    const float span = f32(high - low), lowf = f32(low), factor = f32(s.factor);
    f.transformers_inv_freq.resize(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
      const float extrap = 1.0f / p[i];
      const float scaled = factor * p[i];
      const float interp = 1.0f / scaled;
      const float shifted = static_cast<float>(i) - lowf;
      const float linear = shifted / span;
      const float ramp = std::clamp(linear, 0.0f, 1.0f);
      const float ef = 1.0f - ramp;  // inv_freq_extrapolation_factor
      const float keep = 1.0f - ef;
      const float a = interp * keep;
      const float b = extrap * ef;
      f.transformers_inv_freq[i] = a + b;
    }
  }
  return f;
}

}  // namespace detail
}  // namespace ropekit
