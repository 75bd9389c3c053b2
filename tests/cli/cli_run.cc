#include "cli_run.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
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

RunResult run_cli(const std::string& args) { return run_cli(args, RunOptions{}); }

RunResult run_cli(const std::string& args, const RunOptions& options) {
  const std::string cmd = "exec '" + std::string(ROPEKIT_CLI) + "' " + args;
  RunResult r;
  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) != 0) return r;
  if (pipe(err_pipe) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return r;
  }
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return r;
  if (pid == 0) {  // the child: only async-signal-safe calls and exec from here
    if (!options.stdin_path.empty()) {
      const int in = open(options.stdin_path.c_str(), O_RDONLY);
      if (in < 0 || dup2(in, 0) < 0) _exit(126);
      close(in);
    }
    if (!options.stdin_data.empty()) {
      int in_pipe[2];
      if (pipe(in_pipe) != 0) _exit(126);
      const ssize_t w = write(in_pipe[1], options.stdin_data.data(), options.stdin_data.size());
      if (w != static_cast<ssize_t>(options.stdin_data.size())) _exit(126);
      close(in_pipe[1]);
      if (dup2(in_pipe[0], 0) < 0) _exit(126);
      close(in_pipe[0]);
    }
    switch (options.stdout_mode) {
      case RunOptions::Stdout::kCapture:
        dup2(out_pipe[1], 1);
        break;
      case RunOptions::Stdout::kClosed:
        close(1);
        break;
      case RunOptions::Stdout::kDevFull: {
        const int full = open("/dev/full", O_WRONLY);
        if (full < 0 || dup2(full, 1) < 0) _exit(126);
        close(full);
        break;
      }
    }
    dup2(err_pipe[1], 2);
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
    for (const std::string& e : options.env) {
      const auto eq = e.find('=');
      setenv(e.substr(0, eq).c_str(), eq == std::string::npos ? "" : e.c_str() + eq + 1, 1);
    }
    if (options.file_size_limit >= 0) {
      signal(SIGXFSZ, SIG_IGN);
      const rlimit lim{static_cast<rlim_t>(options.file_size_limit),
                       static_cast<rlim_t>(options.file_size_limit)};
      if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(126);
    }
    if (options.address_space_limit >= 0) {
      const rlimit lim{static_cast<rlim_t>(options.address_space_limit),
                       static_cast<rlim_t>(options.address_space_limit)};
      if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(126);
    }
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (const pollfd& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  return r;
}

}  // namespace ropekit::cli_test
