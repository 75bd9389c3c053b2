// ropekit plot A [B ...] -o FILE.svg|FILE.png: wavelength (log scale) against frequency index.
#include <map>
#include <memory>
#include <numbers>
#include <set>

#include <fmt/format.h>

#include "cli_options.h"
#include "commands.h"
#include "file_io.h"
#include "freq_report.h"
#include "model_source.h"
#include "png_export.h"
#include "ropekit/error.h"
#include "svg_plot.h"

namespace ropekit::cli {
namespace {

struct PlotOptions {
  std::vector<std::string> models;
  std::string output;
  PlanOptions plan;
  bool no_unscaled = false;
  std::string title;
  double png_scale = 1.0;
};

void run_plot(const PlotOptions& o) {
  auto ends_with = [&](const char* ext) {
    return o.output.size() >= 4 && o.output.compare(o.output.size() - 4, 4, ext) == 0;
  };
  const bool png = ends_with(".png");
  if (!png && !ends_with(".svg")) {
    throw ArgumentError("-o: expected a file name ending in .svg or .png, got '" + echo(o.output) +
                        "'");
  }
  if (png && !png_supported()) write_png_from_svg("", o.output);  // throws: how to get PNG
  PlotSpec spec;
  spec.title = o.title.empty() ? "RoPE wavelength per frequency" : o.title;
  // One reference line per distinct context length; its tooltip names every curve it belongs
  // to, its visible label only the kinds ("original", "extended"), which stays short.
  std::map<std::int64_t, std::vector<std::string>> lines;
  std::map<std::int64_t, std::set<std::string>> kinds;
  int color = 0;
  for (const std::string& arg : o.models) {
    const ModelRope model = load_model_or_config(arg);
    for (const RopeConfig* c : select_layers(model, o.plan.layer)) {
      const LayerReport r = build_layer_report(*c, o.plan.seq_len, parse_policy(o.plan.policy));
      const std::string label =
          model.layers.size() > 1 ? display_name(arg) + ":" + c->layer_type : display_name(arg);
      PlotSeries scaled{label, {}, false, color};
      PlotSeries unscaled{label + " (unscaled)", {}, true, color};
      for (const FrequencyRow& row : r.rows) {
        scaled.wavelength.push_back(row.wavelength);
        unscaled.wavelength.push_back(2.0 * std::numbers::pi / row.unscaled_inv_freq);
      }
      spec.series.push_back(std::move(scaled));
      // Plain RoPE has nothing beside it to show: its unscaled curve is the curve.
      const bool changed =
          r.plan.info.rope_type != "default" || r.plan.info.effective_theta != c->rope_theta;
      if (!o.no_unscaled && changed) spec.series.push_back(std::move(unscaled));
      lines[r.original_context].push_back("original " + label);
      kinds[r.original_context].insert("original");
      if (r.extended_context != r.original_context) {
        lines[r.extended_context].push_back("extended " + label);
        kinds[r.extended_context].insert("extended");
      }
      ++color;
    }
  }
  for (const auto& [tokens, who] : lines) {
    // std::set orders "extended" before "original"; either order reads fine.
    spec.lines.push_back({static_cast<double>(tokens),
                          fmt::format("{} tokens: {}", tokens, fmt::join(who, ", ")),
                          fmt::format("{} {}", tokens, fmt::join(kinds[tokens], "/"))});
  }
  if (png) {
    write_png_from_svg(render_svg(spec), o.output, o.png_scale);
  } else {
    write_file_atomic(o.output, render_svg(spec));
  }
  fmt::print("wrote {} ({} curve(s))\n", o.output, spec.series.size());
}

}  // namespace

void register_plot(CLI::App& app) {
  auto o = std::make_shared<PlotOptions>();
  CLI::App* sub = app.add_subcommand(
      "plot", "SVG chart of wavelength (log scale) against frequency index, per model or layer");
  sub->add_option("models", o->models, "Built-in model names or config.json paths")
      ->required()
      ->expected(1, -1);
  sub->add_option("-o,--output", o->output,
                  png_supported() ? "Output file (.svg, or .png rendered with librsvg)"
                                  : "Output file (.svg)")
      ->required();
  sub->add_option("--png-scale", o->png_scale,
                  "PNG only: pixels per SVG unit (2 for high-DPI screens)")
      ->check(finite_range(0.25, 8.0, "a number in [0.25, 8]"));
  add_plan_options(*sub, o->plan);
  sub->add_flag("--no-unscaled", o->no_unscaled, "Leave out the dashed unscaled curves");
  sub->add_option("--title", o->title, "Chart title");
  sub->footer(
      "Each model (each layer type, for per-layer models) is one solid curve; a dashed curve of\n"
      "the same colour shows plain RoPE with the same theta. Dotted horizontal lines mark the\n"
      "original and extended context lengths: pairs whose wavelength lies above the original\n"
      "context never completed a full turn in training.\n\n"
      "Examples:\n"
      "  ropekit plot llama-3.1-8b-instruct -o llama.svg\n"
      "  ropekit plot llama-3.1-8b-instruct -o llama.png --png-scale 2\n"
      "  ropekit plot llama-3.1-8b-instruct qwen2.5-7b-instruct-yarn gpt-oss-20b -o cmp.svg");
  sub->callback([o] { run_plot(*o); });
}

}  // namespace ropekit::cli

ROPEKIT_CLI_COMMAND(50, register_plot)
