// Internal to the ropekit command: rasterises an SVG document to a PNG file with librsvg + cairo
// (Debian's librsvg2-dev), when the command was built with them (png_supported()).
#pragma once

#include <string>

namespace ropekit::cli {

// Whether this build can write PNG (librsvg found at configure time).
bool png_supported();

// Renders `svg` at its own width × height (scaled by `scale`) on white and writes `path`.
// Throws IoError when the file cannot be written, ArgumentError when PNG is not supported here
// (the message says how to get it).
void write_png_from_svg(const std::string& svg, const std::string& path, double scale = 1.0);

}  // namespace ropekit::cli
