// ropekit/numerics.h — whose numbers: the four choices that decide a result's bits, and the
// four named presets that bundle them.
//
//   choice               where it acts              exact      transformers  mlx_lm   llama_cpp
//   FrequencyArithmetic  inv_freq table (plan)      kExact     kTransformers kExact   kGgml
//   SeqLenPolicy         dynamic NTK / LongRoPE     kTransf.   kTransformers kMlxLm   kTransf.
//   AngleMode            θ = p · inv_freq (apply)   kExact     kHf           kHf      kGgml
//   Rounding             16-bit outputs (apply)     kSingle    kTransformers kSingle  kSingle
//   (exact is the default; kTransf. = kTransformers)
//
//   exact         the rotation the model was defined with: each inverse frequency rounded once
//                 from double, θ reduced in double precision at every position up to 2^31 − 1,
//                 one rounding per output. It does not drift with the position.
//   transformers  bit parity with Hugging Face transformers: its float32 inv_freq sequence,
//                 float32 angles (which at p = 131071 differ from true math by up to ~5e-3) and
//                 its three bf16/f16 roundings (q·cos, rot·sin, sum).
//   mlx_lm        mlx-lm's `initialize_rope` + `mx.fast.rope`: float32 angles, one rounding,
//                 LongRoPE always on its long factors, dynamic NTK stateless.
//   llama_cpp     llama.cpp's ggml CPU kernel (`ggml_rope_ext`, ropekit/ggml_rope.h): the plan
//                 carries ggml's arguments (FrequencyPlan::ggml, as llama.cpp would pass them for
//                 the config) and apply_rope computes every angle as ggml does — a float32
//                 running product θ = p · theta_scale^i whose error grows with the pair index
//                 and the position, YaRN's floored/ceiled ramp, ggml's built-in magnitude,
//                 freq_factors as divisors, float32 cos/sin — then rotates with them (one
//                 rounding). Configs ggml cannot express (dynamic NTK without alpha,
//                 proportional, XD-RoPE, ERNIE's M-RoPE, Pixtral/Llama 4 vision) are a
//                 ConfigError when the plan is built.
//
// build_frequency_plan (ropekit/frequencies.h) takes the first two, apply_rope
// (ropekit/apply.h, ApplyOptions) the last two; both have overloads taking a Numerics.
#pragma once

#include <optional>
#include <string_view>

namespace ropekit {

// Sequence-length rule of the two scaling types that depend on it (ropekit/frequencies.h).
enum class SeqLenPolicy { kTransformers, kMlxLm };

// How inverse frequencies are computed:
//   kExact         each value in double, rounded once to float32 (within half a float32 ulp).
//   kTransformers  transformers' float32 operation sequence replayed step by step (float32
//                  exponent, pow, reciprocal, ramps and blends each rounded to float32), so the
//                  table is bit-identical to its `inv_freq` buffer. A one-ulp difference in
//                  inv_freq moves the angle at position 131071 by ~1e-3 rad, so parity with
//                  transformers' outputs at long positions (AngleMode::kHf) needs this.
//   kGgml          the table as kExact, plus ggml's arguments in FrequencyPlan::ggml (what
//                  llama.cpp passes to ggml_rope_ext for this config); needed by AngleMode::kGgml.
enum class FrequencyArithmetic { kExact, kTransformers, kGgml };

// Angles (ropekit/apply.h):
//   kExact  θ = p · inv_freq in exact arithmetic, reduced modulo 2π in double precision.
//   kHf     θ = float32(float32(p) · inv_freq) as transformers and MLX compute it.
//   kGgml   θ and cos/sin as ggml's CPU kernel computes them from the plan's ggml arguments
//           (FrequencyPlan::ggml; the plan must be built with FrequencyArithmetic::kGgml);
//           inv_freq is not read.
enum class AngleMode { kExact, kHf, kGgml };

// Rounding of 16-bit outputs (ropekit/apply.h):
//   kSingle        computed in f64 (reference) or f32 (SIMD) and rounded once.
//   kTransformers  transformers' sequence: cos/sin rounded to the dtype, then each product and
//                  the sum rounded (three roundings), except for families that round once.
enum class Rounding { kSingle, kTransformers };

struct Numerics {
  FrequencyArithmetic arithmetic = FrequencyArithmetic::kExact;
  SeqLenPolicy policy = SeqLenPolicy::kTransformers;
  AngleMode angles = AngleMode::kExact;
  Rounding rounding = Rounding::kSingle;

  static constexpr Numerics exact() { return {}; }
  static constexpr Numerics transformers() {
    return {FrequencyArithmetic::kTransformers, SeqLenPolicy::kTransformers, AngleMode::kHf,
            Rounding::kTransformers};
  }
  static constexpr Numerics mlx_lm() {
    return {FrequencyArithmetic::kExact, SeqLenPolicy::kMlxLm, AngleMode::kHf, Rounding::kSingle};
  }
  static constexpr Numerics llama_cpp() {
    return {FrequencyArithmetic::kGgml, SeqLenPolicy::kTransformers, AngleMode::kGgml,
            Rounding::kSingle};
  }
  friend constexpr bool operator==(const Numerics&, const Numerics&) = default;
};

// The preset of a name: "exact", "transformers" (or "hf"), "mlx-lm" (or "mlx", "mlx_lm"),
// "llama.cpp" (or "llama-cpp", "llama_cpp", "ggml"); nullopt for any other name.
constexpr std::optional<Numerics> numerics_preset(std::string_view name) {
  if (name == "exact") return Numerics::exact();
  if (name == "transformers" || name == "hf") return Numerics::transformers();
  if (name == "mlx-lm" || name == "mlx" || name == "mlx_lm") return Numerics::mlx_lm();
  if (name == "llama.cpp" || name == "llama-cpp" || name == "llama_cpp" || name == "ggml")
    return Numerics::llama_cpp();
  return std::nullopt;
}

// The names numerics_preset accepts, for messages and help texts.
constexpr std::string_view kNumericsPresetNames = "exact, transformers, mlx-lm, llama.cpp";

}  // namespace ropekit
