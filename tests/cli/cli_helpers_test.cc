// Unit tests of the ropekit command's helpers that need no process: name suggestions, tables,
// CSV quoting and the SVG writer.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "suggest.h"
#include "svg_plot.h"
#include "text_table.h"

namespace ropekit::cli {
namespace {

TEST(EditDistance, ClassicCases) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("Phi-2", "phi-2"), 0u);  // case-insensitive
  EXPECT_EQ(edit_distance("lama", "llama"), 1u);
}

TEST(ClosestNames, PrefersSmallEditsAndSubstrings) {
  const std::vector<std::string> names{"deepseek-v3", "llama-3.1-8b-instruct", "llama-3-8b",
                                       "phi-2", "qwen3-8b"};
  EXPECT_EQ(closest_names("lama-3.1-8b-instruct", names, 1),
            std::vector<std::string>{"llama-3.1-8b-instruct"});
  EXPECT_EQ(closest_names("qwen3", names, 1), std::vector<std::string>{"qwen3-8b"});
  EXPECT_EQ(closest_names("DeepSeek-V3", names, 1), std::vector<std::string>{"deepseek-v3"});
  EXPECT_EQ(closest_names("x", names, 3).size(), 3u);
  EXPECT_TRUE(closest_names("x", {}, 3).empty());
}

TEST(TextTable, AlignsColumnsAndQuotesCsv) {
  TextTable t;
  t.add_column("name", TextTable::Align::kLeft);
  t.add_column("value");
  t.add_row({"a", "1"});
  t.add_row({"long,name", "12345"});
  EXPECT_EQ(t.render(), "name       value\na              1\nlong,name  12345\n");
  EXPECT_EQ(t.render_csv(), "name,value\na,1\n\"long,name\",12345\n");
  EXPECT_ANY_THROW(t.add_row({"only one cell"}));
}

TEST(Svg, EscapesAndBreaksLinesAtUndrawablePoints) {
  EXPECT_EQ(xml_escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
  PlotSpec spec;
  spec.title = "t <1>";
  const double inf = std::numeric_limits<double>::infinity();
  spec.series.push_back({"s&1", {10, 100, inf, 1000, 10000}, false, 0});
  spec.lines.push_back({4096, "4096 tokens", "4096"});
  const std::string svg = render_svg(spec);
  EXPECT_NE(svg.find("<title>t &lt;1&gt;</title>"), std::string::npos);
  EXPECT_NE(svg.find("data-label=\"s&amp;1\""), std::string::npos);
  // inf splits the curve into two polylines (2 points each).
  std::size_t polylines = 0;
  for (std::size_t p = svg.find("<polyline"); p != std::string::npos;
       p = svg.find("<polyline", p + 1))
    ++polylines;
  EXPECT_EQ(polylines, 2u);
  EXPECT_NE(svg.find("data-tokens=\"4096\""), std::string::npos);
}

TEST(Svg, EmptyChartIsStillValid) {
  const std::string svg = render_svg(PlotSpec{});
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

}  // namespace
}  // namespace ropekit::cli
