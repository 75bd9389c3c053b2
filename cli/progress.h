// Progress on stderr for long CLI operations (bench, large applies): a single line redrawn in
// place ("\r") while stderr is a terminal, nothing at all when it is piped or redirected, so
// scripts and logs stay clean. ROPEKIT_PROGRESS=always|never overrides the terminal test (the
// tests use "always" to see the line without a terminal).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ropekit::cli {

class Progress {
 public:
  // `label`: what is being done; `total`: units of work (tokens, cases); `unit`: their name.
  Progress(std::string label, std::int64_t total, std::string unit);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  bool enabled() const { return enabled_; }
  // Reports `done` units finished (monotonic); redraws at most ~10 times a second.
  void update(std::int64_t done, const std::string& detail = {});
  // Clears the line (also done by the destructor).
  void finish();

  // Whether progress is shown at all in this process (terminal test + ROPEKIT_PROGRESS).
  static bool wanted();

 private:
  void draw(std::int64_t done, const std::string& detail);

  std::string label_;
  std::string unit_;
  std::int64_t total_;
  bool enabled_;
  bool drawn_ = false;
  std::size_t width_ = 0;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace ropekit::cli
