// RopeConfig → the ggml_rope_ext arguments llama.cpp passes (include/ropekit/ggml_rope.h):
// freq_scale = 1/factor; YaRN's ext_factor 1 and its correction range; the per-pair divisors
// (`freq_factors`) that carry Llama 3 (rope_freqs) and LongRoPE (rope_factors_*) scaling; an
// attn_factor that, times ggml's built-in 1 + 0.1·ln(factor) under YaRN, gives the plan's
// attention factor (llama.cpp's yarn_attn_factor_adjust).
#include <cmath>
#include <variant>

#include "freq/freq_math.h"
#include "ropekit/error.h"
#include "ropekit/ggml_rope.h"

namespace ropekit {
namespace {
// ggml takes float arguments: a finite value beyond float's range cannot be passed.
float to_float(double v, const char* name) {
  if (std::isfinite(v) && std::fabs(v) > 3.4e38)
    throw ConfigError(name, "expected a value within float32's range, got " + std::to_string(v));
  return static_cast<float>(v);
}
}  // namespace

GgmlRopeParams ggml_rope_params(const RopeConfig& c, std::optional<std::int64_t> context) {
  GgmlRopeParams p;
  p.n_dims = c.rotary_dim;
  p.freq_base = to_float(c.rope_theta, "rope_theta");
  p.n_ctx_orig = c.max_position_embeddings;
  p.mode = c.layout == PairLayout::kHalf ? GgmlRopeMode::kNeox : GgmlRopeMode::kNormal;
  if (c.mrope) {
    if (c.mrope->assignment == MRopeAssignment::kErnieHw)
      throw ConfigError("mrope_section", "ERNIE's H/W-alternating M-RoPE has no ggml mode");
    p.mode = c.mrope->assignment == MRopeAssignment::kSections ? GgmlRopeMode::kMrope
                                                               : GgmlRopeMode::kImrope;
    p.sections = {c.mrope->section[0], c.mrope->section[1], c.mrope->section[2], 0};
  }
  const std::int64_t ctx = context.value_or(c.max_position_embeddings);
  const FrequencyPlan plan = build_frequency_plan(c, ctx);
  double magnitude = plan.attention_factor;
  auto divisors_from_plan = [&] {
    const std::vector<double> base = detail::base_inv_freq(c.rope_theta, c.rotary_dim);
    p.freq_factors.clear();
    for (std::size_t i = 0; i < base.size(); ++i)
      p.freq_factors.push_back(to_float(base[i] / plan.inv_freq[i], "freq_factors"));
  };
  std::visit(
      [&](const auto& s) {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, LinearScaling>) {
          p.freq_scale = to_float(1.0 / s.factor, "factor");
        } else if constexpr (std::is_same_v<T, DynamicNtkScaling>) {
          throw ConfigError("rope_scaling.rope_type", "dynamic NTK has no ggml form");
        } else if constexpr (std::is_same_v<T, ProportionalScaling>) {
          throw ConfigError("rope_scaling.rope_type", "proportional RoPE has no ggml form");
        } else if constexpr (std::is_same_v<T, YarnScaling>) {
          p.freq_scale = to_float(1.0 / s.factor, "factor");
          p.ext_factor = 1.0f;
          p.n_ctx_orig = s.original_max_position_embeddings;
          p.beta_fast = to_float(s.beta_fast, "beta_fast");
          p.beta_slow = to_float(s.beta_slow, "beta_slow");
        } else if constexpr (std::is_same_v<T, LongRopeScaling> ||
                             std::is_same_v<T, Llama3Scaling>) {
          divisors_from_plan();
        } else if constexpr (std::is_same_v<T, GgmlScaling>) {
          p.freq_scale = to_float(1.0 / s.factor, "factor");
          p.ext_factor = to_float(s.ext_factor, "ext_factor");
          if (s.original_max_position_embeddings > 0)
            p.n_ctx_orig = s.original_max_position_embeddings;
          p.beta_fast = to_float(s.beta_fast, "beta_fast");
          p.beta_slow = to_float(s.beta_slow, "beta_slow");
          for (double f : s.freq_factors) p.freq_factors.push_back(to_float(f, "freq_factors"));
        }
      },
      c.scaling);
  if (p.ext_factor != 0) magnitude /= 1.0 + 0.1 * std::log(1.0 / static_cast<double>(p.freq_scale));
  p.attn_factor = to_float(magnitude, "attention_factor");
  return p;
}

}  // namespace ropekit
