// The ropekit command. Exit codes: 0 ok, 1 usage error, 2 bad config or input.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <utility>
#include <vector>

#include "commands.h"
#include "ropekit/error.h"
#include "ropekit/version.h"

namespace ropekit::cli {
namespace {
std::vector<std::pair<int, RegisterFn>>& registry() {
  static std::vector<std::pair<int, RegisterFn>> r;
  return r;
}
}  // namespace

CommandRegistration::CommandRegistration(int order, RegisterFn fn) { registry().emplace_back(order, fn); }

void register_all(CLI::App& app) {
  auto r = registry();
  std::stable_sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [order, fn] : r) fn(app);
}
}  // namespace ropekit::cli

int main(int argc, char** argv) {
  CLI::App app{"ropekit: rotary positional embeddings of LLMs — configs, frequencies, kernels"};
  app.set_version_flag("--version", ropekit::kVersion);
  app.require_subcommand(1);
  app.fallthrough();
  ropekit::cli::register_all(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  } catch (const ropekit::Error& e) {
    std::fprintf(stderr, "ropekit: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ropekit: error: %s\n", e.what());
    return 2;
  }
  return 0;
}
