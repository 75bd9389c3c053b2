// Config → FrequencyPlan: hand the scaling to its type's builder (freq/<type>.cc, chosen by
// overload resolution: nothing here names a type), round each inverse frequency to float32 once.
#include <cmath>
#include <variant>

#include "freq/freq_math.h"
#include "ropekit/error.h"

namespace ropekit {

namespace {
void check_config(const RopeConfig& c) {
  if (c.head_dim <= 0 || c.head_dim % 2 != 0)
    throw ConfigError("head_dim", "expected an even number > 0, got " + std::to_string(c.head_dim));
  if (c.rotary_dim <= 0 || c.rotary_dim % 2 != 0 || c.rotary_dim > c.head_dim)
    throw ConfigError("rotary_dim",
                      "expected an even number in [2, head_dim = " + std::to_string(c.head_dim) +
                          "], got " + std::to_string(c.rotary_dim));
  if (!(std::isfinite(c.rope_theta) && c.rope_theta > 1.0))
    throw ConfigError("rope_theta",
                      "expected a finite number > 1, got " + std::to_string(c.rope_theta));
  if (c.max_position_embeddings <= 0)
    throw ConfigError("max_position_embeddings",
                      "expected an integer > 0, got " + std::to_string(c.max_position_embeddings));
}
}  // namespace

std::vector<double> unscaled_inv_freq(const RopeConfig& config) {
  check_config(config);
  if (config.vision2d) {  // 2-D vision RoPE: its own (unscaled) per-pair frequencies
    std::vector<std::uint8_t> axis;
    return detail::vision_2d_frequencies(config, *config.vision2d, {}, axis).inv_freq;
  }
  if (std::holds_alternative<ProportionalScaling>(config.scaling))
    return detail::base_inv_freq(config.rope_theta, config.head_dim);
  return detail::base_inv_freq(config.rope_theta, config.rotary_dim);
}

FrequencyPlan build_frequency_plan(const RopeConfig& c, std::optional<std::int64_t> seq_len,
                                   SeqLenPolicy policy, FrequencyArithmetic arithmetic) {
  check_config(c);
  if (seq_len && *seq_len <= 0)
    throw ArgumentError("seq_len: expected a length > 0, got " + std::to_string(*seq_len));
  // llama.cpp has no "initialisation" plan: its context is n_ctx, by default the trained
  // context (LongRoPE's factor set is chosen by it).
  if (arithmetic == FrequencyArithmetic::kGgml && !seq_len) seq_len = c.max_position_embeddings;
  const detail::PlanRequest request{seq_len, policy, arithmetic};
  std::vector<std::uint8_t> vision_axis;
  const detail::PairFrequencies f =
      c.vision2d ? detail::vision_2d_frequencies(c, *c.vision2d, request, vision_axis)
                 : std::visit([&](const auto& s) { return detail::frequencies(c, s, request); },
                              c.scaling);

  FrequencyPlan p;
  p.info.rope_type = scaling_type_name(c.scaling);
  p.head_dim = c.head_dim;
  p.rotary_dim = 2 * static_cast<int>(f.inv_freq.size());
  p.layout = c.layout;
  p.inv_freq.reserve(f.inv_freq.size());
  const std::vector<float>& hf = f.transformers_inv_freq;
  for (std::size_t i = 0; i < f.inv_freq.size(); ++i) {
    if (!hf.empty()) {
      if (!std::isfinite(hf[i]) || hf[i] < 0)
        throw ConfigError("rope_parameters",
                          "frequency " + std::to_string(i) + " is not finite and >= 0");
      p.inv_freq.push_back(hf[i]);
      continue;
    }
    const double v = f.inv_freq[i];
    // Checked after rounding too: a finite double beyond float32's range becomes inf.
    if (!std::isfinite(v) || v < 0 || !std::isfinite(static_cast<float>(v)))
      throw ConfigError("rope_parameters", "frequency " + std::to_string(i) +
                                               " is not finite and >= 0 (" + std::to_string(v) +
                                               "); the parameters cannot give a rotation");
    p.inv_freq.push_back(static_cast<float>(v));
  }
  if (!(std::isfinite(f.attention_factor) && f.attention_factor > 0))
    throw ConfigError("attention_factor",
                      "expected a finite number > 0, got " + std::to_string(f.attention_factor));
  p.attention_factor = f.attention_factor;
  p.info.softmax_scale_multiplier = f.softmax_scale_multiplier;
  p.info.mrope = c.mrope;
  if (c.mrope) {
    p.pair_axis = detail::mrope_pair_axes(*c.mrope, p.rotary_dim / 2);
    p.position_rows = 3;
  }
  p.info.xdrope = c.xdrope;
  p.info.vision2d = c.vision2d;
  if (c.vision2d) {
    p.pair_axis = std::move(vision_axis);
    p.position_rows = 2;
  }
  if (c.xdrope) {
    p.pair_axis = detail::xdrope_pair_axes(*c.xdrope, p.rotary_dim / 2);
    p.position_rows = static_cast<int>(c.xdrope->section.size());
  }
  p.hf_rounds_once = c.hf_rounds_once;
  p.info.seq_len_used = seq_len.value_or(0);
  p.info.effective_theta = f.effective_theta;
  p.info.uses_long_factor = f.uses_long_factor;
  if (arithmetic == FrequencyArithmetic::kGgml) p.ggml = ggml_rope_params(c, seq_len);
  return p;
}

}  // namespace ropekit
