#include "file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "ropekit/error.h"

namespace ropekit::cli {
namespace {

std::string reason(int err) { return std::strerror(err); }

}  // namespace

std::string echo(std::string_view s) {
  std::size_t keep = s.size();
  if (keep > kMaxEchoBytes) {
    keep = kMaxEchoBytes;
    // Back up to the start of a UTF-8 sequence so the prefix stays valid text.
    while (keep > 0 && (static_cast<unsigned char>(s[keep]) & 0xC0) == 0x80) --keep;
  }
  std::string out;
  out.reserve(keep + 16);
  for (std::size_t i = 0; i < keep; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (keep < s.size()) out += fmt::format("\u2026 ({} bytes)", s.size());
  return out;
}

// ---- reading -----------------------------------------------------------------------------------

InputFile::InputFile(const std::string& path) : path_(path) {
  do {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd_ < 0 && errno == EINTR);
  if (fd_ < 0) throw IoError("cannot open " + path + ": " + reason(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    throw IoError("cannot open " + path + ": " + reason(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd_);
    throw IoError("cannot read " + path + ": is a directory");
  }
  regular_ = S_ISREG(st.st_mode);
  size_ = regular_ ? static_cast<std::uint64_t>(st.st_size) : 0;
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::size_t InputFile::read(void* data, std::size_t n) {
  auto* p = static_cast<char*>(data);
  std::size_t got = 0;
  while (got < n) {
    const std::size_t want = std::min<std::size_t>(n - got, std::size_t{1} << 30);
    const ssize_t r = ::read(fd_, p + got, want);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw IoError("cannot read " + path_ + ": " + reason(errno));
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return got;
}

std::string read_text_file_bounded(const std::string& path, std::uint64_t max_bytes,
                                   const std::string& what) {
  InputFile in(path);
  auto too_big = [&](const std::string& size) {
    return IoError(fmt::format("{} {} is {} bytes; expected at most {} ({} MiB)", what, path, size,
                               max_bytes, max_bytes >> 20));
  };
  if (in.regular() && in.size() > max_bytes) throw too_big(std::to_string(in.size()));
  std::string text;
  char buf[1 << 16];
  for (;;) {
    const std::size_t n = in.read(buf, sizeof buf);
    if (n == 0) break;
    if (text.size() + n > max_bytes) throw too_big("more than " + std::to_string(max_bytes));
    text.append(buf, n);
  }
  return text;
}

// ---- writing -----------------------------------------------------------------------------------

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), target_(path_) {
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    // Replace the file the link points to, not the link.
    if (char* real = ::realpath(path_.c_str(), nullptr)) {
      target_ = real;
      std::free(real);
    }
  }
  mode_t mode = 0;
  bool exists = ::stat(target_.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) fail(EISDIR);
  if (exists && !S_ISREG(st.st_mode)) {
    // A device or a pipe: nothing to replace atomically (and renaming over /dev/null as root
    // would replace the device). Written in place, every write checked.
    do {
      fd_ = ::open(target_.c_str(), O_WRONLY | O_CLOEXEC);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) fail(errno);
    return;
  }
  if (exists) {
    mode = st.st_mode & 07777;  // the replacement keeps the output's permissions
  } else {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    mode = 0666 & ~mask;
  }
  const auto slash = target_.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : target_.substr(0, slash + 1);
  std::string name = slash == std::string::npos ? target_ : target_.substr(slash + 1);
  if (name.size() > 200) name.resize(200);  // the temporary name must fit NAME_MAX too
  temp_ = dir + "." + name + ".ropekit-XXXXXX";
  std::vector<char> tmpl(temp_.begin(), temp_.end());
  tmpl.push_back('\0');
  fd_ = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd_ < 0) {
    const int err = errno;
    temp_.clear();
    fail(err);
  }
  temp_ = tmpl.data();
  if (::fchmod(fd_, mode) != 0) fail(errno);
}

AtomicFile::~AtomicFile() {
  if (!committed_) discard();
}

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_.empty()) ::unlink(temp_.c_str());
  temp_.clear();
}

void AtomicFile::fail(int err) {
  discard();
  throw IoError("cannot write " + path_ + ": " + reason(err));
}

void AtomicFile::write(const void* data, std::size_t n) {
  if (fd_ < 0) throw IoError("cannot write " + path_ + ": already closed");
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const std::size_t chunk = std::min<std::size_t>(n, std::size_t{1} << 30);
    const ssize_t w = ::write(fd_, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(errno);
    }
    if (w == 0) fail(EIO);
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) throw IoError("cannot write " + path_ + ": already closed");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail(errno);  // NFS and full quotas report here
  if (!temp_.empty()) {
    if (::rename(temp_.c_str(), target_.c_str()) != 0) fail(errno);
    temp_.clear();
  }
  committed_ = true;
}

void write_file_atomic(const std::string& path, std::string_view data) {
  AtomicFile f(path);
  f.write(data);
  f.commit();
}

void check_stdout() {
  errno = 0;
  const bool flushed = std::fflush(stdout) == 0;
  if (flushed && !std::ferror(stdout)) return;
  const int err = errno;
  std::clearerr(stdout);
  throw IoError("cannot write to standard output: " +
                (err != 0 ? reason(err) : std::string("a write failed")));
}

}  // namespace ropekit::cli
