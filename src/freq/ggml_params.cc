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
  if (c.layout == PairLayout::kInterleavedToHalf)
    throw ConfigError("layout", "the de-interleaving pair layout has no ggml mode");
  if (c.xdrope) throw ConfigError("xdrope_section", "XD-RoPE has no ggml mode");
  if (c.vision2d) {
    // llama.cpp's Qwen-VL vision towers (clip): GGML_ROPE_TYPE_VISION over head_dim/2 dims, the
    // first head_dim/4 pairs on the patch row, the next on the column, theta restarting.
    if (c.vision2d->kind != Vision2dKind::kQwenVl || c.head_dim % 4 != 0)
      throw ConfigError("vision_config",
                        "only the Qwen-VL 2-D vision RoPE has a ggml mode (VISION)");
    p.mode = GgmlRopeMode::kVision;
    p.n_dims = c.head_dim / 2;
    const int q = c.head_dim / 4;
    p.sections = {q, q, q, q};
    p.attn_factor = 1.0f;
    return p;
  }
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
          // NTK-alpha (HunYuan): llama.cpp's hunyuan-vl / hunyuan-dense loader
          // (load_arch_hparams) bakes alpha into freq_base in float32:
          // base · powf(alpha, dim / (dim − 2)) with dim = the head width. Plain dynamic NTK
          // has no GGUF form (llama.cpp rotates such models without it).
          if (!s.alpha)
            throw ConfigError("rope_scaling.rope_type",
                              "dynamic NTK has no ggml form (llama.cpp cannot express it)");
          const float dim = static_cast<float>(c.head_dim);
          p.freq_base = p.freq_base * std::pow(to_float(*s.alpha, "alpha"), dim / (dim - 2.0f));
          magnitude = 1.0;
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
  p.attn_factor = to_float(magnitude, "attention_factor");
  // llama.cpp's context set-up cancels ggml's built-in YaRN term in float32
  // (cparams.yarn_attn_factor *= 1.0f / (1.0f + 0.1f * logf(factor))).
  if (p.ext_factor != 0) {
    const float factor = 1.0f / p.freq_scale;
    p.attn_factor *= 1.0f / (1.0f + 0.1f * std::log(factor));
  }
  return p;
}

}  // namespace ropekit
