#include "svg_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace ropekit::cli {
namespace {

// Chart geometry in SVG user units. The plot area has a fixed size; the legend sits right of it
// (so long model names never cover the curves) and the image widens to fit the longest label.
constexpr double kPlotW = 640, kPlotH = 440;
constexpr double kLeft = 96, kTop = 48, kBottom = 64;
constexpr double kHeight = kTop + kPlotH + kBottom;
constexpr double kCharWidth = 7.0;  // generous average advance of a 12px sans-serif character

// Tableau 10: distinct for the usual handful of curves and readable for most colour vision.
constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
constexpr int kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

bool usable(double w) { return std::isfinite(w) && w > 0; }

// "1", "10", "100", "1k", "10k", "100k", "1M", ... for the powers of ten on the y axis.
std::string power_label(int e) {
  static const char* const kSuffix[] = {"", "k", "M", "G", "T", "P"};
  if (e < 0) return fmt::format("1e{}", e);
  const int group = std::min(e / 3, 5);
  const int rest = e - 3 * group;
  return fmt::format("{}{}", rest == 0 ? "1" : rest == 1 ? "10" : "100", kSuffix[group]);
}

}  // namespace

namespace {

// Decodes one UTF-8 sequence at s[i]: the code point and its length, or -1 when the bytes there
// are not valid UTF-8 (a stray continuation byte, a truncated or overlong sequence, a surrogate,
// beyond U+10FFFF).
long decode_utf8(const std::string& s, std::size_t i, std::size_t& len) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  len = 1;
  if (c < 0x80) return c;
  long cp = 0;
  long min = 0;
  if ((c & 0xE0) == 0xC0)
    len = 2, cp = c & 0x1F, min = 0x80;
  else if ((c & 0xF0) == 0xE0)
    len = 3, cp = c & 0x0F, min = 0x800;
  else if ((c & 0xF8) == 0xF0)
    len = 4, cp = c & 0x07, min = 0x10000;
  else
    return len = 1, -1;
  if (i + len > s.size()) return len = 1, -1;
  for (std::size_t k = 1; k < len; ++k) {
    if ((b(k) & 0xC0) != 0x80) return len = 1, -1;
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return len = 1, -1;
  return cp;
}

// Characters XML 1.0 allows: tab, line feed, carriage return, and U+0020 up, less U+FFFE/FFFF.
bool xml_char(long cp) {
  return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp != 0xFFFE && cp != 0xFFFF);
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    std::size_t len = 1;
    const long cp = decode_utf8(s, i, len);
    if (cp < 0 || !xml_char(cp)) {
      out += "\uFFFD";  // invalid UTF-8 or a control character: the replacement character
      i += len;
      continue;
    }
    switch (cp) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.append(s, i, len);
    }
    i += len;
  }
  return out;
}

