// ropekit compare A [B]: where two RoPE setups differ and by how much. A and B are models or
// configs, or one of them under two policies or angle modes: "does my port match?".
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_options.h"
#include "commands.h"
#include "file_io.h"
#include "freq_report.h"
#include "gguf_compare.h"
#include "model_source.h"
#include "number_format.h"
#include "output_diff.h"
#include "ropekit/error.h"
#include "text_table.h"

namespace ropekit::cli {
namespace {

struct SideOptions {
  PlanOptions plan;
  std::string angles = "exact";
};

struct CompareOptions {
  std::string a, b;  // b empty: the same model as a
  SideOptions side_a, side_b;
  std::int64_t max_position = 0;  // 0: the larger extended context of the two
  double tolerance = 0;
  bool json = false;
};

struct Side {
  std::string label;
  ModelRope model;
  SideOptions opts;
};

struct PairResult {
  LayerReport a, b;
  std::vector<int> differing;  // pair indices whose inv_freq differ by more than the tolerance
  double max_rel_diff = 0;
  int max_rel_index = -1;
  OutputDiff output;
};

double rel_diff(double x, double y) {
  if (x == y) return 0;
  const double scale = std::max(std::fabs(x), std::fabs(y));
  return scale > 0 ? std::fabs(x - y) / scale : 0;
}

std::string side_text(const Side& s) {
  return fmt::format("{} (policy {}, angles {}{})", s.label, s.opts.plan.policy, s.opts.angles,
                     s.opts.plan.seq_len ? fmt::format(", seq_len {}", *s.opts.plan.seq_len) : "");
}

// Pairs the layers of A with those of B: same layer type name, or the only layer of B; when A
// has one layer and B several (none of the same name), A's layer against each of B's.
std::vector<std::pair<const RopeConfig*, const RopeConfig*>> match_layers(const Side& a,
                                                                          const Side& b) {
  std::vector<std::pair<const RopeConfig*, const RopeConfig*>> out;
  const std::vector<const RopeConfig*> as = select_layers(a.model, a.opts.plan.layer);
  if (as.size() == 1 && b.opts.plan.layer.empty() && b.model.layers.size() > 1) {
    bool named = false;
    for (const RopeConfig& c : b.model.layers) named |= c.layer_type == as.front()->layer_type;
    if (!named) {
      for (const RopeConfig& c : b.model.layers) out.emplace_back(as.front(), &c);
      return out;
    }
  }
  for (const RopeConfig* la : as) {
    if (!b.opts.plan.layer.empty()) {
      out.emplace_back(la, &b.model.layer(b.opts.plan.layer));
      continue;
    }
    const RopeConfig* lb = nullptr;
    for (const RopeConfig& c : b.model.layers) {
      if (c.layer_type == la->layer_type) lb = &c;
    }
    if (lb == nullptr && b.model.layers.size() == 1) lb = &b.model.layers.front();
    if (lb == nullptr) {
      throw ArgumentError(fmt::format("B has no layer '{}' to compare with; choose with --layer-b",
                                      echo(la->layer_type)));
    }
    out.emplace_back(la, lb);
  }
  return out;
}

PairResult compare_pair(const Side& sa, const RopeConfig& ca, const Side& sb, const RopeConfig& cb,
                        const CompareOptions& o) {
  PairResult r{build_layer_report(ca, sa.opts.plan.seq_len, parse_policy(sa.opts.plan.policy)),
               build_layer_report(cb, sb.opts.plan.seq_len, parse_policy(sb.opts.plan.policy)),
               {},
               0,
               -1,
               {}};
  const std::size_t n = std::min(r.a.rows.size(), r.b.rows.size());
  for (std::size_t i = 0; i < n; ++i) {
    const double d = rel_diff(r.a.rows[i].inv_freq, r.b.rows[i].inv_freq);
    if (d > o.tolerance) r.differing.push_back(static_cast<int>(i));
    if (d > r.max_rel_diff) r.max_rel_diff = d, r.max_rel_index = static_cast<int>(i);
  }
  const std::int64_t max_pos =
      o.max_position > 0 ? o.max_position : std::max(r.a.extended_context, r.b.extended_context);
  r.output = compare_outputs({&r.a.plan, parse_angles(sa.opts.angles)},
                             {&r.b.plan, parse_angles(sb.opts.angles)}, max_pos);
  return r;
}

void print_text(const Side& a, const Side& b, const std::vector<PairResult>& results) {
  fmt::print("A: {}\nB: {}\n", side_text(a), side_text(b));
  for (const PairResult& r : results) {
    const RopeConfig& ca = *r.a.config;
    const RopeConfig& cb = *r.b.config;
    fmt::print("\nlayer {} vs {}\n", ca.layer_type, cb.layer_type);
    auto field = [](const std::string& name, const std::string& x, const std::string& y) {
      fmt::print("  {:<18}{:<24}{}{}\n", name, x, y, x == y ? "" : "   <- differs");
    };
    field("rope_type", r.a.plan.info.rope_type, r.b.plan.info.rope_type);
    field("head_dim", std::to_string(ca.head_dim), std::to_string(cb.head_dim));
    field("rotary_dim", std::to_string(ca.rotary_dim), std::to_string(cb.rotary_dim));
    field("layout", std::string(layout_name(ca.layout)), std::string(layout_name(cb.layout)));
    field("rope_theta", format_general(ca.rope_theta), format_general(cb.rope_theta));
    field("attention_factor", format_general(r.a.plan.attention_factor),
          format_general(r.b.plan.attention_factor));
    // DeepSeek's YaRN moves its magnitude into the softmax scale, which the rotation never sees.
    field("softmax_scale_x", format_general(r.a.plan.info.softmax_scale_multiplier),
          format_general(r.b.plan.info.softmax_scale_multiplier));
    const std::size_t na = r.a.rows.size(), nb = r.b.rows.size();
    if (na != nb)
      fmt::print("  pairs differ in number: {} vs {} (the first {} compared)\n", na, nb,
                 std::min(na, nb));
    if (r.differing.empty()) {
      fmt::print("  inv_freq: identical over {} pairs\n", std::min(na, nb));
    } else {
      fmt::print("  inv_freq: {} of {} pairs differ; largest relative difference {} at pair {}\n",
                 r.differing.size(), std::min(na, nb), format_sci(r.max_rel_diff), r.max_rel_index);
      TextTable t;
      t.add_column("index");
      t.add_column("inv_freq A");
      t.add_column("inv_freq B");
      t.add_column("B / A");
      t.add_column("wavelength A");
      t.add_column("wavelength B");
      for (int i : r.differing) {
        const FrequencyRow& x = r.a.rows[static_cast<std::size_t>(i)];
        const FrequencyRow& y = r.b.rows[static_cast<std::size_t>(i)];
        t.add_row({std::to_string(i), format_sci(x.inv_freq), format_sci(y.inv_freq),
                   format_fixed(x.inv_freq > 0 ? y.inv_freq / x.inv_freq
                                               : std::numeric_limits<double>::quiet_NaN(),
                                6),
                   format_fixed(x.wavelength, 1), format_fixed(y.wavelength, 1)});
      }
      fmt::print("{}", t.render("    "));
    }
    const OutputDiff& d = r.output;
    if (!d.comparable) {
      fmt::print("  outputs: not compared: {}\n", d.reason);
    } else {
      fmt::print(
          "  outputs: largest |A - B| = {} at position {} (feature {}); |A| up to {}; "
          "{} positions in [0, {}]\n",
          format_sci(d.max_abs_diff), d.at_position, d.at_feature, format_fixed(d.max_abs_value, 3),
          d.positions.size(), d.positions.back());
      if (ca.layout != cb.layout) {
        fmt::print(
            "  note: the pair layouts differ, so outputs differ element-wise even where "
            "the rotation is the same\n");
      }
    }
  }
}

void print_json(const Side& a, const Side& b, const std::vector<PairResult>& results) {
  auto side_json = [](const Side& s) {
    return nlohmann::ordered_json{
        {"model", s.label},
        {"policy", s.opts.plan.policy},
        {"angles", s.opts.angles},
        {"seq_len", s.opts.plan.seq_len ? nlohmann::ordered_json(*s.opts.plan.seq_len)
                                        : nlohmann::ordered_json()}};
  };
  nlohmann::ordered_json j{
      {"a", side_json(a)}, {"b", side_json(b)}, {"layers", nlohmann::ordered_json::array()}};
  for (const PairResult& r : results) {
    nlohmann::ordered_json l;
    l["layer_a"] = r.a.config->layer_type;
    l["layer_b"] = r.b.config->layer_type;
    l["pairs_a"] = r.a.rows.size();
    l["pairs_b"] = r.b.rows.size();
    l["attention_factor_a"] = r.a.plan.attention_factor;
    l["attention_factor_b"] = r.b.plan.attention_factor;
    l["softmax_scale_multiplier_a"] = r.a.plan.info.softmax_scale_multiplier;
    l["softmax_scale_multiplier_b"] = r.b.plan.info.softmax_scale_multiplier;
    l["identical_frequencies"] = r.differing.empty() && r.a.rows.size() == r.b.rows.size();
    l["max_relative_inv_freq_difference"] = r.max_rel_diff;
    l["differing"] = nlohmann::ordered_json::array();
    for (int i : r.differing) {
      l["differing"].push_back({{"index", i},
                                {"inv_freq_a", r.a.rows[static_cast<std::size_t>(i)].inv_freq},
                                {"inv_freq_b", r.b.rows[static_cast<std::size_t>(i)].inv_freq}});
    }
    const OutputDiff& d = r.output;
    nlohmann::ordered_json out{{"comparable", d.comparable}};
    if (d.comparable) {
      out["max_abs_difference"] = d.max_abs_diff;
      out["max_abs_value"] = d.max_abs_value;
      out["at_position"] = d.at_position;
      out["at_feature"] = d.at_feature;
      out["positions"] = d.positions;
    } else {
      out["reason"] = d.reason;
    }
    l["output"] = std::move(out);
    j["layers"].push_back(std::move(l));
  }
  fmt::print("{}\n", j.dump(2));
}

void run_compare(CompareOptions o, const CLI::App& sub) {
  if (!o.b.empty() && is_gguf_argument(o.a) != is_gguf_argument(o.b)) {
    // A config and a GGUF file (either order): gguf_compare.cc; exits 3 when they disagree.
    GgufCompareOptions g;
    g.gguf_first = is_gguf_argument(o.a);
    g.config = g.gguf_first ? o.b : o.a;
    g.gguf = g.gguf_first ? o.a : o.b;
    g.max_position = o.max_position;
    if (sub.get_option("--tolerance")->count() > 0) g.tolerance = o.tolerance;
    g.json = o.json;
    const int rc = compare_config_with_gguf(g);
    std::fflush(stdout);
    if (rc != 0) std::exit(rc);
    return;
  }
  // Every B option left unset copies A's, so `compare X --policy-b mlx-lm` changes one thing.
  auto copy_if_unset = [&](const char* name, auto& b_value, const auto& a_value) {
    if (sub.get_option(name)->count() == 0) b_value = a_value;
  };
  copy_if_unset("--layer-b", o.side_b.plan.layer, o.side_a.plan.layer);
  copy_if_unset("--seq-len-b", o.side_b.plan.seq_len, o.side_a.plan.seq_len);
  copy_if_unset("--policy-b", o.side_b.plan.policy, o.side_a.plan.policy);
  copy_if_unset("--angles-b", o.side_b.angles, o.side_a.angles);
  const std::string b_name = o.b.empty() ? o.a : o.b;
  Side a{display_name(o.a), load_model_or_config(o.a), o.side_a};
  Side b{display_name(b_name), load_model_or_config(b_name), o.side_b};
  std::vector<PairResult> results;
  for (const auto& [ca, cb] : match_layers(a, b))
    results.push_back(compare_pair(a, *ca, b, *cb, o));
  if (o.json) {
    print_json(a, b, results);
  } else {
    print_text(a, b, results);
  }
}

}  // namespace

void register_compare(CLI::App& app) {
  auto o = std::make_shared<CompareOptions>();
  CLI::App* sub = app.add_subcommand(
      "compare",
      "Where two RoPE setups differ: frequency tables and the largest output difference");
  sub->add_option("a", o->a, "Model name or config.json path (side A)")->required();
  sub->add_option("b", o->b, "Model name or config.json path (side B); default: A again");
  add_plan_options(*sub, o->side_a.plan);
  add_plan_options(*sub, o->side_b.plan, "-b");
  sub->add_option("--angles", o->side_a.angles,
                  "Angle arithmetic: exact (true math) or hf (float32 product, as transformers)")
      ->check(CLI::IsMember({"exact", "hf"}));
  sub->add_option("--angles-b", o->side_b.angles, "Angle arithmetic of side B (default: as A)")
      ->check(CLI::IsMember({"exact", "hf"}));
  sub->add_option("--max-position", o->max_position,
                  "Largest position of the output comparison (default: the larger extended "
                  "context of A and B)")
      ->check(CLI::Range(std::int64_t{1}, kMaxAbsPosition));
  sub->add_option("--tolerance", o->tolerance,
                  "Relative inv_freq difference below which pairs count as equal (default 0)")
      ->check(finite_range(0, std::numeric_limits<double>::max(), "a finite number >= 0"));
  sub->add_flag("--json", o->json, "Print JSON for scripts");
  sub->footer(
      "The output comparison rotates the same input (2 heads, float32) with A and B at 64\n"
      "positions from 0 to --max-position, attention factor included, and reports the largest\n"
      "element-wise difference.\n\n"
      "Examples:\n"
      "  ropekit compare llama-3.1-8b-instruct llama-3.2-3b-instruct\n"
      "  ropekit compare phi-3.5-mini-instruct --seq-len 8192 --policy-b mlx-lm\n"
      "  ropekit compare qwen2.5-7b-instruct-yarn --angles hf --angles-b exact\n"
      "  ropekit compare my-port/config.json llama-3.1-8b-instruct --json\n"
      "  ropekit compare config.json model.gguf   (exit 3 when the GGUF rotates differently;\n"
      "                                            --tolerance: output difference, default 1e-4)");
  CLI::App* self = sub;
  sub->callback([o, self] { run_compare(*o, *self); });
}

}  // namespace ropekit::cli

ROPEKIT_CLI_COMMAND(40, register_compare)
