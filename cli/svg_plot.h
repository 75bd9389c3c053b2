// Internal to the ropekit command: a self-contained SVG line chart of wavelength (log scale)
// against frequency index. No fonts, scripts or external references: it opens in any browser.
#pragma once

#include <string>
#include <vector>

namespace ropekit::cli {

struct PlotSeries {
  std::string label;  // legend text, e.g. "llama-3.1-8b-instruct"
  std::vector<double>
      wavelength;         // tokens per turn, one per pair index; inf/NaN/<=0 break the line
  bool unscaled = false;  // drawn dashed: the plain-RoPE curve beside a scaled one
  int color = 0;          // palette index; a scaled curve and its unscaled twin share it
};

struct ReferenceLine {
  double tokens = 0;        // a context length, drawn as a horizontal line at that wavelength
  std::string label;        // full text (tooltip), e.g. "8192 tokens: original llama-3.1-8b"
  std::string short_label;  // drawn beside the line, e.g. "8192 original"; "" = label
};

struct PlotSpec {
  std::string title;
  std::vector<PlotSeries> series;
  std::vector<ReferenceLine> lines;
};

// Each curve is a <g class="series" data-kind="scaled|unscaled" data-label="..."> holding one
// <polyline> per unbroken run of points, so scripts (and tests) can count and identify curves.
std::string render_svg(const PlotSpec& spec);

// Escapes &, <, >, " and ' for XML text and attribute values.
std::string xml_escape(const std::string& s);

}  // namespace ropekit::cli