std::string render_svg(const PlotSpec& spec) {
  std::size_t longest = 14;  // "context length"
  for (const auto& s : spec.series) longest = std::max(longest, s.label.size());
  const double kWidth = kLeft + kPlotW + 70 + kCharWidth * static_cast<double>(longest);
  // ---- ranges: x over pair indices, y over decades covering every point and reference line
  std::size_t max_pairs = 1;
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  for (const auto& s : spec.series) {
    max_pairs = std::max(max_pairs, s.wavelength.size());
    for (double w : s.wavelength) {
      if (usable(w)) lo = std::min(lo, w), hi = std::max(hi, w);
    }
  }
  for (const auto& l : spec.lines) {
    if (usable(l.tokens)) lo = std::min(lo, l.tokens), hi = std::max(hi, l.tokens);
  }
  if (!(hi > 0)) lo = 1, hi = 10;  // nothing to draw: still a valid, empty chart
  int e_lo = static_cast<int>(std::floor(std::log10(lo)));
  int e_hi = static_cast<int>(std::ceil(std::log10(hi)));
  if (e_hi <= e_lo) e_hi = e_lo + 1;
  const double x_max = std::max<double>(1, static_cast<double>(max_pairs - 1));

  auto px = [&](double i) { return kLeft + kPlotW * i / x_max; };
  auto py = [&](double w) {
    return kTop + kPlotH * (1.0 - (std::log10(w) - e_lo) / static_cast<double>(e_hi - e_lo));
  };

  std::string svg;
  svg += fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<title>{2}</title>\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{3}\" y=\"28\" font-size=\"16\" font-weight=\"bold\">{2}</text>\n",
      kWidth, kHeight, xml_escape(spec.title), kLeft);

  // ---- grid and axes
  svg += "<g class=\"axes\" stroke=\"#cccccc\" stroke-width=\"1\">\n";
  for (int e = e_lo; e <= e_hi; ++e) {
    const double y = py(std::pow(10.0, e));
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\"/>\n", kLeft,
                       y, kLeft + kPlotW, y);
  }
  const int x_step = std::max(1, static_cast<int>(std::ceil(x_max / 8.0)));
  for (int i = 0; i <= static_cast<int>(x_max); i += x_step) {
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\"/>\n",
                       px(i), kTop, kTop + kPlotH);
  }
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333333\"/>\n",
      kLeft, kTop, kPlotW, kPlotH);
  svg += "</g>\n<g class=\"tick-labels\" fill=\"#333333\">\n";
  for (int e = e_lo; e <= e_hi; ++e) {
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", kLeft - 8,
                       py(std::pow(10.0, e)) + 4, power_label(e));
  }
  for (int i = 0; i <= static_cast<int>(x_max); i += x_step) {
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", px(i),
                       kTop + kPlotH + 18, i);
  }
  svg += "</g>\n";
  svg += fmt::format(
      "<text class=\"axis-label\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">"
      "frequency index i (rotated pair)</text>\n",
      kLeft + kPlotW / 2, kHeight - 18);
  svg += fmt::format(
      "<text class=\"axis-label\" transform=\"translate(20,{:.1f}) rotate(-90)\" "
      "text-anchor=\"middle\">wavelength 2\u03c0/\u03b8\u1d62 in tokens (log scale)</text>\n",
      kTop + kPlotH / 2);

  // ---- context reference lines, labelled inside the plot at their right end
  svg += "<g class=\"reference-lines\">\n";
  // Labels sit at the right end; one closer than a text line to the previous label moves to the
  // left end instead, so nearby context lengths (8192, 16384) stay readable.
  std::vector<ReferenceLine> lines = spec.lines;
  std::sort(lines.begin(), lines.end(),
            [](const auto& a, const auto& b) { return a.tokens < b.tokens; });
  double last_right_y = std::numeric_limits<double>::infinity();
  for (const auto& l : lines) {
    if (!usable(l.tokens)) continue;
    const double y = py(l.tokens);
    const bool right = std::fabs(last_right_y - y) >= 20;
    if (right) last_right_y = y;
    svg += fmt::format(
        "<g class=\"reference\" data-tokens=\"{0}\" data-label=\"{6}\"><title>{6}</title>"
        "<line x1=\"{1:.1f}\" y1=\"{2:.1f}\" x2=\"{3:.1f}\" y2=\"{2:.1f}\" stroke=\"#555555\" "
        "stroke-dasharray=\"2,3\"/><text x=\"{4:.1f}\" y=\"{5:.1f}\" text-anchor=\"{8}\" "
        "fill=\"#555555\" font-size=\"11\">{7}</text></g>\n",
        l.tokens, kLeft, y, kLeft + kPlotW, right ? kLeft + kPlotW - 4 : kLeft + 4, y - 4,
        xml_escape(l.label), xml_escape(l.short_label.empty() ? l.label : l.short_label),
        right ? "end" : "start");
  }
  svg += "</g>\n";

  // ---- curves: one group per series, one polyline per run of drawable points
  for (const auto& s : spec.series) {
    const char* color = kPalette[((s.color % kPaletteSize) + kPaletteSize) % kPaletteSize];
    svg += fmt::format(
        "<g class=\"series\" data-kind=\"{}\" data-label=\"{}\" fill=\"none\" stroke=\"{}\" "
        "stroke-width=\"{}\"{}>\n",
        s.unscaled ? "unscaled" : "scaled", xml_escape(s.label), color, s.unscaled ? 1.5 : 2.2,
        s.unscaled ? " stroke-dasharray=\"6,4\" opacity=\"0.8\"" : "");
    std::string points;
    auto flush = [&] {
      if (!points.empty()) svg += "<polyline points=\"" + points + "\"/>\n";
      points.clear();
    };
    for (std::size_t i = 0; i < s.wavelength.size(); ++i) {
      if (!usable(s.wavelength[i])) {
        flush();
        continue;
      }
      points += fmt::format("{}{:.2f},{:.2f}", points.empty() ? "" : " ",
                            px(static_cast<double>(i)), py(s.wavelength[i]));
    }
    flush();
    svg += "</g>\n";
  }

  // ---- legend
  svg += "<g class=\"legend\">\n";
  double ly = kTop + 8;
  for (const auto& s : spec.series) {
    const char* color = kPalette[((s.color % kPaletteSize) + kPaletteSize) % kPaletteSize];
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"{3}\" "
        "stroke-width=\"{4}\"{5}/><text x=\"{6:.1f}\" y=\"{7:.1f}\">{8}</text>\n",
        kLeft + kPlotW + 16, ly, kLeft + kPlotW + 44, color, s.unscaled ? 1.5 : 2.2,
        s.unscaled ? " stroke-dasharray=\"6,4\"" : "", kLeft + kPlotW + 50, ly + 4,
        xml_escape(s.label));
    ly += 18;
  }
  svg += fmt::format(
      "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#555555\" "
      "stroke-dasharray=\"2,3\"/><text x=\"{3:.1f}\" y=\"{4:.1f}\">context length</text>\n",
      kLeft + kPlotW + 16, ly, kLeft + kPlotW + 44, kLeft + kPlotW + 50, ly + 4);
  svg += "</g>\n</svg>\n";
  return svg;
}

}  // namespace ropekit::cli
