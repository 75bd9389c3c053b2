#include "progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include <fmt/core.h>

namespace ropekit::cli {

bool Progress::wanted() {
  if (const char* v = std::getenv("ROPEKIT_PROGRESS")) {
    if (std::strcmp(v, "always") == 0) return true;
    if (std::strcmp(v, "never") == 0) return false;
  }
  return ::isatty(STDERR_FILENO) != 0;
}

Progress::Progress(std::string label, std::int64_t total, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(std::max<std::int64_t>(total, 1)),
      enabled_(wanted()),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

Progress::~Progress() { finish(); }

void Progress::update(std::int64_t done, const std::string& detail) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  // First call, last unit, or 100 ms since the last redraw: a terminal cannot show more.
  if (drawn_ && done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  draw(done, detail);
}

void Progress::draw(std::int64_t done, const std::string& detail) {
  const double frac = std::clamp(static_cast<double>(done) / static_cast<double>(total_), 0.0, 1.0);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string eta;
  if (frac > 0.02 && frac < 1.0)
    eta = fmt::format(", ~{:.0f} s left", elapsed * (1.0 - frac) / frac);
  std::string line = fmt::format("{} {:3.0f}% ({}/{} {}{}){}", label_, 100.0 * frac, done, total_,
                                 unit_, eta, detail.empty() ? "" : " " + detail);
  const std::size_t len = line.size();
  if (len < width_) line.append(width_ - len, ' ');  // erase the rest of a longer previous line
  width_ = std::max(width_, len);
  std::fprintf(stderr, "\r%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  if (!enabled_ || !drawn_) return;
  if (std::uncaught_exceptions() > 0) {
    std::fputc('\n', stderr);  // an error message follows: on a line of its own
  } else {
    std::fprintf(stderr, "\r%s\r", std::string(width_, ' ').c_str());
  }
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace ropekit::cli
