// ropekit compare CONFIG MODEL.gguf: the config's RoPE as llama.cpp would need it (what a
// correct conversion writes, docs/gguf.md) against what the file says, setting by setting, then
// the rotations themselves on the same input.
#include "gguf_compare.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <variant>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model_source.h"
#include "number_format.h"
#include "output_diff.h"
#include "ropekit/error.h"
#include "ropekit/frequencies.h"
#include "ropekit/gguf.h"
#include "support_common.h"

namespace ropekit::cli {
namespace {

// The arguments ggml_rope_ext gets for a layer (ropekit/config.h, GgmlScaling), from either side.
struct GgmlArgs {
  double factor = 1.0;
  double ext_factor = 0.0;
  std::int64_t n_ctx_orig = 0;
  double beta_fast = 32.0, beta_slow = 1.0;
  std::string tensors = "none";  // "rope_freqs", "rope_factors", "none"
  std::vector<double> divisors;  // the effective per-pair divisors (1 = none)
  bool truncate = true;
  bool representable = true;  // dynamic NTK has no GGUF form
};

GgmlArgs ggml_args(const RopeConfig& c, const FrequencyPlan& plan) {
  GgmlArgs a;
  const std::vector<double> base = unscaled_inv_freq(c);
  auto divisors_of_plan = [&](double factor) {
    a.divisors.clear();
    for (std::size_t i = 0; i < base.size() && i < plan.inv_freq.size(); ++i)
      a.divisors.push_back(plan.inv_freq[i] > 0 ? base[i] / factor / plan.inv_freq[i] : 0.0);
  };
  std::visit(
      [&](const auto& s) {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, LinearScaling>) {
          a.factor = s.factor;
        } else if constexpr (std::is_same_v<T, DynamicNtkScaling>) {
          a.representable = false;
        } else if constexpr (std::is_same_v<T, YarnScaling>) {
          a.factor = s.factor;
          a.ext_factor = 1.0;
          a.n_ctx_orig = s.original_max_position_embeddings;
          a.beta_fast = s.beta_fast;
          a.beta_slow = s.beta_slow;
          a.truncate = s.truncate;
        } else if constexpr (std::is_same_v<T, LongRopeScaling>) {
          a.tensors = "rope_factors";
          a.n_ctx_orig = s.original_max_position_embeddings;
          divisors_of_plan(1.0);
        } else if constexpr (std::is_same_v<T, Llama3Scaling>) {
          a.tensors = "rope_freqs";
          divisors_of_plan(1.0);
        } else if constexpr (std::is_same_v<T, GgmlScaling>) {
          a.factor = s.factor;
          a.ext_factor = s.ext_factor;
          a.n_ctx_orig = s.original_max_position_embeddings;
          a.beta_fast = s.beta_fast;
          a.beta_slow = s.beta_slow;
          if (!s.freq_factors.empty()) {
            a.tensors = "rope_freqs";
            a.divisors = s.freq_factors;
          }
        }
      },
      c.scaling);
  return a;
}

struct Difference {
  std::string key;  // the GGUF key or tensor
  std::string config, gguf;
  std::string note;
};

bool close(double x, double y, double rel = 1e-6) {
  return std::fabs(x - y) <= rel * std::max(std::fabs(x), std::fabs(y));
}

std::string g(double v) { return format_general(v); }

struct LayerResult {
  const RopeConfig* config = nullptr;
  const RopeConfig* gguf = nullptr;
  FrequencyPlan plan_c, plan_g;
  std::vector<Difference> diffs;
  OutputDiff output;
  std::int64_t first_over = -1;  // first position whose output difference exceeds the tolerance
};

PairLayout layout_in_file_order(const RopeConfig& c, const GgufArchitecture* arch) {
  // The converter permutes q/k of half-split families to llama.cpp's interleaved order.
  if (arch && arch->permuted_from_half && c.layout == PairLayout::kHalf)
    return PairLayout::kInterleaved;
  return c.layout == PairLayout::kInterleavedToHalf ? PairLayout::kInterleaved : c.layout;
}

LayerResult compare_layer(const RopeConfig& c, const RopeConfig& gl, const GgufRopeMetadata& m,
                          const GgufArchitecture* arch, std::int64_t ctx,
                          const GgufCompareOptions& o) {
  LayerResult r;
  r.config = &c;
  r.gguf = &gl;
  r.plan_c = build_frequency_plan(c, ctx);
  r.plan_g = build_frequency_plan(gl, ctx);
  const bool swa = gl.layer_type == "sliding_attention";
  auto key = [&](const char* s) { return m.key(s); };
  auto add = [&](std::string k, std::string a, std::string b, std::string note = "") {
    r.diffs.push_back({std::move(k), std::move(a), std::move(b), std::move(note)});
  };
  if (!close(c.rope_theta, gl.rope_theta))
    add(key(swa ? "rope.freq_base_swa" : "rope.freq_base"), g(c.rope_theta), g(gl.rope_theta));
  if (c.head_dim != gl.head_dim)
    add(key("attention.key_length"), std::to_string(c.head_dim), std::to_string(gl.head_dim));
  if (c.rotary_dim != gl.rotary_dim)
    add(key(swa ? "rope.dimension_count_swa" : "rope.dimension_count"),
        std::to_string(c.rotary_dim), std::to_string(gl.rotary_dim));
  const PairLayout want = layout_in_file_order(c, arch);
  if (want != gl.layout)
    add("general.architecture", std::string(layout_name(want)), std::string(layout_name(gl.layout)),
        "the pair layout comes from the architecture name");
  if (c.mrope.has_value() != gl.mrope.has_value() ||
      (c.mrope &&
       (c.mrope->section != gl.mrope->section || c.mrope->assignment != gl.mrope->assignment)))
    add(key("rope.dimension_sections"), c.mrope ? "M-RoPE" : "none", gl.mrope ? "M-RoPE" : "none");

  const GgmlArgs a = ggml_args(c, r.plan_c), b = ggml_args(gl, r.plan_g);
  if (!a.representable)
    add(key("rope.scaling.type"), scaling_type_name(c.scaling), m.scaling_type.value_or("(absent)"),
        "dynamic NTK has no GGUF form; llama.cpp rotates without it");
  const bool a_yarn = a.ext_factor != 0, b_yarn = b.ext_factor != 0;
  if (a_yarn && !b_yarn)
    add(key("rope.scaling.type"), "yarn", m.scaling_type.value_or("(absent)"),
        "the YaRN block is missing");
  if (!a_yarn && b_yarn)
    add(key("rope.scaling.type"), scaling_type_name(c.scaling), m.scaling_type.value_or("(absent)"),
        "the file applies YaRN the config does not have");
  if (!close(a.factor, b.factor)) add(key("rope.scaling.factor"), g(a.factor), g(b.factor));
  if (a_yarn && b_yarn && !close(a.ext_factor, b.ext_factor))
    add(key("rope.scaling.yarn_ext_factor"), g(a.ext_factor), g(b.ext_factor),
        "must be 1 for YaRN (or absent)");
  if (a_yarn && b_yarn) {
    if (a.n_ctx_orig != b.n_ctx_orig)
      add(key("rope.scaling.original_context_length"), std::to_string(a.n_ctx_orig),
          std::to_string(b.n_ctx_orig));
    if (!close(a.beta_fast, b.beta_fast))
      add(key("rope.scaling.yarn_beta_fast"), g(a.beta_fast), g(b.beta_fast));
    if (!close(a.beta_slow, b.beta_slow))
      add(key("rope.scaling.yarn_beta_slow"), g(a.beta_slow), g(b.beta_slow));
    if (!a.truncate)
      add(key("rope.scaling.yarn_beta_fast"), "truncate false", "ggml truncates",
          "the config's fractional YaRN ramp cannot be written in a GGUF");
  }
  if (a.tensors != b.tensors) {
    const char* want_t = a.tensors == "rope_freqs"     ? "rope_freqs.weight"
                         : a.tensors == "rope_factors" ? "rope_factors_long.weight"
                                                       : nullptr;
    const char* have_t = b.tensors == "rope_freqs"     ? "rope_freqs.weight"
                         : b.tensors == "rope_factors" ? "rope_factors_long.weight"
                                                       : nullptr;
    if (want_t) add(want_t, "expected (" + scaling_type_name(c.scaling) + ")", "missing");
    if (have_t) add(have_t, "not expected", "present");
  } else if (a.tensors != "none") {
    int differing = 0;
    for (std::size_t i = 0; i < a.divisors.size() && i < b.divisors.size(); ++i)
      differing += !close(a.divisors[i], b.divisors[i], 1e-5);
    if (differing)
      add(a.tensors == "rope_freqs" ? "rope_freqs.weight" : "rope_factors_long.weight",
          "config's factors", fmt::format("{} of {} differ", differing, a.divisors.size()));
  }
  if (!close(r.plan_c.attention_factor, r.plan_g.attention_factor, 1e-6))
    // llama.cpp recomputes the YaRN magnitude from the factor (and yarn_attn_factor is read by
    // few architectures): rope.scaling.attn_factor is the key that scales it in every case.
    add(key("rope.scaling.attn_factor"), g(r.plan_c.attention_factor), g(r.plan_g.attention_factor),
        "the cos/sin magnitude");
  if (!close(r.plan_c.info.softmax_scale_multiplier, r.plan_g.info.softmax_scale_multiplier, 1e-6))
    add(key("rope.scaling.yarn_log_multiplier"), g(r.plan_c.info.softmax_scale_multiplier),
        g(r.plan_g.info.softmax_scale_multiplier), "the softmax-scale multiplier");

  // The rotations, the GGUF's in the config's pair order where it is only a permutation.
  FrequencyPlan in_config_order = r.plan_g;
  if (gl.layout == want) in_config_order.layout = r.plan_c.layout;
  const std::int64_t max_pos = o.max_position > 0 ? o.max_position : ctx;
  r.output = compare_outputs({&r.plan_c, AngleMode::kExact}, {&in_config_order, AngleMode::kExact},
                             max_pos);
  for (std::size_t i = 0; i < r.output.position_max_diff.size(); ++i) {
    if (r.output.position_max_diff[i] > o.tolerance) {
      r.first_over = r.output.positions[i];
      break;
    }
  }
  return r;
}

}  // namespace

