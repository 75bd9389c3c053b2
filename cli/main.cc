// The ropekit command. Exit codes: 0 ok, 1 usage error, 2 bad config or input.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "commands.h"
#include "file_io.h"
#include "ropekit/error.h"
#include "ropekit/version.h"

namespace ropekit::cli {
namespace {
std::vector<std::pair<int, RegisterFn>>& registry() {
  static std::vector<std::pair<int, RegisterFn>> r;
  return r;
}
}  // namespace

CommandRegistration::CommandRegistration(int order, RegisterFn fn) {
  registry().emplace_back(order, fn);
}

void register_all(CLI::App& app) {
  auto r = registry();
  std::stable_sort(r.begin(), r.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [order, fn] : r) fn(app);
}
}  // namespace ropekit::cli

namespace {

// A process started with stdin, stdout or stderr closed would hand that descriptor to the next
// file it opens: an output .npy would receive what is printed. Each closed one is opened on
// /dev/null read-only, so writes to it fail (and are reported) instead.
void occupy_closed_standard_descriptors() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      const int got = ::open("/dev/null", O_RDONLY);
      if (got >= 0 && got != fd) ::close(got);  // only fills the lowest free descriptor
    }
  }
}

int report(const char* message) {
  std::fprintf(stderr, "ropekit: error: %s\n", message);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  occupy_closed_standard_descriptors();
  // Writing past a file-size limit (RLIMIT_FSIZE) then fails with EFBIG, which the writers
  // report and clean up after, instead of killing the process with a half-written file.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"ropekit: rotary positional embeddings of LLMs — configs, frequencies, kernels"};
  app.set_version_flag("--version", ropekit::kVersion);
  app.require_subcommand(1);
  app.fallthrough();
  ropekit::cli::register_all(app);
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      const int rc = app.exit(e);
      ropekit::cli::check_stdout();  // --help, --version
      return rc == 0 ? 0 : 1;
    }
    ropekit::cli::check_stdout();  // a command whose output is lost has failed
  } catch (const std::system_error& e) {
    // fmt::print throws this when a write to stdout fails mid-way (large outputs).
    if (std::string_view(e.what()).rfind("cannot write to file", 0) == 0) {
      return report(("cannot write to standard output: " + e.code().message()).c_str());
    }
    return report(e.what());
  } catch (const std::exception& e) {
    return report(e.what());
  }
  return 0;
}
