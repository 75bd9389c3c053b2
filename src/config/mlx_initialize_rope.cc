// mlx-lm's `initialize_rope` (mlx_lm/models/rope_utils.py at d78bf58e, v0.32.0), with its
// semantics: the front-end that reads its keyword arguments and scaling_config (JSON) with
// mlx-lm's defaults and checks; the frequencies themselves are computed in freq/mlx_rope.cc,
// from the same papers as the transformers builders. What differs (docs/variants.md):
//   * type precedence: "type" first, then "rope_type" (transformers: the reverse);
//   * linear scales positions (scale = 1/factor) instead of inv_freq;
//   * llama3 defaults low 1, high 4, original 8192; strict band edges; works on periods;
//   * yarn always floors/ceils (ignores truncate), ignores attention_factor, defaults
//     original_max_position_embeddings to 4096, puts mscale on x instead of cos/sin;
//   * longrope always uses long_factor, prescale sqrt(1 + ln(max/orig)/ln(orig)), ignores
//     `traditional`;
//   * dynamic NTK recomputes the base from every call's length + offset.
#include <cmath>
#include <limits>
#include <numbers>

#include "config/json_access.h"
#include "freq/mlx_rope_math.h"
#include "ropekit/error.h"
#include "ropekit/frequencies.h"
#include "ropekit/mlx_rope.h"

