// 2-D RoPE of vision encoders: every image patch has a position (row, column); half of the
// pairs turn with the row, the other half with the column, each half with its own frequencies.
// The three families differ in which frequencies each half takes (the map f(i) below):
//
//   Pixtral / Mistral 3 (transformers `PixtralRotaryEmbedding`): the h/2 plain frequencies
//     inv_k = θ^(−2k/h) are dealt alternately, even k to the row half, odd k to the column
//     half; the table is then repeated for rotate_half (half-split pairs).
//   Qwen2-VL / Qwen2.5-VL / Qwen3-VL / GLM-4.1V vision towers (`VisionRotaryEmbedding(h/2)`):
//     h/4 frequencies inv_j = θ^(−2j/(h/2)) (the exponent divides by h/2), used by both halves:
//     row half first, then column half; half-split pairs (`rotate_half`).
//   Llama 4 vision encoder (`Llama4VisionRotaryEmbedding`): the same h/4 frequencies over
//     freq_dim = h/2, column (x) half first, then row (y) half, on interleaved pairs (complex
//     multiplication); positions are x + 1 and y + 1, the class token gets angle 0.
//
// Under FrequencyArithmetic::kTransformers the float32 sequence of each is replayed
// (`1 / θ ** (arange(0, n, 2).float() / n)`), then dealt the same way.
#include <cmath>

#include "freq/freq_math.h"
#include "ropekit/error.h"

namespace ropekit::detail {

PairFrequencies vision_2d_frequencies(const RopeConfig& c, const Vision2dSpec& v,
                                      const PlanRequest& r, std::vector<std::uint8_t>& pair_axis) {
  const int h = c.head_dim;
  if (h % 4 != 0 || c.rotary_dim != h)
    throw ConfigError("vision_config",
                      "2-D vision RoPE needs head_dim divisible by 4 and the "
                      "whole head rotated, got head_dim " +
                          std::to_string(h) + ", rotary_dim " + std::to_string(c.rotary_dim));
  const int quarter = h / 4;
  // The base table: h/2 frequencies over h (Pixtral), h/4 over h/2 (Qwen-VL, Llama 4).
  const int denom = v.kind == Vision2dKind::kPixtral ? h : h / 2;
  const int n = denom / 2;
  const std::vector<double> base = base_inv_freq(c.rope_theta, denom);
  std::vector<float> base_f32;
  if (r.arithmetic == FrequencyArithmetic::kTransformers)
    base_f32 = transformers_reciprocal(transformers_pos_freqs(c.rope_theta, n, denom));
  PairFrequencies f;
  f.effective_theta = c.rope_theta;
  pair_axis.assign(static_cast<std::size_t>(2 * quarter), 0);
  for (int i = 0; i < 2 * quarter; ++i) {
    const bool second = i >= quarter;
    const int j = second ? i - quarter : i;
    int k = j;  // f(i): index into the base table
    std::uint8_t row = second ? 1 : 0;
    if (v.kind == Vision2dKind::kPixtral) k = 2 * j + (second ? 1 : 0);
    if (v.kind == Vision2dKind::kLlama4) row = second ? 0 : 1;  // x (column) half first
    f.inv_freq.push_back(base[static_cast<std::size_t>(k)]);
    if (!base_f32.empty()) f.transformers_inv_freq.push_back(base_f32[static_cast<std::size_t>(k)]);
    pair_axis[static_cast<std::size_t>(i)] = row;
  }
  return f;
}

}  // namespace ropekit::detail
