// Internal: the frequency tables of mlx-lm's RoPE classes (mlx_lm/models/rope_utils.py at
// d78bf58e, v0.32.0), as `periods` (1/inv_freq) handed to mx.fast.rope. The config side
// (config/mlx_initialize_rope.cc) reads the arguments with mlx-lm's defaults; the formulas and
// where they differ from transformers' are in docs/variants.md.
#pragma once

#include <cstdint>
#include <vector>

namespace ropekit::detail {

// Llama3RoPE: periods scaled by the wavelength band (strict band edges, mlx-lm's).
std::vector<float> mlx_llama3_freqs(double base, int dims, double factor, double low_freq_factor,
                                    double high_freq_factor, double original_max);
// YarnRoPE: the ramp blend on periods (always floors/ceils the correction range). Throws
// ConfigError when a period is not finite and positive.
std::vector<float> mlx_yarn_freqs(double base, int dims, double factor, double original_max,
                                  double beta_fast, double beta_slow);
// SuScaledRoPE: periods times long_factor; its input prescale sqrt(1 + ln(s)/ln(orig)).
std::vector<float> mlx_longrope_freqs(double base, int dims,
                                      const std::vector<double>& long_factor);
double mlx_longrope_prescale(std::int64_t max_position_embeddings, double original_max);
// ProportionalRoPE: the first `rotated` dims' periods times factor, then +inf (θ = 0).
std::vector<float> mlx_proportional_freqs(double base, int dims, int rotated, double factor);

}  // namespace ropekit::detail
