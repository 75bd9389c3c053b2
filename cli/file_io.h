// Internal to the ropekit command: every file the command reads or writes goes through here, so
// that hostile inputs and failing disks give a clear error instead of a crash, an unbounded read
// or a corrupt file (docs/errors.md "Limits").
//
//   * Reads are bounded: a file with a header (.npy) is read for what its header says, a file
//     without one (kwargs JSON) up to a cap; directories are refused by name.
//   * Writes are atomic: AtomicFile writes a temporary file in the output's folder, checks every
//     write and the close, and renames it over the output at the end. On any failure (or an
//     exception before commit()) the temporary file is removed and an existing output, which
//     may be the input itself, is left as it was. Outputs that exist and are not regular files
//     (/dev/null, /dev/full, a pipe) are written in place, with every write checked.
//   * Standard output is checked: check_stdout() flushes it and turns a write error (a full
//     disk, a closed descriptor) into an IoError, so no command exits 0 with its output lost.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ropekit::cli {

// Limits of what the command reads (documented in docs/errors.md, checked before any work).
inline constexpr std::uint64_t kMaxTextFileBytes = std::uint64_t{16} << 20;  // kwargs JSON
inline constexpr std::size_t kMaxEchoBytes = 64;  // user text echoed in a message

// User text for a message: control characters escaped (\n, \x1b, ...), and at most
// kMaxEchoBytes bytes of it (cut at a UTF-8 boundary) followed by "… (N bytes)".
std::string echo(std::string_view user_text);

// A file opened for reading: IoError "cannot open PATH: <reason>" when it cannot be opened,
// "PATH: is a directory" for a directory.
class InputFile {
 public:
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  bool regular() const { return regular_; }
  std::uint64_t size() const { return size_; }  // regular files only
  // Reads up to n bytes (fewer only at the end of the file); IoError on a read error.
  std::size_t read(void* data, std::size_t n);

 private:
  std::string path_;
  int fd_ = -1;
  bool regular_ = false;
  std::uint64_t size_ = 0;
};

// A whole text file of at most max_bytes bytes (IoError naming `what`, the path and the limit
// beyond it, without reading further).
std::string read_text_file_bounded(const std::string& path, std::uint64_t max_bytes,
                                   const std::string& what);

// An output file written atomically (see above). write() and commit() throw IoError
// "cannot write PATH: <reason>"; the destructor removes the temporary file unless committed.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  void commit();  // checked close, then rename over the output

 private:
  [[noreturn]] void fail(int err);
  void discard() noexcept;

  std::string path_;    // what the user asked for
  std::string target_;  // where the rename goes (symbolic links resolved)
  std::string temp_;    // empty when writing in place
  int fd_ = -1;
  bool committed_ = false;
};

// Writes `data` to `path` with an AtomicFile.
void write_file_atomic(const std::string& path, std::string_view data);

// Flushes stdout; IoError "cannot write to standard output: <reason>" when any write to it
// failed since the start (the error flag is sticky) or the flush fails.
void check_stdout();

}  // namespace ropekit::cli
