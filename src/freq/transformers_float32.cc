// transformers' float32 arithmetic for inverse frequencies, replayed operation by operation
// (FrequencyArithmetic::kTransformers). The formulas are those of the files beside this one;
// here only the rounding differs: torch evaluates each step on float32 tensors, with Python
// scalars converted to float32, so every intermediate is rounded to float32:
//   exponent  e_i  = float32(2i) / d                          (arange(0, d, 2).float() / d)
//   pow       p_i  = float32(theta_f32 ^ e_i)                 (torch.pow, ≤ 1 ulp; we round the exact value)
//   default   inv  = float32(1 / p_i)
// and the type-specific steps below, each rounded. Bit-identical to the goldens' inv_freq.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <variant>

#include "freq/freq_math.h"

namespace ropekit::detail {
namespace {

float f32(double v) { return static_cast<float>(v); }

// base ** (arange(0, 2n, 2).float() / denom), float32
std::vector<float> pos_freqs(double theta, int n, int denom) {
  const float base = f32(theta);
  std::vector<float> p(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    const float e = f32(static_cast<double>(static_cast<float>(2 * i)) / static_cast<double>(static_cast<float>(denom)));
    p[static_cast<std::size_t>(i)] = f32(std::pow(static_cast<double>(base), static_cast<double>(e)));
  }
  return p;
}

std::vector<float> reciprocal(const std::vector<float>& p) {
  std::vector<float> r(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) r[i] = 1.0f / p[i];
  return r;
}

}  // namespace

std::vector<float> transformers_float32_inv_freq(const RopeConfig& c, double effective_theta, bool use_long) {
  // Every step below is one float32 operation, written as its own statement so no compiler
  // fuses two of them (no -ffp-contract surprises).
  const int d = c.rotary_dim;
  const int n = d / 2;
  if (const auto* s = std::get_if<LinearScaling>(&c.scaling)) {
    std::vector<float> inv = reciprocal(pos_freqs(c.rope_theta, n, d));
    const float f = f32(s->factor);
    for (float& v : inv) v = v / f;
    return inv;
  }
  if (std::holds_alternative<DynamicNtkScaling>(c.scaling)) return reciprocal(pos_freqs(effective_theta, n, d));
  if (const auto* s = std::get_if<LongRopeScaling>(&c.scaling)) {
    const std::vector<float> p = pos_freqs(c.rope_theta, n, d);
    const std::vector<double>& ext = use_long ? s->long_factor : s->short_factor;
    std::vector<float> inv(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
      const float scaled = f32(ext[i]) * p[i];
      inv[i] = 1.0f / scaled;
    }
    return inv;
  }
  if (const auto* s = std::get_if<YarnScaling>(&c.scaling)) {
    const std::vector<float> p = pos_freqs(c.rope_theta, n, d);
    // correction range in Python double, as transformers computes it
    const double l0 = static_cast<double>(s->original_max_position_embeddings);
    auto corr = [&](double turns) {
      return d * std::log(l0 / (turns * 2.0 * std::numbers::pi)) / (2.0 * std::log(c.rope_theta));
    };
    double low = corr(s->beta_fast), high = corr(s->beta_slow);
    if (s->truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(d - 1));
    if (low == high) high += 0.001;
    const float span = f32(high - low), lowf = f32(low), factor = f32(s->factor);
    std::vector<float> inv(p.size());
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
      inv[i] = a + b;
    }
    return inv;
  }
  if (const auto* s = std::get_if<Llama3Scaling>(&c.scaling)) {
    std::vector<float> inv = reciprocal(pos_freqs(c.rope_theta, n, d));
    const double l0 = static_cast<double>(s->original_max_position_embeddings);
    const double low_wl = l0 / s->low_freq_factor, high_wl = l0 / s->high_freq_factor;
    const float two_pi = f32(2.0 * std::numbers::pi), factor = f32(s->factor);
    const float l0f = f32(l0), lowf = f32(s->low_freq_factor), spanf = f32(s->high_freq_factor - s->low_freq_factor);
    for (float& v : inv) {
      const float wl = two_pi / v;
      const double wld = static_cast<double>(wl);
      float llama = wld > low_wl ? v / factor : v;
      const bool medium = !(wld < high_wl) && !(wld > low_wl);
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
    return inv;
  }
  if (const auto* s = std::get_if<ProportionalScaling>(&c.scaling)) {
    const int rotated = static_cast<int>(c.partial_rotary_factor * c.head_dim) / 2;
    std::vector<float> inv = reciprocal(pos_freqs(c.rope_theta, rotated, c.head_dim));
    inv.resize(static_cast<std::size_t>(c.head_dim / 2), 0.0f);
    const float f = f32(s->factor);
    for (float& v : inv) v = v / f;
    return inv;
  }
  return reciprocal(pos_freqs(c.rope_theta, n, d));  // default
}

}  // namespace ropekit::detail
