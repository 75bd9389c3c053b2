// The one process runner of the CLI tests (tests/cli/): runs the ropekit command and captures
// what it prints.
#pragma once

#include <string>

namespace ropekit::cli_test {

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `ropekit ARGS` (ARGS is pasted into a shell command line: quote what needs quoting).
// `env` is prefixed to the command as shell assignments ("ROPEKIT_PROGRESS=always").
RunResult run_cli(const std::string& args, const std::string& env = "");

// Reads a whole file (empty string if unreadable).
std::string read_file(const std::string& path);

// A fresh scratch directory for one test (under the build tree).
std::string scratch_dir(const std::string& name);

}  // namespace ropekit::cli_test
