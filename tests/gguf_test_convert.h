// Test helper: what llama.cpp's convert_hf_to_gguf.py writes for a model's RoPE, from the
// Hugging Face config as ropekit reads it, so the GGUF front-end can be checked against the
// config front-end. The rules (per scaling type) are those of docs/gguf.md:
//   llama3    rope_freqs tensor: 1 (kept), factor (interpolated), 1/((1−t)/factor + t) (band)
//   yarn      rope.scaling.{type yarn, factor, original_context_length}; DeepSeek:
//             yarn_log_multiplier = 0.1 · mscale_all_dim
//   longrope  rope_factors_long/short tensors + rope.scaling.attn_factor
//             (sqrt(1 + ln(s)/ln(orig)), s = max_pos / orig) and original_context_length; Phi-3's
//             converter writes no rope.scaling.type
//   linear    rope.scaling.{type linear, factor}
#pragma once

#include <cmath>
#include <numbers>
#include <string>
#include <variant>

#include "gguf_test_writer.h"
#include "ropekit/hf_config.h"

namespace ropekit::test {

inline std::vector<float> llama3_rope_freqs(const RopeConfig& c, const Llama3Scaling& s) {
  std::vector<float> out;
  const double orig = static_cast<double>(s.original_max_position_embeddings);
  for (int i = 0; i < c.rotary_dim / 2; ++i) {
    const double freq = std::pow(c.rope_theta, -2.0 * i / c.rotary_dim);
    const double wavelen = 2 * std::numbers::pi / freq;
    double f = 1.0;
    if (wavelen < orig / s.high_freq_factor) {
      f = 1.0;
    } else if (wavelen > orig / s.low_freq_factor) {
      f = s.factor;
    } else {
      const double smooth =
          (orig / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      f = 1.0 / ((1 - smooth) / s.factor + smooth);
    }
    out.push_back(static_cast<float>(f));
  }
  return out;
}

inline std::vector<float> to_f32(const std::vector<double>& v) {
  return std::vector<float>(v.begin(), v.end());
}

// The RoPE part of a GGUF for `hf` under architecture `arch` (heads: attention.head_count).
inline GgufWriter convert_rope(const ModelRope& hf, const std::string& arch, int heads = 8) {
  GgufWriter w;
  const RopeConfig& c = hf.layers.size() > 1 ? hf.layer("full_attention") : hf.layers.front();
  auto k = [&](const std::string& s) { return arch + "." + s; };
  w.str("general.architecture", arch).str("general.name", "test " + arch);
  w.u32(k("context_length"), static_cast<std::uint32_t>(c.max_position_embeddings));
  w.u32(k("embedding_length"), static_cast<std::uint32_t>(c.head_dim * heads));
  w.u32(k("attention.head_count"), static_cast<std::uint32_t>(heads));
  if (arch == "deepseek2") {
    w.u32(k("attention.key_length"), static_cast<std::uint32_t>(128 + c.head_dim));
  } else {
    w.u32(k("attention.key_length"), static_cast<std::uint32_t>(c.head_dim));
  }
  w.u32(k("rope.dimension_count"), static_cast<std::uint32_t>(c.rotary_dim));
  w.f32(k("rope.freq_base"), static_cast<float>(c.rope_theta));
  if (c.mrope) {
    w.i32_array(k("rope.dimension_sections"),
                {c.mrope->section[0], c.mrope->section[1], c.mrope->section[2], 0});
  }
  if (const auto* s = std::get_if<LinearScaling>(&c.scaling)) {
    w.str(k("rope.scaling.type"), "linear")
        .f32(k("rope.scaling.factor"), static_cast<float>(s->factor));
  } else if (const auto* y = std::get_if<YarnScaling>(&c.scaling)) {
    w.str(k("rope.scaling.type"), "yarn")
        .f32(k("rope.scaling.factor"), static_cast<float>(y->factor));
    w.u32(k("rope.scaling.original_context_length"),
          static_cast<std::uint32_t>(y->original_max_position_embeddings));
    if (y->mscale_all_dim && arch == "deepseek2")
      w.f32(k("rope.scaling.yarn_log_multiplier"), static_cast<float>(0.1 * *y->mscale_all_dim));
  } else if (const auto* l = std::get_if<LongRopeScaling>(&c.scaling)) {
    const double orig = static_cast<double>(l->original_max_position_embeddings);
    const double ratio = static_cast<double>(c.max_position_embeddings) / orig;
    w.f32(k("rope.scaling.attn_factor"),
          static_cast<float>(std::sqrt(1 + std::log(ratio) / std::log(orig))));
    w.u32(k("rope.scaling.original_context_length"), static_cast<std::uint32_t>(orig));
    w.tensor("rope_factors_long.weight", to_f32(l->long_factor));
    w.tensor("rope_factors_short.weight", to_f32(l->short_factor));
  } else if (const auto* l3 = std::get_if<Llama3Scaling>(&c.scaling)) {
    w.tensor("rope_freqs.weight", llama3_rope_freqs(c, *l3));
  }
  if (hf.layers.size() > 1) {
    const RopeConfig& swa = hf.layer("sliding_attention");
    w.f32(k("rope.freq_base_swa"), static_cast<float>(swa.rope_theta));
    w.u32(k("block_count"), 12).u32(k("attention.sliding_window_pattern"), 6);
  }
  return w;
}

}  // namespace ropekit::test
