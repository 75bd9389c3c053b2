// `ropekit freqs CONFIG [--layer NAME] [--seq-len N] [--policy hf|mlx-lm] [--json]` and
// `ropekit freqs --initialize-rope KWARGS.json [--json]`: the resolved frequency tables.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli_options.h"
#include "commands.h"
#include "file_io.h"
#include "freq_report.h"
#include "model_source.h"
#include "ropekit/error.h"
#include "ropekit/frequencies.h"
#include "ropekit/mlx_rope.h"
#include "support_common.h"

namespace ropekit::cli {
namespace {

struct FreqsArgs {
  std::string config;
  std::string layer;
  std::optional<std::int64_t> seq_len;
  std::string policy = "hf";
  std::string kwargs;
  std::string arithmetic = "transformers";
  std::string numerics;  // a preset: sets the policy and arithmetic
  bool json = false;
  bool strict = false;
};

nlohmann::json plan_json(const FrequencyPlan& p) {
  nlohmann::json j;
  j["rope_type"] = p.info.rope_type;
  j["head_dim"] = p.head_dim;
  j["rotary_dim"] = p.rotary_dim;
  j["layout"] = layout_name(p.layout);
  nlohmann::json inv = nlohmann::json::array();
  for (const float f : p.inv_freq) inv.push_back(static_cast<double>(f));
  j["inv_freq"] = inv;
  j["attention_factor"] = p.attention_factor;
  j["softmax_scale_multiplier"] = p.info.softmax_scale_multiplier;
  if (p.info.mrope) {
    j["mrope_section"] = p.info.mrope->section;
    j["pair_axis"] = p.pair_axis;
  }
  if (p.info.xdrope) {
    j["xdrope_section"] = p.info.xdrope->section;
    j["pair_axis"] = p.pair_axis;
  }
  if (p.info.seq_len_used > 0) j["seq_len"] = p.info.seq_len_used;
  if (p.ggml) {  // llama.cpp's numerics: the ggml_rope_ext arguments the angles come from
    const GgmlRopeParams& g = *p.ggml;
    nlohmann::json gj;
    gj["mode"] = ggml_mode_name(g.mode);
    gj["n_dims"] = g.n_dims;
    gj["n_ctx_orig"] = g.n_ctx_orig;
    gj["freq_base"] = g.freq_base;
    gj["freq_scale"] = g.freq_scale;
    gj["ext_factor"] = g.ext_factor;
    gj["attn_factor"] = g.attn_factor;
    gj["beta_fast"] = g.beta_fast;
    gj["beta_slow"] = g.beta_slow;
    gj["freq_factors"] = g.freq_factors;
    gj["sections"] = g.sections;
    j["ggml"] = gj;
  }
  return j;
}

void print_plan_text(const std::string& name, const FrequencyPlan& p) {
  fmt::print("[{}] rope_type={} head_dim={} rotary_dim={} layout={} attention_factor={:.9g}", name,
             p.info.rope_type, p.head_dim, p.rotary_dim, layout_name(p.layout), p.attention_factor);
  if (p.info.softmax_scale_multiplier != 1.0)
    fmt::print(" softmax_scale_multiplier={:.9g}", p.info.softmax_scale_multiplier);
  if (p.ggml) {
    const GgmlRopeParams& g = *p.ggml;
    fmt::print(
        "\nggml_rope_ext (llama.cpp numerics): mode={} n_dims={} n_ctx_orig={} freq_base={:.9g} "
        "freq_scale={:.9g} ext_factor={:.9g} attn_factor={:.9g} beta_fast={:.9g} "
        "beta_slow={:.9g} freq_factors={}",
        ggml_mode_name(g.mode), g.n_dims, g.n_ctx_orig, g.freq_base, g.freq_scale, g.ext_factor,
        g.attn_factor, g.beta_fast, g.beta_slow, g.freq_factors.empty() ? "none" : "per pair");
  }
  fmt::print("\n{:>5}  {:>16}  {:>16}\n", "pair", "inv_freq", "wavelength");
  for (std::size_t i = 0; i < p.inv_freq.size(); ++i) {
    const double inv = p.inv_freq[i];
    if (inv > 0)
      fmt::print("{:>5}  {:>16.9g}  {:>16.6g}\n", i, inv, 2.0 * 3.14159265358979323846 / inv);
    else
      fmt::print("{:>5}  {:>16.9g}  {:>16}\n", i, inv, "inf");
  }
}

void run_freqs(const FreqsArgs& a) {
  nlohmann::json out;
  if (!a.kwargs.empty()) {
    const MlxRope r = initialize_rope_from_kwargs(
        read_text_file_bounded(a.kwargs, kMaxTextFileBytes, "--initialize-rope"));
    const FrequencyPlan p = r.plan_for_call(1, 0, r.dims);
    out["model_type"] = "";
    out["layers"]["default"] = plan_json(p);
    nlohmann::json m;
    m["class"] = r.class_name;
    m["rope_type"] = r.rope_type;
    m["dims"] = r.dims;
    m["traditional"] = r.traditional;
    m["base"] = r.base ? nlohmann::json(*r.base) : nlohmann::json(nullptr);
    m["scale"] = r.scale;
    nlohmann::json f = nlohmann::json::array();
    for (const float v : r.freqs)
      f.push_back(std::isinf(v) ? nlohmann::json("inf") : nlohmann::json(static_cast<double>(v)));
    m["freqs"] = r.freqs.empty() ? nlohmann::json(nullptr) : f;
    m["input_prescale"] = r.input_prescale;
    out["mlx"] = m;
    out["warnings"] = nlohmann::json::array();
    if (a.json)
      fmt::print("{}\n", out.dump(2));
    else {
      fmt::print("mlx-lm initialize_rope → {} (type {}), input prescale {:.9g}\n", r.class_name,
                 r.rope_type, r.input_prescale);
      print_plan_text("default", p);
    }
    return;
  }
  ParseOptions po;
  po.strict = a.strict;
  const ModelRope m = load_model_or_config(a.config, po);
  SeqLenPolicy policy = parse_policy(a.policy);
  FrequencyArithmetic arithmetic = parse_arithmetic(a.arithmetic);
  if (!a.numerics.empty()) {
    const Numerics n = *numerics_preset(a.numerics);  // checked by the option
    policy = n.policy;
    arithmetic = n.arithmetic;
  }
  out["model_type"] = m.model_type;
  out["layers"] = nlohmann::json::object();
  for (const auto& layer : m.layers) {
    if (!a.layer.empty() && layer.layer_type != a.layer) continue;
    out["layers"][layer.layer_type] = plan_json(plan_of(layer, a.seq_len, policy, arithmetic));
  }
  if (!a.layer.empty() && out["layers"].empty()) (void)m.layer(a.layer);  // throws, listing names
  nlohmann::json w = nlohmann::json::array();
  for (const auto& x : m.warnings) w.push_back(x.path + ": " + x.message);
  out["warnings"] = w;
  if (a.json) {
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("model_type: {}\n", m.model_type);
  for (const auto& layer : m.layers)
    if (a.layer.empty() || layer.layer_type == a.layer)
      print_plan_text(layer.layer_type, plan_of(layer, a.seq_len, policy, arithmetic));
  for (const auto& x : m.warnings) {
    std::fprintf(stderr, "warning: %s: %s\n", x.path.c_str(), x.message.c_str());
  }
}

}  // namespace

void register_freqs(CLI::App& app) {
  auto args = std::make_shared<FreqsArgs>();
  CLI::App* c = app.add_subcommand(
      "freqs", "Print the inverse frequencies and attention factor of each layer type");
  c->footer(
      "Example: ropekit freqs llama-3.1-8b-instruct --json\n         ropekit freqs "
      "--initialize-rope kwargs.json");
  auto* cfg = c->add_option("config", args->config, "Built-in model name or path to a config.json");
  auto* kw = c->add_option("--initialize-rope", args->kwargs,
                           "JSON file of mlx-lm initialize_rope keyword arguments");
  cfg->excludes(kw);
  c->add_option("--layer", args->layer, "Layer type (e.g. full_attention); default: all");
  c->add_option("--seq-len", args->seq_len,
                "Sequence length (dynamic NTK, LongRoPE); default: initialisation")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40));
  c->add_option("--policy", args->policy, "Sequence-length policy: hf (transformers) or mlx-lm")
      ->check(CLI::IsMember({"hf", "transformers", "mlx-lm", "mlx"}));
  c->add_option(
       "--freq-arithmetic", args->arithmetic,
       "transformers (default: the float32 table transformers builds, as `apply` uses) or exact "
       "(each value rounded once from double) or ggml (exact, plus llama.cpp's ggml_rope_ext "
       "arguments)")
      ->check(CLI::IsMember({"transformers", "exact", "ggml"}));
  c->add_option("--numerics", args->numerics,
                "Preset (sets --policy and --freq-arithmetic): exact, transformers, mlx-lm or "
                "llama.cpp (adds the ggml_rope_ext arguments llama.cpp passes)")
      ->check(numerics_preset_name());
  c->add_flag("--json", args->json, "Machine-readable output");
  c->add_flag("--strict", args->strict, "Treat config warnings as errors");
  c->callback([args, c] {
    if (args->config.empty() && args->kwargs.empty())
      throw CLI::RequiredError("CONFIG or --initialize-rope");
    (void)c;
    run_freqs(*args);
  });
}

}  // namespace ropekit::cli

ROPEKIT_CLI_COMMAND(10, register_freqs)
