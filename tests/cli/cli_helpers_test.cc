// Unit tests of the ropekit command's helpers that need no process: name suggestions, tables,
// CSV quoting, the SVG writer and the bench's statistics.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bench_stats.h"
#include "machine_info.h"
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

// n values whose ranks are their values (1 ... n), in a scrambled order.
std::vector<double> scrambled_ranks(int n) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(static_cast<double>((2 * n - i + 3) % n + 1));
  return v;
}

TEST(BenchStats, MedianOfOddAndEvenCounts) {
  EXPECT_EQ(bench::median({3, 1, 2}), 2.0);
  EXPECT_EQ(bench::median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(bench::median({5}), 5.0);
}

// Textbook ranks: n = 15 gives [x(4), x(12)], n = 100 gives [x(40), x(61)] (each about 96.5%);
// n = 6 is the least count with a 95% interval, [x(1), x(6)]; below it the full range, with its
// smaller coverage said.
TEST(BenchStats, MedianIntervalKnownRanks) {
  const struct {
    int n;
    double low, high, coverage;
  } cases[] = {{15, 4, 12, 1 - 2 * 576.0 / 32768},
               {6, 1, 6, 1 - 2.0 / 64},
               {5, 1, 5, 1 - 2.0 / 32},
               {2, 1, 2, 0.5},
               {1, 1, 1, 0.0},
               {100, 40, 61, 0.9647998}};
  for (const auto& c : cases) {
    const bench::MedianInterval m = bench::median_interval(scrambled_ranks(c.n));
    EXPECT_EQ(m.low, c.low) << c.n;
    EXPECT_EQ(m.high, c.high) << c.n;
    EXPECT_NEAR(m.coverage, c.coverage, 1e-6) << c.n;
  }
}

// The coverage and the rank against exact integer binomial sums: the interval's rank j is the
// largest whose coverage 1 - 2·P(B <= j-1) reaches the confidence asked for.
TEST(BenchStats, MedianIntervalIsTheNarrowestThatCovers) {
  for (const double confidence : {0.90, 0.95, 0.99}) {
    for (int n = 6; n <= 60; ++n) {
      std::vector<std::uint64_t> choose(static_cast<std::size_t>(n) + 1, 1);  // C(n, k)
      for (int k = 1; k <= n; ++k)
        choose[static_cast<std::size_t>(k)] = choose[static_cast<std::size_t>(k - 1)] *
                                              static_cast<std::uint64_t>(n - k + 1) /
                                              static_cast<std::uint64_t>(k);
      auto coverage = [&](int j) {  // of [x(j), x(n+1-j)]
        std::uint64_t below = 0;
        for (int k = 0; k < j; ++k) below += choose[static_cast<std::size_t>(k)];
        return 1.0 - 2.0 * std::ldexp(static_cast<double>(below), -n);
      };
      const bench::MedianInterval m = bench::median_interval(scrambled_ranks(n), confidence);
      const int j = static_cast<int>(m.low);
      if (coverage(1) < confidence) {  // no interval reaches it: the full range
        EXPECT_EQ(j, 1) << n;
        continue;
      }
      EXPECT_EQ(m.high, n + 1 - j) << n;
      EXPECT_NEAR(m.coverage, coverage(j), 1e-9) << n;
      EXPECT_GE(m.coverage, confidence) << n;
      if (2 * (j + 1) <= n) {
        EXPECT_LT(coverage(j + 1), confidence) << n << " j " << j;
      }
    }
  }
}

// What the interval promises, by simulation: over 4000 draws of 15 samples from a skewed
// distribution (exponential, median ln 2), it covers the true median in about 96.5% of them.
TEST(BenchStats, MedianIntervalCoversTheTrueMedian) {
  std::mt19937_64 rng(20261204);
  const int trials = 4000;
  int covered = 0;
  double nominal = 0;
  for (int t = 0; t < trials; ++t) {
    std::vector<double> v;
    for (int i = 0; i < 15; ++i) {
      const double u = static_cast<double>(rng() >> 11) * 0x1p-53;
      v.push_back(-std::log1p(-u));
    }
    const bench::MedianInterval m = bench::median_interval(v);
    nominal = m.coverage;
    covered += m.low <= std::log(2.0) && std::log(2.0) <= m.high;
  }
  const double rate = static_cast<double>(covered) / trials;
  const double sigma = std::sqrt(nominal * (1 - nominal) / trials);
  EXPECT_NEAR(rate, nominal, 4 * sigma) << covered << " of " << trials;
}

// CPUID leaf-1 signatures of known parts, and the family and model their vendors name them by.
TEST(MachineInfo, DecodesCpuSignatures) {
  const struct {
    std::uint32_t eax;
    int family, model, stepping;
  } parts[] = {
      {0x00A10F11, 25, 17, 1},  // AMD EPYC 9004 (Zen 4, "Genoa"): family 19h, model 11h
      {0x00A00F11, 25, 1, 1},   // AMD EPYC 7003 (Zen 3, "Milan"): family 19h, model 01h
      {0x00B00F21, 26, 2, 1},   // AMD EPYC 9005 (Zen 5, "Turin"): family 1Ah, model 02h
      {0x00050654, 6, 85, 4},   // Intel Xeon Scalable (Skylake-SP): family 6, model 55h
      {0x000806F8, 6, 143, 8},  // Intel Xeon (Sapphire Rapids): family 6, model 8Fh
      {0x00000633, 6, 3, 3},    // Pentium II (Klamath): family 6, model 3, no extended model
      {0x00000543, 5, 4, 3},    // Pentium MMX: family 5 keeps its extended bits out
  };
  for (const auto& p : parts) {
    const CpuSignature s = decode_cpu_signature(p.eax);
    EXPECT_EQ(s.family, p.family) << std::hex << p.eax;
    EXPECT_EQ(s.model, p.model) << std::hex << p.eax;
    EXPECT_EQ(s.stepping, p.stepping) << std::hex << p.eax;
  }
}

TEST(MachineInfo, DescribesThisCpu) {
  const std::string d = cpu_description();
  EXPECT_FALSE(d.empty());
#if defined(__x86_64__)
  EXPECT_NE(d.find("family "), std::string::npos) << d;
#endif
}

}  // namespace
}  // namespace ropekit::cli
