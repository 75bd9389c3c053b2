// ropekit show MODEL|CONFIG: the resolved parameters, warnings and per-frequency table.
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "cli_options.h"
#include "commands.h"
#include "freq_report.h"
#include "model_source.h"
#include "number_format.h"
#include "ropekit/error.h"
#include "ropekit/ggml_rope.h"
#include "text_table.h"

namespace ropekit::cli {
namespace {

struct ShowOptions {
  std::string model;
  PlanOptions plan;
  bool json = false;
  bool csv = false;
};

// JSON numbers must be finite; NaN/inf (no unscaled value, inv_freq 0) become null.
nlohmann::ordered_json number(double v) {
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json();
}

std::string rotary_text(const RopeConfig& c) {
  if (c.rotary_dim == c.head_dim) return fmt::format("{} (all features)", c.rotary_dim);
  return fmt::format("{} of {} features (partial_rotary_factor {})", c.rotary_dim, c.head_dim,
                     format_general(c.partial_rotary_factor));
}

std::string layout_text(const RopeConfig& c) {
  const int half = c.rotary_dim / 2;
  switch (c.layout) {
    case PairLayout::kHalf:
      return fmt::format("half (neox: pair i = x[i], x[i+{}])", half);
    case PairLayout::kInterleaved:
      return "interleaved (GPT-J: pair i = x[2i], x[2i+1])";
    case PairLayout::kInterleavedToHalf:
      return "interleaved_to_half (reads x[2i], x[2i+1], writes them de-interleaved)";
  }
  return "?";
}

std::string mrope_text(const MRopeSpec& m) {
  const char* kind = m.assignment == MRopeAssignment::kSections         ? "sections"
                     : m.assignment == MRopeAssignment::kInterleavedThw ? "interleaved T/H/W"
                                                                        : "ERNIE H/W then T";
  return fmt::format("[{}, {}, {}] ({})", m.section[0], m.section[1], m.section[2], kind);
}

// What llama.cpp passes to ggml_rope_ext for the layer (the llama.cpp numerics preset computes
// its angles from these; ropekit/ggml_rope.h), or why ggml has no form for it.
std::optional<GgmlRopeParams> llama_cpp_params(const RopeConfig& c,
                                               std::optional<std::int64_t> seq_len,
                                               std::string& why) {
  try {
    return ggml_rope_params(c, seq_len);
  } catch (const Error& e) {
    why = e.what();
    return std::nullopt;
  }
}

std::string llama_cpp_text(const RopeConfig& c, std::optional<std::int64_t> seq_len) {
  std::string why;
  const auto g = llama_cpp_params(c, seq_len, why);
  if (!g) return "no ggml form (" + why + ")";
  std::string t =
      fmt::format("{}, n_dims {}, freq_base {}, freq_scale {}", ggml_mode_name(g->mode), g->n_dims,
                  format_general(g->freq_base), format_general(g->freq_scale));
  if (g->ext_factor != 0)
    t += fmt::format(", ext_factor {}, n_ctx_orig {}, beta {}/{}", format_general(g->ext_factor),
                     g->n_ctx_orig, format_general(g->beta_fast), format_general(g->beta_slow));
  t += fmt::format(", attn_factor {}", format_general(g->attn_factor));
  if (!g->freq_factors.empty()) t += ", freq_factors (per pair)";
  return t;
}

TextTable frequency_table(const LayerReport& r, bool with_layer_column) {
  TextTable t;
  if (with_layer_column) t.add_column("layer", TextTable::Align::kLeft);
  t.add_column("index");
  t.add_column("inv_freq");
  t.add_column("unscaled_inv_freq");
  t.add_column("wavelength");
  t.add_column("ratio");
  if (has_bands(*r.config)) t.add_column("band", TextTable::Align::kLeft);
  t.add_column(fmt::format("turns_in_{}", r.original_context));
  for (const FrequencyRow& row : r.rows) {
    std::vector<std::string> cells;
    if (with_layer_column) cells.push_back(r.config->layer_type);
    cells.push_back(std::to_string(row.index));
    cells.push_back(format_sci(row.inv_freq));
    cells.push_back(format_sci(row.unscaled_inv_freq));
    cells.push_back(format_fixed(row.wavelength, 1));
    cells.push_back(format_fixed(row.ratio, 6));
    if (has_bands(*r.config)) cells.emplace_back(band_name(row.band));
    cells.push_back(format_fixed(row.turns, 1));
    t.add_row(std::move(cells));
  }
  return t;
}

// "12 of 48 layers skip RoPE (NoPE): 3, 7, 11, ..." (0-based layer indices).
std::string nope_text(const ModelRope& model) {
  std::vector<std::size_t> nope;
  for (std::size_t i = 0; i < model.layer_uses_rope.size(); ++i)
    if (!model.layer_uses_rope[i]) nope.push_back(i);
  if (nope.empty())
    return fmt::format("none of {} layers (all rotate)", model.layer_uses_rope.size());
  std::string list;
  for (std::size_t k = 0; k < nope.size() && k < 8; ++k)
    list += (k ? ", " : "") + std::to_string(nope[k]);
  if (nope.size() > 8) list += ", ...";
  return fmt::format("{} of {} layers skip RoPE: {} (0-based)", nope.size(),
                     model.layer_uses_rope.size(), list);
}

// "43 decoder layers: main ×3 (0, 1, 42), compress ×40 (2, 3, 4, 5, ...)": which RoPE layer
// type each decoder layer uses, for models with several (Gemma 3, DeepSeek-V4).
std::string layer_map_text(const ModelRope& model) {
  std::string out = fmt::format("{} decoder layers:", model.layer_types.size());
  for (const RopeConfig& l : model.layers) {
    std::vector<std::size_t> idx;
    for (std::size_t i = 0; i < model.layer_types.size(); ++i)
      if (model.layer_types[i] == l.layer_type) idx.push_back(i);
    if (idx.empty()) continue;
    std::string list;
    for (std::size_t k = 0; k < idx.size() && k < 4; ++k)
      list += (k ? ", " : "") + std::to_string(idx[k]);
    if (idx.size() > 4) list += ", ...";
    out += fmt::format(" {} ×{} ({})", l.layer_type, idx.size(), list);
  }
  return out;
}

// The decoder layers that scale their queries, and the formula with the config's values.
std::vector<std::size_t> query_scale_layers(const ModelRope& model) {
  std::vector<std::size_t> layers;
  for (std::size_t i = 0; i < model.layer_scales_queries.size(); ++i)
    if (model.layer_scales_queries[i]) layers.push_back(i);
  return layers;
}

std::string query_scale_text(const ModelRope& model) {
  const QueryPositionScale& q = *model.query_scale;
  const std::vector<std::size_t> layers = query_scale_layers(model);
  std::string list;
  for (std::size_t k = 0; k < layers.size() && k < 8; ++k)
    list += (k ? ", " : "") + std::to_string(layers[k]);
  if (layers.size() > 8) list += ", ...";
  const std::string where =
      model.layer_scales_queries.empty()
          ? std::string("the NoPE layers (the config does not list them)")
          : fmt::format("{} of {} layers: {}", layers.size(), model.layer_scales_queries.size(),
                        layers.empty() ? std::string("none") : list + " (0-based)");
  return fmt::format("q × (1 + {}·ln(1 + floor((p + {}) / {}))){} on {}",
                     format_general(q.attn_scale), q.position_offset, format_general(q.floor_scale),
                     q.scale_in_query_dtype ? " (scale rounded to q's dtype)" : "", where);
}

void print_text(const ShowOptions& o, const ModelRope& model,
                const std::vector<LayerReport>& reports) {
  fmt::print("{}\n",
             key_value("model", fmt::format("{} (model_type {})", display_name(o.model),
                                            model.model_type.empty() ? "?" : model.model_type)));
  if (model.warnings.empty()) {
    fmt::print("{}\n", key_value("warnings", "none"));
  } else {
    for (const ConfigWarning& w : model.warnings) {
      fmt::print("{}\n",
                 key_value("warning", w.path.empty() ? w.message : w.path + ": " + w.message));
    }
  }
  if (!model.layer_uses_rope.empty())
    fmt::print("{}\n", key_value("nope_layers", nope_text(model)));
  if (model.query_scale) fmt::print("{}\n", key_value("query_scale", query_scale_text(model)));
  if (model.layers.size() > 1 && !model.layer_types.empty())
    fmt::print("{}\n", key_value("layer_types", layer_map_text(model)));
  for (const LayerReport& r : reports) {
    const RopeConfig& c = *r.config;
    const FrequencyPlan& p = r.plan;
    fmt::print("\n{}\n", key_value("layer", c.layer_type));
    fmt::print("{}\n", key_value("rope_type", p.info.rope_type));
    fmt::print("{}\n", key_value("rope_theta", format_general(c.rope_theta)));
    if (p.info.effective_theta != 0 && p.info.effective_theta != c.rope_theta) {
      fmt::print("{}\n", key_value("effective_theta", format_general(p.info.effective_theta)));
    }
    fmt::print("{}\n", key_value("head_dim", std::to_string(c.head_dim)));
    fmt::print("{}\n", key_value("rotary_dim", rotary_text(c)));
    fmt::print("{}\n", key_value("layout", layout_text(c)));
    if (c.mrope) fmt::print("{}\n", key_value("mrope_section", mrope_text(*c.mrope)));
    if (c.xdrope) {
      fmt::print("{}\n",
                 key_value("xdrope_section", fmt::format("[{}] (run j of pairs: position row j)",
                                                         fmt::join(c.xdrope->section, ", "))));
    }
    if (c.vision2d) {
      const int q = c.head_dim / 4;
      const char* kind = c.vision2d->kind == Vision2dKind::kPixtral  ? "pixtral"
                         : c.vision2d->kind == Vision2dKind::kQwenVl ? "qwen-vl"
                                                                     : "llama4";
      const bool column_first = c.vision2d->kind == Vision2dKind::kLlama4;
      fmt::print("{}\n",
                 key_value("vision_2d", fmt::format("{}: pairs 0-{} {}, pairs {}-{} {}", kind,
                                                    q - 1, column_first ? "column" : "row", q,
                                                    2 * q - 1, column_first ? "row" : "column")));
    }
    if (const auto* d = std::get_if<DynamicNtkScaling>(&c.scaling); d && d->alpha) {
      fmt::print("{}\n", key_value("alpha", format_general(*d->alpha) +
                                                " (NTK-alpha: theta·alpha^(h/(h−2)))"));
    }
    fmt::print("{}\n", key_value("attention_factor", format_general(p.attention_factor)));
    fmt::print("{}\n", key_value("llama_cpp", llama_cpp_text(c, o.plan.seq_len)));
    if (p.info.softmax_scale_multiplier != 1.0) {
      fmt::print("{}\n",
                 key_value("softmax_scale_x", format_general(p.info.softmax_scale_multiplier)));
    }
    if (r.factor) fmt::print("{}\n", key_value("factor", format_general(*r.factor)));
    fmt::print("{}\n", key_value("context",
                                 fmt::format("original {}, extended {}, max_position_embeddings {}",
                                             r.original_context, r.extended_context,
                                             c.max_position_embeddings)));
    fmt::print("{}\n", key_value("seq_len",
                                 o.plan.seq_len
                                     ? fmt::format("{} (policy {})", *o.plan.seq_len, o.plan.policy)
                                     : std::string("none (values at initialisation)")));
    if (std::holds_alternative<LongRopeScaling>(c.scaling)) {
      fmt::print("{}\n",
                 key_value("factor_set", p.info.uses_long_factor ? "long_factor" : "short_factor"));
    }
    fmt::print("\n{}", frequency_table(r, false).render("  "));
  }
}

void print_json(const ShowOptions& o, const ModelRope& model,
                const std::vector<LayerReport>& reports) {
  nlohmann::ordered_json j;
  j["model"] = display_name(o.model);
  j["model_type"] = model.model_type;
  j["warnings"] = nlohmann::ordered_json::array();
  for (const ConfigWarning& w : model.warnings)
    j["warnings"].push_back({{"path", w.path}, {"message", w.message}});
  // Decoder layers that apply no rotation at all (Llama 4 / SmolLM3 NoPE), by layer index.
  j["nope_layers"] = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < model.layer_uses_rope.size(); ++i)
    if (!model.layer_uses_rope[i]) j["nope_layers"].push_back(i);
  // The RoPE layer type of each decoder layer, when the config says (Gemma 3, DeepSeek-V4).
  j["layer_types"] = model.layer_types;
  // Llama 4's attention-temperature tuning: the formula's constants and the layers applying it.
  j["query_scale"] = nlohmann::ordered_json();
  if (model.query_scale)
    j["query_scale"] = {{"floor_scale", model.query_scale->floor_scale},
                        {"attn_scale", model.query_scale->attn_scale},
                        {"position_offset", model.query_scale->position_offset},
                        {"scale_in_query_dtype", model.query_scale->scale_in_query_dtype},
                        {"layers", query_scale_layers(model)}};
  j["seq_len"] =
      o.plan.seq_len ? nlohmann::ordered_json(*o.plan.seq_len) : nlohmann::ordered_json();
  j["policy"] = o.plan.policy;
  j["layers"] = nlohmann::ordered_json::array();
  for (const LayerReport& r : reports) {
    const RopeConfig& c = *r.config;
    const FrequencyPlan& p = r.plan;
    nlohmann::ordered_json l;
    l["layer"] = c.layer_type;
    l["rope_type"] = p.info.rope_type;
    l["rope_theta"] = c.rope_theta;
    l["effective_theta"] = p.info.effective_theta;
    l["head_dim"] = c.head_dim;
    l["rotary_dim"] = c.rotary_dim;
    l["layout"] = std::string(layout_name(c.layout));
    l["attention_factor"] = p.attention_factor;
    l["softmax_scale_multiplier"] = p.info.softmax_scale_multiplier;
    l["factor"] = r.factor ? nlohmann::ordered_json(*r.factor) : nlohmann::ordered_json();
    l["original_context"] = r.original_context;
    l["extended_context"] = r.extended_context;
    l["max_position_embeddings"] = c.max_position_embeddings;
    if (c.mrope) l["mrope_section"] = c.mrope->section;
    if (c.xdrope) l["xdrope_section"] = c.xdrope->section;
    if (c.vision2d) l["position_rows"] = p.position_rows, l["pair_axis"] = p.pair_axis;
    if (const auto* d = std::get_if<DynamicNtkScaling>(&c.scaling); d && d->alpha)
      l["alpha"] = *d->alpha;
    {
      std::string why;
      if (const auto g = llama_cpp_params(c, o.plan.seq_len, why)) {
        l["llama_cpp"] = {{"mode", ggml_mode_name(g->mode)}, {"n_dims", g->n_dims},
                          {"n_ctx_orig", g->n_ctx_orig},     {"freq_base", g->freq_base},
                          {"freq_scale", g->freq_scale},     {"ext_factor", g->ext_factor},
                          {"attn_factor", g->attn_factor},   {"beta_fast", g->beta_fast},
                          {"beta_slow", g->beta_slow},       {"freq_factors", g->freq_factors},
                          {"sections", g->sections}};
      } else {
        l["llama_cpp"] = {{"error", why}};
      }
    }
    l["frequencies"] = nlohmann::ordered_json::array();
    for (const FrequencyRow& row : r.rows) {
      nlohmann::ordered_json f{
          {"index", row.index},
          {"inv_freq", row.inv_freq},
          {"unscaled_inv_freq", number(row.unscaled_inv_freq)},
          {"wavelength", number(row.wavelength)},
          {"ratio", number(row.ratio)},
          {"band", row.band == Band::kNone ? nlohmann::ordered_json()
                                           : nlohmann::ordered_json(band_name(row.band))},
          {"turns_in_original_context", number(row.turns)}};
      l["frequencies"].push_back(std::move(f));
    }
    j["layers"].push_back(std::move(l));
  }
  fmt::print("{}\n", j.dump(2));
}

void print_csv(const std::vector<LayerReport>& reports) {
  // One table for all layers, with a layer column, so a spreadsheet gets a single sheet. The
  // turns header names no length there (layers may differ); the layer's JSON gives it.
  TextTable t;
  t.add_column("layer", TextTable::Align::kLeft);
  for (const char* h : {"index", "inv_freq", "unscaled_inv_freq", "wavelength", "ratio", "band",
                        "original_context", "turns_in_original_context"}) {
    t.add_column(h);
  }
  for (const LayerReport& r : reports) {
    for (const FrequencyRow& row : r.rows) {
      t.add_row({r.config->layer_type, std::to_string(row.index), fmt::format("{}", row.inv_freq),
                 format_general(row.unscaled_inv_freq), format_general(row.wavelength),
                 format_general(row.ratio), std::string(band_name(row.band)),
                 std::to_string(r.original_context), format_general(row.turns)});
    }
  }
  fmt::print("{}", t.render_csv());
}

void run_show(const ShowOptions& o) {
  const ModelRope model = load_model_or_config(o.model);
  std::vector<LayerReport> reports;
  for (const RopeConfig* c : select_layers(model, o.plan.layer)) {
    reports.push_back(build_layer_report(*c, o.plan.seq_len, parse_policy(o.plan.policy)));
  }
  if (o.json) {
    print_json(o, model, reports);
  } else if (o.csv) {
    print_csv(reports);
  } else {
    print_text(o, model, reports);
  }
}

}  // namespace

