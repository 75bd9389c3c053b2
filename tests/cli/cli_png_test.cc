// `ropekit plot -o x.png` (builds with librsvg): the PNG decodes (cairo), has the SVG's size
// times --png-scale, a white background, and the palette colour of each requested curve and no
// other curve colour.
#include <gtest/gtest.h>

#include <cairo.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <regex>
#include <string>

#include "cli_run.h"

namespace ropekit::cli_test {
namespace {

struct SurfaceDestroy {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};

struct Rgb {
  int r, g, b;
};
Rgb hex(const char* h) {
  const unsigned v = static_cast<unsigned>(std::stoul(std::string(h + 1), nullptr, 16));
  return {static_cast<int>(v >> 16), static_cast<int>((v >> 8) & 0xFF), static_cast<int>(v & 0xFF)};
}

// Pixels within a small distance of `c` (anti-aliased edges blend towards white).
std::int64_t pixels_near(cairo_surface_t* s, Rgb c, int tol = 12) {
  const int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char* data = cairo_image_surface_get_data(s);
  std::int64_t n = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      std::uint32_t px = 0;
      std::memcpy(&px, data + y * stride + 4 * x, 4);  // ARGB32, native endian
      const int r = (px >> 16) & 0xFF, g = (px >> 8) & 0xFF, b = px & 0xFF;
      if (std::abs(r - c.r) <= tol && std::abs(g - c.g) <= tol && std::abs(b - c.b) <= tol) ++n;
    }
  return n;
}

TEST(CliPlotPng, DecodesWithTheSvgSizeAndOneColourPerCurve) {
  const std::string dir = scratch_dir("plot_png");
  ASSERT_EQ(run_cli("plot llama-3.1-8b-instruct mistral-7b-v0.1 -o '" + dir + "/p.svg'").exit_code,
            0);
  const RunResult r =
      run_cli("plot llama-3.1-8b-instruct mistral-7b-v0.1 -o '" + dir + "/p.png' --png-scale 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;

  std::smatch m;
  const std::string svg = read_file(dir + "/p.svg");
  ASSERT_TRUE(
      std::regex_search(svg, m, std::regex("<svg[^>]* width=\"([0-9]+)\" height=\"([0-9]+)\"")));
  const int svg_w = std::stoi(m[1]), svg_h = std::stoi(m[2]);

  std::unique_ptr<cairo_surface_t, SurfaceDestroy> png(
      cairo_image_surface_create_from_png((dir + "/p.png").c_str()));
  ASSERT_EQ(cairo_surface_status(png.get()), CAIRO_STATUS_SUCCESS) << "not a PNG";
  cairo_surface_flush(png.get());
  EXPECT_EQ(cairo_image_surface_get_width(png.get()), 2 * svg_w);
  EXPECT_EQ(cairo_image_surface_get_height(png.get()), 2 * svg_h);

  const std::int64_t total = std::int64_t{2 * svg_w} * (2 * svg_h);
  EXPECT_GT(pixels_near(png.get(), {255, 255, 255}, 0), total / 2) << "background not white";
  // Palette (cli/svg_plot.cc): curve 0 blue, curve 1 orange; curve 2's red must be absent.
  EXPECT_GT(pixels_near(png.get(), hex("#4e79a7")), 500);
  EXPECT_GT(pixels_near(png.get(), hex("#f28e2b")), 500);
  EXPECT_EQ(pixels_near(png.get(), hex("#e15759"), 4), 0);

  // Neither .svg nor .png: a usage error naming both.
  const RunResult bad = run_cli("plot phi-2 -o '" + dir + "/p.jpg'");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find(".svg or .png"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace ropekit::cli_test
