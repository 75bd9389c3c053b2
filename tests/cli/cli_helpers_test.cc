// Unit tests of the ropekit command's helpers that need no process: name suggestions, tables,
// CSV quoting, the SVG writer, the bench's statistics and its baseline loops.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bench_loops.h"
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

// The bench's copies move every byte and nothing else, and its in-place pass leaves every byte
// as it was, at any size and alignment (the vector body, the unaligned head and the tail; the
// check copy at the 8-byte alignment it requires), with guard bytes around the destination
// untouched. Buffers are never null (one spare byte), as the bench's are not.
TEST(BenchLoops, CopiesMoveEveryByteAndThePassChangesNone) {
  std::mt19937 rng(7);
  const std::size_t kGuard = 80;
  for (const std::size_t n : {0u, 1u, 7u, 63u, 64u, 65u, 255u, 1000u, 4113u, 65539u}) {
    for (const std::size_t offset : {0u, 1u, 8u, 13u, 64u}) {
      std::vector<std::uint8_t> src(n + offset + 1), dst(n + offset + 2 * kGuard);
      for (auto& b : src) b = static_cast<std::uint8_t>(rng());
      const auto check = [&](const char* what) {
        for (std::size_t i = 0; i < kGuard + offset; ++i)
          ASSERT_EQ(dst[i], 0xA5) << what << " wrote before its destination, n " << n;
        ASSERT_EQ(std::memcmp(dst.data() + kGuard + offset, src.data() + offset, n), 0)
            << what << " n " << n << " offset " << offset;
        for (std::size_t i = kGuard + offset + n; i < dst.size(); ++i)
          ASSERT_EQ(dst[i], 0xA5) << what << " wrote past its destination, n " << n;
      };
      const auto reset = [&] { std::fill(dst.begin(), dst.end(), std::uint8_t{0xA5}); };
      for (int v = 0; v < bench::copy_floor_variants(); ++v) {
        reset();
        bench::copy_floor(v, dst.data() + kGuard + offset, src.data() + offset, n);
        check(bench::copy_floor_name(v));
      }
      if (offset % 8 == 0) {
        reset();
        bench::copy_check(dst.data() + kGuard + offset, src.data() + offset, n);
        check("copy_check");
      }
      reset();
      bench::copy_non_temporal(dst.data() + kGuard + offset, src.data() + offset, n);
      check("copy_non_temporal");
      reset();
      std::memcpy(dst.data() + kGuard + offset, src.data() + offset, n);
      bench::pass_in_place(dst.data() + kGuard + offset, n);
      check("pass_in_place");
    }
  }
}

// The plain loop against the rotation written out in double precision (f32: within a few
// units of float rounding), and in place equal to out of place, bit for bit: the bench times it
// in place without checking its output (it checks the out-of-place twin against apply_rope).
TEST(BenchLoops, PlainLoopRotatesAndInPlaceEqualsOutOfPlace) {
  const int pairs = 8, head_dim = 2 * pairs + 2;  // two features past the rotated ones
  const std::int64_t tokens = 5, heads = 3, max_pos = 9;
  const std::vector<std::int64_t> pos = {0, 8, 3, 3, 5};
  std::vector<float> cos(max_pos * pairs), sin(cos.size());
  for (std::int64_t p = 0; p < max_pos; ++p)
    for (int i = 0; i < pairs; ++i) {
      const double a = static_cast<double>(p) * std::pow(10000.0, -2.0 * i / (2 * pairs));
      cos[static_cast<std::size_t>(p * pairs + i)] = static_cast<float>(std::cos(a));
      sin[static_cast<std::size_t>(p * pairs + i)] = static_cast<float>(std::sin(a));
    }
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  const std::size_t n = static_cast<std::size_t>(tokens * heads * head_dim);
  std::vector<float> x(n);
  for (float& v : x) v = u(rng);
  for (const bool interleaved : {false, true}) {
    bench::PlainJob job;
    job.dtype = DType::kF32;
    job.head_dim = head_dim;
    job.pairs = pairs;
    job.interleaved = interleaved;
    job.positions = pos.data();
    job.cos = cos.data();
    job.sin = sin.data();
    std::vector<float> out(n, 0.0f), inplace = x;
    job.tensors[0] = {x.data(), out.data(), heads};
    job.n_tensors = 1;
    bench::plain_rope(job, 0, tokens);
    job.tensors[0] = {inplace.data(), inplace.data(), heads};
    bench::plain_rope(job, 0, 2);  // in two ranges, as the bench's thread split calls it
    bench::plain_rope(job, 2, tokens);
    EXPECT_EQ(std::memcmp(out.data(), inplace.data(), n * sizeof(float)), 0) << interleaved;
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t h = 0; h < heads; ++h) {
        const std::size_t base = static_cast<std::size_t>((t * heads + h) * head_dim);
        for (int i = 0; i < pairs; ++i) {
          const std::size_t ia = base + static_cast<std::size_t>(interleaved ? 2 * i : i);
          const std::size_t ib =
              base + static_cast<std::size_t>(interleaved ? 2 * i + 1 : i + pairs);
          const std::size_t row =
              static_cast<std::size_t>(pos[static_cast<std::size_t>(t)] * pairs + i);
          const double c = cos[row], s = sin[row], a = x[ia], b = x[ib];
          EXPECT_NEAR(out[ia], a * c - b * s, 4e-7 * (std::abs(a) + std::abs(b))) << t << " " << i;
          EXPECT_NEAR(out[ib], b * c + a * s, 4e-7 * (std::abs(a) + std::abs(b))) << t << " " << i;
        }
        for (int f = 2 * pairs; f < head_dim; ++f)  // copied as they are
          EXPECT_EQ(out[base + static_cast<std::size_t>(f)], x[base + static_cast<std::size_t>(f)]);
      }
  }
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