void register_show(CLI::App& app) {
  auto o = std::make_shared<ShowOptions>();
  CLI::App* sub = app.add_subcommand(
      "show", "Resolved RoPE parameters, warnings and the per-frequency table of a model");
  sub->add_option("model", o->model, "Built-in model name (ropekit models) or config.json path")
      ->required();
  add_plan_options(*sub, o->plan);
  CLI::Option* json = sub->add_flag("--json", o->json, "Print JSON for scripts");
  sub->add_flag("--csv", o->csv, "Print CSV for spreadsheets")->excludes(json);
  sub->footer(
      "Columns: inv_freq (radians per token, as apply_rope uses it), unscaled_inv_freq\n"
      "(theta^(-2i/rotary_dim)), wavelength (tokens per turn), ratio (scaled / unscaled),\n"
      "band (YaRN / Llama 3: kept, interpolated or blended) and the full turns the unscaled\n"
      "frequency completes within the original training context.\n\n"
      "Examples:\n"
      "  ropekit show llama-3.1-8b-instruct\n"
      "  ropekit show gemma-3-4b-text --layer full_attention --json\n"
      "  ropekit show phi-3.5-mini-instruct --seq-len 8192 --csv > phi.csv");
  sub->callback([o] { run_show(*o); });
}

}  // namespace ropekit::cli

ROPEKIT_CLI_COMMAND(30, register_show)
