// Internal to the ropekit command: `ropekit compare CONFIG MODEL.gguf` (either order) — does a
// GGUF file rotate like its config.json? Names every setting that differs and changes the
// rotation (by its GGUF key), the largest output difference and the first position where it
// exceeds the tolerance.
#pragma once

#include <cstdint>
#include <string>

namespace ropekit::cli {

// Exit code of `compare` when a config and a GGUF file disagree (docs/cli.md).
inline constexpr int kGgufMismatchExitCode = 3;

struct GgufCompareOptions {
  std::string config;  // model name, config.json or folder
  std::string gguf;    // a GGUF file
  bool gguf_first = false;
  std::int64_t max_position = 0;  // 0: the larger context of the two
  double tolerance = 1e-4;        // output difference (inputs in [-1.4, 1.4]) still agreeing
  bool json = false;
};

// True if `arg` names a GGUF file.
bool is_gguf_argument(const std::string& arg);

// Prints the comparison; returns 0 when they agree, kGgufMismatchExitCode when they do not.
int compare_config_with_gguf(const GgufCompareOptions& options);

}  // namespace ropekit::cli
