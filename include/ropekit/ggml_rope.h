// ropekit/ggml_rope.h — the llama.cpp numerics: RoPE computed as ggml's CPU kernel does.
//
// transformers and ropekit's kernels rotate by θ_i(p) = p · inv_freq_i with a per-pair table.
// ggml (`ggml_rope_ext`) computes each angle per position instead, in float32:
//
//   theta_scale = powf(freq_base, −2/n_dims)
//   theta       = (float)p;  for each pair i:  theta_extrap = theta / freq_factors[i]
//                                              theta *= theta_scale       (a running product)
//   theta_interp = freq_scale · theta_extrap
//   ext_factor != 0:  ramp = ext_factor · (1 − clamp((i − low) / max(0.001, high − low), 0, 1))
//                     θ = theta_interp · (1 − ramp) + theta_extrap · ramp
//                     mscale = attn_factor · (1 + 0.1 · logf(1 / freq_scale))   (built in)
//   else              θ = theta_interp,  mscale = attn_factor
//   cos_i = cosf(θ) · mscale,  sin_i = sinf(θ) · mscale  (· −1 backward)
//
// low/high: YaRN's correction dimensions over n_ctx_orig, floored/ceiled and clamped to
// [0, n_dims − 1]. The running product accumulates about i float32 roundings in θ_i, so the
// angle error grows with the pair index (docs/variants.md, "llama.cpp numerics").
//
// Pairs per mode (n_offs = 0):
//   kNormal  (x[2i], x[2i+1])                      i < n_dims/2
//   kNeox    (x[i], x[i + n_dims/2])               i < n_dims/2
//   kMrope   as kNeox; pair i takes its position from stream sector = i % (s0+s1+s2+s3):
//            [0, s0) t, [s0, s0+s1) h, [s0+s1, s0+s1+s2) w, else e (the exponent is not reset)
//   kImrope  as kNeox; sector%3 == 1 and sector < 3·s1: h; == 2 and < 3·s2: w; == 0 and < 3·s0:
//            t; else e
//   kVision  n_dims = head_dim / 2; pairs (x[i], x[i + n_dims]) for i < n_dims; streams as
//            kMrope, and theta restarts from the stream's position at each section start
//
// This scalar API is the reference of what ggml computes. The same arithmetic is available to
// apply_rope as the llama.cpp numerics preset (Numerics::llama_cpp() in ropekit/numerics.h):
// the plan then carries these parameters (FrequencyPlan::ggml) and apply_rope builds ggml's
// cos/sin per call before its kernels rotate.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "ropekit/config.h"

namespace ropekit {

enum class GgmlRopeMode { kNormal = 0, kNeox = 2, kMrope = 8, kVision = 24, kImrope = 40 };

// ggml's name of a mode: "normal", "neox", "mrope", "vision", "imrope".
constexpr std::string_view ggml_mode_name(GgmlRopeMode m) {
  switch (m) {
    case GgmlRopeMode::kNormal:
      return "normal";
    case GgmlRopeMode::kNeox:
      return "neox";
    case GgmlRopeMode::kMrope:
      return "mrope";
    case GgmlRopeMode::kVision:
      return "vision";
    case GgmlRopeMode::kImrope:
      return "imrope";
  }
  return "?";
}

// The arguments of ggml_rope_ext / ggml_rope_multi.
struct GgmlRopeParams {
  int n_dims = 0;
  GgmlRopeMode mode = GgmlRopeMode::kNeox;
  std::int64_t n_ctx_orig = 0;
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;
  float ext_factor = 0.0f;
  float attn_factor = 1.0f;
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
  std::vector<float> freq_factors;  // empty, or >= n_dims/2 divisors
  std::array<int, 4> sections{};    // M-RoPE / vision: t, h, w, e
};

// What llama.cpp passes for a layer config (from a GGUF file, or any config ggml can express):
// attn_factor is chosen so that the final magnitude equals the plan's attention factor (as
// llama.cpp cancels ggml's built-in YaRN term). `context` picks LongRoPE's factor set as
// llama.cpp does (long when it exceeds the original context; default max_position_embeddings).
// Throws ConfigError for what ggml cannot compute (dynamic NTK, ERNIE's H/W M-RoPE).
GgmlRopeParams ggml_rope_params(const RopeConfig& config,
                                std::optional<std::int64_t> context = std::nullopt);

// The float32 angles θ_i ggml computes at one position (streams t, h, w, e; 1-D modes read t),
// one per pair (n_dims/2 pairs; kVision: n_dims).
std::vector<float> ggml_rope_angles(const GgmlRopeParams& params,
                                    const std::array<std::int64_t, 4>& position);

// ggml's cos/sin cache at one position: {cos_0, sin_0, cos_1, sin_1, ...}, magnitude included.
std::vector<float> ggml_rope_cache(const GgmlRopeParams& params,
                                   const std::array<std::int64_t, 4>& position,
                                   bool backward = false);

// Rotates x, float32 [tokens][heads][head_dim] contiguous, in place as ggml's CPU kernel does.
// positions: one per token (1-D modes) or 4 blocks of `tokens` (t..., h..., w..., e...).
// Throws ArgumentError for inconsistent sizes.
void ggml_rope_apply(const GgmlRopeParams& params, std::span<float> x, std::int64_t tokens,
                     std::int64_t heads, std::int64_t head_dim,
                     std::span<const std::int32_t> positions, bool backward = false);

}  // namespace ropekit
