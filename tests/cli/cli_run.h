// The one process runner of the CLI tests (tests/cli/): runs the ropekit command and captures
// what it prints.
#pragma once

#include <string>
#include <vector>

namespace ropekit::cli_test {

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;      // the signal that ended it, if any
  std::string out;     // stdout
  std::string err;     // stderr
};

// How the child runs: its standard streams, environment and resource limits.
struct RunOptions {
  enum class Stdout { kCapture, kClosed, kDevFull };
  Stdout stdout_mode = Stdout::kCapture;
  std::string stdin_path;              // "" = inherited
  std::string stdin_data;              // when not empty: stdin is a pipe holding these bytes
                                       // (at most 64 KiB: one pipe buffer)
  std::vector<std::string> env;        // "NAME=value", added to the environment
  long long file_size_limit = -1;      // RLIMIT_FSIZE in bytes, SIGXFSZ ignored (writes: EFBIG)
  long long address_space_limit = -1;  // RLIMIT_AS in bytes (thread stacks cannot be mapped)
};

// Runs `ropekit ARGS` (ARGS is pasted into a shell command line: quote what needs quoting).
RunResult run_cli(const std::string& args);
RunResult run_cli(const std::string& args, const RunOptions& options);

// Reads a whole file (empty string if unreadable).
std::string read_file(const std::string& path);

// A fresh scratch directory for one test (under the build tree).
std::string scratch_dir(const std::string& name);

}  // namespace ropekit::cli_test