namespace ropekit {

using detail::get_number;
using detail::Json;

namespace {

double required(const Json& cfg, const char* key, const std::string& type) {
  const auto v = get_number(cfg, key, "scaling_config");
  if (!v)
    throw ConfigError(
        std::string("scaling_config.") + key,
        "required key is missing for mlx-lm rope type \"" + type + "\" (mlx-lm raises KeyError)");
  return *v;
}

double optional_or(const Json& cfg, const char* key, double dflt) {
  return get_number(cfg, key, "scaling_config").value_or(dflt);
}

}  // namespace

MlxRope initialize_rope(int dims, double base, bool traditional, std::string_view scaling_json,
                        std::optional<std::int64_t> max_position_embeddings) {
  if (dims <= 0 || dims % 2 != 0 || dims > (1 << 20))
    throw ConfigError("dims",
                      "expected an even number > 0 (mx.fast.rope), got " + std::to_string(dims));
  if (!(std::isfinite(base) && base > 1.0))
    throw ConfigError("base", "expected a finite number > 1, got " + std::to_string(base));
  // MLX rounds fast.rope's base to float32: a larger base would become inf there.
  if (base > std::numeric_limits<float>::max())
    throw ConfigError(
        "base",
        "expected at most float32's maximum 3.4028235e38 (MLX rounds the base to float32), got " +
            std::to_string(base));
  constexpr int kMaxDepth = 64;
  const Json cfg = detail::parse_json_document(scaling_json, kMaxDepth, "scaling_config");
  if (!cfg.is_null() && !cfg.is_object()) detail::fail("scaling_config", "an object or null", cfg);

  MlxRope r;
  r.dims = dims;
  r.traditional = traditional;
  r.max_position_embeddings = max_position_embeddings;
  // rope_type = scaling_config.get("type") or scaling_config.get("rope_type", "default")
  std::string type = "default";
  if (cfg.is_object()) {
    const Json* t = detail::find(cfg, "type");
    if (t && t->is_string() && !t->get<std::string>().empty()) {
      type = t->get<std::string>();
    } else if (const Json* rt = detail::find(cfg, "rope_type")) {
      if (!rt->is_string()) detail::fail("scaling_config.rope_type", "a string", *rt);
      type = rt->get<std::string>();
    }
  }
  r.rope_type = type;
  const Json empty = Json::object();
  const Json& c = cfg.is_object() ? cfg : empty;

  if (type == "default" || type == "linear") {
    r.class_name = "RoPE";
    r.base = base;
    if (type == "linear")
      r.scale =
          1.0 / detail::check_positive_finite(required(c, "factor", type), "scaling_config.factor");
    return r;
  }
  if (type == "mrope") {
    const Json* sec = detail::find(c, "mrope_section");
    if (!sec || !sec->is_array() || sec->size() != 3)
      throw ConfigError("scaling_config.mrope_section",
                        "MRoPE currently only supports 3 sections, got " +
                            (sec && sec->is_array() ? std::to_string(sec->size())
                                                    : detail::describe(sec ? *sec : Json())));
    r.class_name = "RoPE";
    r.base = base;
    return r;
  }
  if (type == "dynamic") {
    r.class_name = "DynamicNTKScalingRoPE";
    r.dynamic = true;
    r.dynamic_factor =
        detail::check_positive_finite(required(c, "factor", type), "scaling_config.factor");
    r.base = base;
    if (!max_position_embeddings)
      throw ConfigError(
          "max_position_embeddings",
          "DynamicNTKScalingRoPE needs max_position_embeddings (mlx-lm: TypeError at call)");
    if (dims <= 2)
      throw ConfigError("dims", "dynamic NTK needs dims > 2, got " + std::to_string(dims));
    return r;
  }
  if (type == "llama3") {
    r.class_name = "Llama3RoPE";
    const double factor =
        detail::check_positive_finite(required(c, "factor", type), "scaling_config.factor");
    const double low = optional_or(c, "low_freq_factor", 1.0);
    const double high = optional_or(c, "high_freq_factor", 4.0);
    const double old = optional_or(c, "original_max_position_embeddings", 8192.0);
    r.freqs = detail::mlx_llama3_freqs(base, dims, factor, low, high, old);
    return r;
  }
  if (type == "yarn" || type == "deepseek_yarn" || type == "telechat3-yarn") {
    r.class_name = "YarnRoPE";
    const double factor =
        detail::check_positive_finite(required(c, "factor", type), "scaling_config.factor");
    const double orig = optional_or(c, "original_max_position_embeddings", 4096.0);
    const double beta_fast = optional_or(c, "beta_fast", 32.0);
    const double beta_slow = optional_or(c, "beta_slow", 1.0);
    const double mscale = optional_or(c, "mscale", 1.0);
    const double mscale_all_dim = optional_or(c, "mscale_all_dim", 0.0);
    // mlx-lm divides by the betas (ZeroDivisionError for 0) and takes their logarithm.
    detail::check_positive_finite(beta_fast, "scaling_config.beta_fast");
    detail::check_positive_finite(beta_slow, "scaling_config.beta_slow");
    detail::check_positive_finite(orig, "scaling_config.original_max_position_embeddings");
    r.freqs = detail::mlx_yarn_freqs(base, dims, factor, orig, beta_fast, beta_slow);
    r.input_prescale = yarn_mscale(factor, mscale) / yarn_mscale(factor, mscale_all_dim);
    if (!(std::isfinite(r.input_prescale) && r.input_prescale > 0))
      throw ConfigError("scaling_config.mscale",
                        "expected mscale and mscale_all_dim giving a positive magnitude "
                        "(0.1·m·ln(factor) + 1 > 0), got a prescale of " +
                            std::to_string(r.input_prescale));
    for (const float f : r.freqs)
      if (!(std::isfinite(f) && f > 0))
        throw ConfigError("scaling_config",
                          "the YaRN parameters give a non-finite period; check factor and betas");
    return r;
  }
  if (type == "longrope") {
    r.class_name = "SuScaledRoPE";
    r.traditional = false;  // SuScaledRoPE hard-codes traditional=False
    const double orig = required(c, "original_max_position_embeddings", type);
    detail::check_positive_finite(orig, "scaling_config.original_max_position_embeddings");
    if (!max_position_embeddings)
      throw ConfigError("max_position_embeddings",
                        "SuScaledRoPE needs max_position_embeddings (mlx-lm: TypeError)");
    const auto pairs = static_cast<std::size_t>(dims / 2);
    if (!detail::find(c, "short_factor"))
      throw ConfigError("scaling_config.short_factor",
                        "required key is missing (mlx-lm raises KeyError)");
    (void)detail::get_factor_list(c, "short_factor", "scaling_config", pairs);
    const auto long_factor = detail::get_factor_list(c, "long_factor", "scaling_config", pairs);
    r.freqs = detail::mlx_longrope_freqs(base, dims, long_factor);
    r.input_prescale = detail::mlx_longrope_prescale(*max_position_embeddings, orig);
    return r;
  }
  if (type == "proportional") {
    r.class_name = "ProportionalRoPE";
    const double prf = optional_or(c, "partial_rotary_factor", 1.0);
    const double factor =
        detail::check_positive_finite(optional_or(c, "factor", 1.0), "scaling_config.factor");
    const int rotated = static_cast<int>(dims * prf);
    if (rotated > dims)
      throw ConfigError("scaling_config.partial_rotary_factor",
                        "rotated_dims should be smaller than dims");
    if (rotated < 0)
      throw ConfigError("scaling_config.partial_rotary_factor", "expected a factor >= 0");
    r.freqs = detail::mlx_proportional_freqs(base, dims, rotated, factor);
    return r;
  }
  throw ConfigError("scaling_config.type",
                    "Unsupported RoPE type " + detail::excerpt(type) +
                        " (mlx-lm supports default, linear, dynamic, llama3, "
                        "yarn, deepseek_yarn, telechat3-yarn, longrope, "
                        "proportional, mrope)");
}

MlxRope initialize_rope_from_kwargs(std::string_view kwargs_json) {
  constexpr int kMaxDepth = 64;
  const Json k = detail::parse_json_document(kwargs_json, kMaxDepth);
  if (!k.is_object()) detail::fail("", "an object of initialize_rope keyword arguments", k);
  const auto dims = detail::get_integer(k, "dims", "");
  if (!dims) detail::fail_missing("dims", "an even integer > 0");
  if (*dims <= 0 || *dims > (1 << 20)) detail::fail("dims", "an even integer > 0", Json(*dims));
  const double base = get_number(k, "base", "").value_or(10000.0);
  const bool traditional = detail::get_bool(k, "traditional", "").value_or(false);
  const std::string scaling = k.contains("scaling_config") ? k["scaling_config"].dump() : "null";
  const auto max_pos = detail::get_integer(k, "max_position_embeddings", "");
  if (max_pos) detail::check_positive(*max_pos, "max_position_embeddings");
  return initialize_rope(static_cast<int>(*dims), base, traditional, scaling, max_pos);
}

}  // namespace ropekit
