#include "cli_run.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ropekit::cli_test {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string scratch_dir(const std::string& name) {
  const auto dir = std::filesystem::path(ROPEKIT_CLI_TEST_SCRATCH) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

RunResult run_cli(const std::string& args, const std::string& env) {
  // stderr goes to a file beside the scratch dirs: popen captures one stream only. ctest runs
  // test processes in parallel, so the name holds the process id as well as a counter.
  static int counter = 0;
  const std::string err_path =
      (std::filesystem::path(ROPEKIT_CLI_TEST_SCRATCH) /
       ("stderr_" + std::to_string(getpid()) + "_" + std::to_string(++counter)))
          .string();
  std::filesystem::create_directories(ROPEKIT_CLI_TEST_SCRATCH);
  const std::string cmd =
      env + " '" + std::string(ROPEKIT_CLI) + "' " + args + " 2>'" + err_path + "'";
  RunResult r;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file(err_path);
  std::filesystem::remove(err_path);
  return r;
}

}  // namespace ropekit::cli_test
