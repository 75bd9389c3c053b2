// Internal to the ropekit command: one register function per subcommand (cli/cmd_*.cc).
// Each adds its subcommand to the app and sets its callback; callbacks throw
// ropekit::Error subclasses (mapped to exit 2 by main) or CLI::Error (exit 1, usage).
//
// Every cli/cmd_*.cc file is compiled into the command (CMake glob) and registers itself:
//     ROPEKIT_CLI_COMMAND(30, register_show)
// (the number orders `ropekit --help`). main.cc needs no edit for a new subcommand.
#pragma once

#include <CLI/CLI.hpp>

namespace ropekit::cli {

using RegisterFn = void (*)(CLI::App&);
struct CommandRegistration {
  CommandRegistration(int order, RegisterFn fn);
};
// Registered commands, in order.
void register_all(CLI::App& app);

#define ROPEKIT_CLI_CONCAT2(a, b) a##b
#define ROPEKIT_CLI_CONCAT(a, b) ROPEKIT_CLI_CONCAT2(a, b)
#define ROPEKIT_CLI_COMMAND(order, fn)                                                    \
  namespace {                                                                             \
  const ::ropekit::cli::CommandRegistration ROPEKIT_CLI_CONCAT(kRegistration_, __LINE__){ \
      order, &::ropekit::cli::fn};                                                        \
  }

}  // namespace ropekit::cli
