// The frequency side of mlx-lm's RoPE classes: their period tables and the frequency plan of
// one fast.rope call (ropekit/mlx_rope.h). The same papers as the transformers builders beside
// this file; the front-end that reads mlx-lm's arguments is config/mlx_initialize_rope.cc.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "freq/mlx_rope_math.h"
#include "ropekit/error.h"
#include "ropekit/mlx_rope.h"

namespace ropekit {
namespace detail {
namespace {

// mlx-lm computes `base ** (arange(0, d, 2) / d)` in float32 (MLX arrays); we compute the
// period in double and round once (differences ~1 ulp).
std::vector<double> periods(double base, int dims, int count_dims) {
  std::vector<double> f(static_cast<std::size_t>((count_dims + 1) / 2));
  for (std::size_t i = 0; i < f.size(); ++i)
    f[i] = std::pow(base, (2.0 * static_cast<double>(i)) / static_cast<double>(dims));
  return f;
}

}  // namespace

std::vector<float> mlx_llama3_freqs(double base, int dims, double factor, double low, double high,
                                    double old) {
  std::vector<float> out_freqs;
  const double lw = old / low, hw = old / high;
  for (double f : periods(base, dims, dims)) {
    const double wavelen = 2.0 * std::numbers::pi * f;
    double out = wavelen > lw ? f * factor : f;
    // mlx-lm: strict comparisons for the medium band
    if (wavelen > hw && wavelen < lw) {
      const double s = (old / wavelen - low) / (high - low);
      out = out / ((1.0 - s) / factor + s);
    }
    out_freqs.push_back(static_cast<float>(out));
  }
  return out_freqs;
}

std::vector<float> mlx_yarn_freqs(double base, int dims, double factor, double orig,
                                  double beta_fast, double beta_slow) {
  auto corr = [&](double n) {
    return dims * std::log(orig / (n * 2.0 * std::numbers::pi)) / (2.0 * std::log(base));
  };
  double low = std::max(std::floor(corr(beta_fast)), 0.0);
  double high = std::min(std::ceil(corr(beta_slow)), static_cast<double>(dims - 1));
  if (low == high) high += 0.001;
  const auto fe = periods(base, dims, dims);
  std::vector<float> freqs;
  for (std::size_t j = 0; j < fe.size(); ++j) {
    const double ramp = std::clamp((static_cast<double>(j) - low) / (high - low), 0.0, 1.0);
    const double mask = 1.0 - ramp;
    const double fi = factor * fe[j];
    freqs.push_back(static_cast<float>(fi * fe[j] / (fi * mask + fe[j] * (1.0 - mask))));
  }
  return freqs;
}

std::vector<float> mlx_longrope_freqs(double base, int dims,
                                      const std::vector<double>& long_factor) {
  const auto fe = periods(base, dims, dims);
  std::vector<float> freqs;
  for (std::size_t i = 0; i < fe.size() && i < long_factor.size(); ++i)
    freqs.push_back(static_cast<float>(long_factor[i] * fe[i]));
  return freqs;
}

double mlx_longrope_prescale(std::int64_t max_position_embeddings, double orig) {
  const double factor = static_cast<double>(max_position_embeddings) / orig;
  return factor <= 1.0 ? 1.0 : std::sqrt(1.0 + std::log(factor) / std::log(orig));
}

std::vector<float> mlx_proportional_freqs(double base, int dims, int rotated, double factor) {
  std::vector<float> freqs;
  for (double f : periods(base, dims, rotated)) freqs.push_back(static_cast<float>(factor * f));
  while (static_cast<int>(freqs.size()) < dims / 2)
    freqs.push_back(std::numeric_limits<float>::infinity());
  return freqs;
}

}  // namespace detail

double MlxRope::base_for_call(std::int64_t seq, std::int64_t offset) const {
  if (!dynamic) return base.value_or(0.0);
  const double max_pos = static_cast<double>(*max_position_embeddings);
  const double s =
      std::max(static_cast<double>(seq) + static_cast<double>(offset), max_pos);  // no int overflow
  const double d = dims;
  return *base * std::pow(dynamic_factor * s / max_pos - (dynamic_factor - 1.0), d / (d - 2.0));
}

FrequencyPlan MlxRope::plan_for_call(std::int64_t seq, std::int64_t offset, int head_dim) const {
  FrequencyPlan p;
  p.info.rope_type = rope_type;
  p.head_dim = head_dim;
  p.rotary_dim = dims;
  p.layout = traditional ? PairLayout::kInterleaved : PairLayout::kHalf;
  p.attention_factor = input_prescale;
  const int pairs = dims / 2;
  p.inv_freq.resize(static_cast<std::size_t>(pairs));
  if (!freqs.empty()) {
    for (int i = 0; i < pairs; ++i) {
      const double f = freqs[static_cast<std::size_t>(i)];
      p.inv_freq[static_cast<std::size_t>(i)] = std::isinf(f) ? 0.0f : static_cast<float>(1.0 / f);
    }
  } else {
    // fast.rope with a base: inv_i = base^(−i/(d/2)); MLX rounds the base to float32 first.
    // A base beyond float32's range would become inf there (and the first frequency NaN);
    // initialize_rope refuses such a base, but dynamic NTK grows it with every call's length.
    const double wide = base_for_call(seq, offset);
    if (!(wide <= std::numeric_limits<float>::max()))
      throw ArgumentError("seq_len + offset = " + std::to_string(seq) + " + " +
                          std::to_string(offset) + ": the dynamic NTK base grows to " +
                          std::to_string(wide) +
                          ", beyond float32's range (MLX would produce NaN frequencies)");
    const double b = static_cast<float>(wide);
    p.info.effective_theta = b;
    for (int i = 0; i < pairs; ++i)
      p.inv_freq[static_cast<std::size_t>(i)] =
          static_cast<float>(std::exp(-std::log(b) * static_cast<double>(i) / pairs));
  }
  return p;
}

}  // namespace ropekit
