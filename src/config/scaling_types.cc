// The scaling-type table: per type, its names, the keys it reads, and the parsing and
// validation of its rope parameter dict (transformers' `rope_parameters` or legacy
// `rope_scaling`). Follows transformers' `validate_rope` rules: a missing required
// key is an error; what transformers only warns about and is still computable is a warning.
// Beyond transformers, anything that cannot give a correct rotation (non-finite or
// non-positive factors, factor lists of the wrong length, high_freq_factor < low_freq_factor)
// is an error: a silently wrong rotation is worse than a refusal.
#include <algorithm>
#include <cmath>
#include <set>
#include <variant>

#include "ropekit/hf_config.h"

#include "config/scaling_types.h"
#include "ropekit/frequencies.h"

namespace ropekit::detail {
namespace {

void warn(const ScalingContext& ctx, const std::string& key, const std::string& message) {
  if (ctx.warnings) ctx.warnings->push_back({join_path(ctx.path, key), message});
}

double required_factor(const Json& d, const ScalingContext& ctx) {
  const auto f = get_number(d, "factor", ctx.path);
  if (!f) fail_missing(join_path(ctx.path, "factor"), "a number >= 1 (the scaling factor)");
  check_positive_finite(*f, join_path(ctx.path, "factor"));
  if (*f < 1.0)
    warn(ctx, "factor",
         "factor " + std::to_string(*f) +
             " is below 1 (transformers warns: it shrinks the context)");
  return *f;
}

std::int64_t original_max(const Json& d, const ScalingContext& ctx, bool top_level_wins) {
  const std::string path = join_path(ctx.path, "original_max_position_embeddings");
  if (top_level_wins && ctx.top_level_original_max) return *ctx.top_level_original_max;
  if (const auto v = get_integer(d, "original_max_position_embeddings", ctx.path))
    return check_positive(*v, path);
  if (ctx.top_level_original_max) return *ctx.top_level_original_max;
  // transformers' standardize_rope_params: setdefault(max_position_embeddings)
  return ctx.max_position_embeddings;
}

std::optional<double> optional_positive(const Json& d, const char* key, const ScalingContext& ctx) {
  const auto v = get_number(d, key, ctx.path);
  if (v) check_positive_finite(*v, join_path(ctx.path, key));
  return v;
}

Scaling parse_yarn(const Json& d, const ScalingContext& ctx) {
  YarnScaling y;
  const std::string fpath = join_path(ctx.path, "factor");
  if (!d.contains("factor")) fail_missing(fpath, "a number >= 1 (the YaRN scaling factor)");
  y.original_max_position_embeddings = original_max(d, ctx, false);
  if (const auto f = get_number(d, "factor", ctx.path)) {
    y.factor = check_positive_finite(*f, fpath);
  } else {  // "factor": null → max_position_embeddings / original (transformers)
    y.factor = static_cast<double>(ctx.max_position_embeddings) /
               static_cast<double>(y.original_max_position_embeddings);
  }
  if (y.factor < 1.0) warn(ctx, "factor", "YaRN factor below 1");
  // transformers: `beta_fast or 32`, `beta_slow or 1` — 0 and null take the defaults.
  if (const auto b = get_number(d, "beta_fast", ctx.path); b && *b != 0.0) y.beta_fast = *b;
  if (const auto b = get_number(d, "beta_slow", ctx.path); b && *b != 0.0) y.beta_slow = *b;
  check_positive_finite(y.beta_fast, join_path(ctx.path, "beta_fast"));
  check_positive_finite(y.beta_slow, join_path(ctx.path, "beta_slow"));
  if (y.beta_fast < y.beta_slow)
    warn(ctx, "beta_fast", "beta_fast < beta_slow: the correction range is reversed");
  y.mscale = get_number(d, "mscale", ctx.path);
  y.mscale_all_dim = get_number(d, "mscale_all_dim", ctx.path);
  y.attention_factor = optional_positive(d, "attention_factor", ctx);
  if (!y.attention_factor && y.mscale.value_or(0.0) != 0.0 &&
      y.mscale_all_dim.value_or(0.0) != 0.0) {
    // g(s, m) = 0.1·m·ln(s) + 1 must stay positive for the ratio to be a magnitude.
    const double num = yarn_mscale(y.factor, *y.mscale),
                 den = yarn_mscale(y.factor, *y.mscale_all_dim);
    if (!(std::isfinite(num) && num > 0))
      throw ConfigError(
          join_path(ctx.path, "mscale"),
          "expected an mscale giving a positive magnitude 0.1·mscale·ln(factor) + 1, got " +
              std::to_string(*y.mscale) + " (magnitude " + std::to_string(num) + ")");
    if (!(std::isfinite(den) && den > 0))
      throw ConfigError(join_path(ctx.path, "mscale_all_dim"),
                        "expected an mscale_all_dim giving a positive magnitude "
                        "0.1·mscale_all_dim·ln(factor) + 1, got " +
                            std::to_string(*y.mscale_all_dim) + " (magnitude " +
                            std::to_string(den) + ")");
  }
  if (y.mscale_all_dim.value_or(0.0) != 0.0 && !(yarn_mscale(y.factor, *y.mscale_all_dim) > 0))
    throw ConfigError(join_path(ctx.path, "mscale_all_dim"),
                      "expected a value giving a positive softmax-scale correction, got " +
                          std::to_string(*y.mscale_all_dim));
  if (const auto t = get_bool(d, "truncate", ctx.path)) y.truncate = *t;
  const double implied = static_cast<double>(ctx.max_position_embeddings) /
                         static_cast<double>(y.original_max_position_embeddings);
  if (d.contains("original_max_position_embeddings") && implied != 1.0 && implied != y.factor)
    warn(ctx, "factor",
         "max_position_embeddings / original_max_position_embeddings = " + std::to_string(implied) +
             " differs from factor " + std::to_string(y.factor) + "; using the explicit factor");
  return y;
}

Scaling parse_longrope(const Json& d, const ScalingContext& ctx) {
  LongRopeScaling l;
  const auto pairs = static_cast<std::size_t>(ctx.rotary_dim / 2);
  l.short_factor = get_factor_list(d, "short_factor", ctx.path, pairs);
  l.long_factor = get_factor_list(d, "long_factor", ctx.path, pairs);
  // Phi-3's config class: the top-level attribute wins over the dict.
  l.original_max_position_embeddings = original_max(d, ctx, true);
  l.factor = optional_positive(d, "factor", ctx);
  l.attention_factor = optional_positive(d, "attention_factor", ctx);
  if (!l.factor && l.original_max_position_embeddings != ctx.max_position_embeddings)
    warn(ctx, "original_max_position_embeddings",
         "no `factor`: using max_position_embeddings / original_max_position_embeddings = " +
             std::to_string(static_cast<double>(ctx.max_position_embeddings) /
                            static_cast<double>(l.original_max_position_embeddings)) +
             " as the scaling factor (transformers recommends setting `factor`)");
  if (l.factor && *l.factor < 1.0) warn(ctx, "factor", "longrope factor below 1");
  return l;
}

Scaling parse_llama3(const Json& d, const ScalingContext& ctx) {
  Llama3Scaling l;
  l.factor = required_factor(d, ctx);
  const auto low = get_number(d, "low_freq_factor", ctx.path);
  const auto high = get_number(d, "high_freq_factor", ctx.path);
  if (!low) fail_missing(join_path(ctx.path, "low_freq_factor"), "a number > 0");
  if (!high) fail_missing(join_path(ctx.path, "high_freq_factor"), "a number > 0");
  l.low_freq_factor = check_positive_finite(*low, join_path(ctx.path, "low_freq_factor"));
  l.high_freq_factor = check_positive_finite(*high, join_path(ctx.path, "high_freq_factor"));
  if (l.high_freq_factor < l.low_freq_factor)
    throw ConfigError(join_path(ctx.path, "high_freq_factor"),
                      "expected high_freq_factor >= low_freq_factor (" +
                          std::to_string(l.low_freq_factor) + "), got " +
                          std::to_string(l.high_freq_factor));
  if (l.high_freq_factor == l.low_freq_factor)
    warn(ctx, "high_freq_factor",
         "high_freq_factor == low_freq_factor: no blended band (Llama 4 ships this; harmless)");
  if (!d.contains("original_max_position_embeddings") ||
      d["original_max_position_embeddings"].is_null())
    fail_missing(join_path(ctx.path, "original_max_position_embeddings"), "an integer > 0");
  l.original_max_position_embeddings = original_max(d, ctx, false);
  if (l.original_max_position_embeddings >= ctx.max_position_embeddings)
    warn(ctx, "original_max_position_embeddings",
         "original_max_position_embeddings >= max_position_embeddings: no context extension");
  return l;
}

Scaling parse_default(const Json&, const ScalingContext&) { return DefaultScaling{}; }
Scaling parse_linear(const Json& d, const ScalingContext& ctx) {
  return LinearScaling{required_factor(d, ctx)};
}
Scaling parse_dynamic(const Json& d, const ScalingContext& ctx) {
  // NTK-alpha dicts may omit `factor` (HunyuanOCR's rope_parameters): it only matters past
  // max_position_embeddings, where transformers' plain dynamic formula takes it (default 1).
  const bool alpha_only = d.contains("alpha") && !d.contains("factor");
  DynamicNtkScaling s{alpha_only ? 1.0 : required_factor(d, ctx), std::nullopt};
  s.alpha = optional_positive(d, "alpha", ctx);  // HunYuan's NTK-alpha
  return s;
}
Scaling parse_proportional(const Json& d, const ScalingContext& ctx) {
  ProportionalScaling p;
  if (const auto f = get_number(d, "factor", ctx.path))
    p.factor = check_positive_finite(*f, join_path(ctx.path, "factor"));
  return p;
}

// ggml's arguments as keys (what a GGUF file resolves to; written by hand only for tests).
Scaling parse_ggml(const Json& d, const ScalingContext& ctx) {
  GgmlScaling g;
  auto positive = [&](const char* key, double& out) {
    if (const auto v = get_number(d, key, ctx.path))
      out = check_positive_finite(*v, join_path(ctx.path, key));
  };
  positive("factor", g.factor);
  positive("beta_fast", g.beta_fast);
  positive("beta_slow", g.beta_slow);
  positive("attention_factor", g.attention_factor);
  if (const auto v = get_number(d, "ext_factor", ctx.path)) {
    g.ext_factor = check_finite(*v, join_path(ctx.path, "ext_factor"));
    if (g.ext_factor < 0) fail(join_path(ctx.path, "ext_factor"), "a number >= 0", Json(*v));
  }
  if (const auto v = get_integer(d, "original_max_position_embeddings", ctx.path))
    g.original_max_position_embeddings =
        check_positive(*v, join_path(ctx.path, "original_max_position_embeddings"));
  else if (g.ext_factor != 0)
    fail_missing(join_path(ctx.path, "original_max_position_embeddings"), "an integer > 0");
  if (find(d, "freq_factors"))
    g.freq_factors =
        get_factor_list(d, "freq_factors", ctx.path, static_cast<std::size_t>(ctx.rotary_dim / 2));
  return g;
}

// Keys every type may carry (read by the config front-end, not by the type's parser).
const std::set<std::string>& common_keys() {
  static const std::set<std::string> keys = {
      "rope_type",         "type",   "rope_theta",    "partial_rotary_factor", "mrope_section",
      "mrope_interleaved", "factor", "xdrope_section"};
  return keys;
}

const ScalingType* find_type(const std::string& name) {
  for (const ScalingType& t : scaling_types())
    if (name == t.name) return &t;
  return nullptr;
}

}  // namespace

const std::vector<ScalingType>& scaling_types() {
  // transformers' names, Phi-3's legacy "su", the multimodal "mrope" (plain frequencies plus
  // position rows) and mlx-lm's YaRN aliases.
  static const std::vector<ScalingType> rows = {
      {"default", {{"mrope", "default + position rows"}}, {}, parse_default},
      {"linear", {}, {}, parse_linear},
      {"dynamic", {{"xdrope", "dynamic + XD-RoPE position rows"}}, {"alpha"}, parse_dynamic},
      {"yarn",
       {{"deepseek_yarn", "yarn"}, {"telechat3-yarn", "yarn"}},
       {"original_max_position_embeddings", "beta_fast", "beta_slow", "mscale", "mscale_all_dim",
        "attention_factor", "truncate"},
       parse_yarn},
      {"longrope",
       {{"su", "longrope"}},
       {"short_factor", "long_factor", "attention_factor", "original_max_position_embeddings",
        "short_mscale", "long_mscale"},
       parse_longrope},
      {"llama3",
       {},
       {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"},
       parse_llama3},
      {"proportional", {}, {}, parse_proportional},
      {"ggml",
       {},
       {"ext_factor", "original_max_position_embeddings", "beta_fast", "beta_slow",
        "attention_factor", "freq_factors"},
       parse_ggml},
  };
  static_assert(std::variant_size_v<Scaling> == 8, "one row per alternative of Scaling");
  return rows;
}

std::string canonical_rope_type(const std::string& type, const std::string& path) {
  for (const ScalingType& t : scaling_types()) {
    if (type == t.name) return t.name;
    for (const auto& [alias, meaning] : t.aliases)
      if (type == alias) return t.name;
  }
  std::string list;
  for (const auto& t : supported_rope_types()) list += (list.empty() ? "" : ", ") + t;
  throw ConfigError(path,
                    "unknown rope type \"" + detail::excerpt(type) + "\"; supported: " + list);
}

bool is_known_rope_key(const std::string& canonical_type, const std::string& key) {
  if (common_keys().count(key)) return true;
  const ScalingType* t = find_type(canonical_type);
  return t && std::find(t->keys.begin(), t->keys.end(), key) != t->keys.end();
}

Scaling parse_scaling(const Json& d, const ScalingContext& ctx) {
  const ScalingType* t = find_type(ctx.rope_type);
  if (!t) throw ConfigError(ctx.path, "unhandled rope type " + ctx.rope_type);
  return t->parse(d, ctx);
}

}  // namespace ropekit::detail

namespace ropekit {

std::string scaling_type_name(const Scaling& s) { return detail::scaling_types()[s.index()].name; }

const std::vector<std::string>& supported_rope_types() {
  static const std::vector<std::string> types = [] {
    std::vector<std::string> names, aliases;
    for (const auto& t : detail::scaling_types()) {
      names.emplace_back(t.name);
      for (const auto& [alias, meaning] : t.aliases)
        aliases.push_back(alias + " (= " + meaning + ")");
    }
    names.insert(names.end(), aliases.begin(), aliases.end());
    return names;
  }();
  return types;
}

}  // namespace ropekit