bool is_gguf_argument(const std::string& arg) {
  std::error_code ec;
  return std::filesystem::is_regular_file(arg, ec) && is_gguf_file(arg);
}

int compare_config_with_gguf(const GgufCompareOptions& o) {
  const ModelRope config = load_model_or_config(o.config);
  GgufRopeMetadata meta;
  try {
    meta = read_gguf_rope_metadata(o.gguf);
  } catch (const ConfigError& e) {
    throw ConfigError(o.gguf + (e.path().empty() ? "" : ": " + e.path()),
                      std::string(e.what()).substr(e.path().empty() ? 0 : e.path().size() + 2));
  }
  const ModelRope file = load_gguf_model(o.gguf);
  const GgufArchitecture* arch = find_gguf_architecture(meta.architecture);
  std::int64_t ctx = 0;
  for (const auto& l : config.layers) ctx = std::max(ctx, l.max_position_embeddings);
  for (const auto& l : file.layers) ctx = std::max(ctx, l.max_position_embeddings);

  std::vector<LayerResult> results;
  for (const RopeConfig& c : config.layers) {
    const RopeConfig* gl = nullptr;
    for (const RopeConfig& l : file.layers)
      if (l.layer_type == c.layer_type) gl = &l;
    if (!gl && file.layers.size() == 1) gl = &file.layers.front();
    if (!gl && c.layer_type == "default") gl = &file.layer("full_attention");
    if (!gl) throw ConfigError(o.gguf, "has no layer type \"" + c.layer_type + "\" to compare");
    results.push_back(compare_layer(c, *gl, meta, arch, ctx, o));
  }
  if (file.layers.size() > config.layers.size() && config.layers.size() == 1) {
    // The file has sliding-window layers the config does not: compare them with the config too.
    for (const RopeConfig& l : file.layers)
      if (l.layer_type == "sliding_attention")
        results.push_back(compare_layer(config.layers.front(), l, meta, arch, ctx, o));
  }
  bool agree = true;
  for (const LayerResult& r : results)
    agree = agree && r.diffs.empty() && r.output.comparable && r.first_over < 0;

  const std::string config_name = o.config, gguf_name = o.gguf;
  if (o.json) {
    nlohmann::ordered_json j{{"config", config_name},
                             {"gguf", gguf_name},
                             {"architecture", meta.architecture},
                             {"agree", agree},
                             {"tolerance", o.tolerance},
                             {"layers", nlohmann::ordered_json::array()}};
    for (const LayerResult& r : results) {
      nlohmann::ordered_json l{{"layer_config", r.config->layer_type},
                               {"layer_gguf", r.gguf->layer_type},
                               {"differences", nlohmann::ordered_json::array()}};
      for (const Difference& d : r.diffs)
        l["differences"].push_back(
            {{"key", d.key}, {"config", d.config}, {"gguf", d.gguf}, {"note", d.note}});
      l["max_abs_difference"] = r.output.max_abs_diff;
      l["at_position"] = r.output.at_position;
      l["first_position_over_tolerance"] =
          r.first_over >= 0 ? nlohmann::ordered_json(r.first_over) : nlohmann::ordered_json();
      j["layers"].push_back(std::move(l));
    }
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("config: {}\nGGUF:   {} (architecture {}, GGUF v{})\n", config_name, gguf_name,
               meta.architecture, meta.version);
    for (const LayerResult& r : results) {
      fmt::print("\nlayer {} vs {}\n", r.config->layer_type, r.gguf->layer_type);
      if (r.diffs.empty()) fmt::print("  settings: the same rotation\n");
      for (const Difference& d : r.diffs)
        fmt::print("  differs: {}: config {}, GGUF {}{}\n", d.key, d.config, d.gguf,
                   d.note.empty() ? "" : " (" + d.note + ")");
      if (!r.output.comparable) {
        fmt::print("  outputs: not compared: {}\n", r.output.reason);
      } else {
        fmt::print("  outputs: largest |config - GGUF| = {} at position {}; ",
                   format_sci(r.output.max_abs_diff), r.output.at_position);
        if (r.first_over >= 0)
          fmt::print("first exceeds {} at position {}\n", format_sci(o.tolerance), r.first_over);
        else
          fmt::print("within {} at every position compared (0 to {})\n", format_sci(o.tolerance),
                     r.output.positions.back());
      }
    }
    fmt::print("\n{}\n", agree ? "agree: the GGUF rotates like the config"
                               : "DISAGREE: the GGUF does not rotate like the config");
  }
  return agree ? 0 : kGgufMismatchExitCode;
}

}  // namespace ropekit::cli
