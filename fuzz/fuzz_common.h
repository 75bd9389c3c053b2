// Shared by the fuzz targets: a byte reader that turns fuzzer input into bounded choices, and
// the way a finding is reported (a message on stderr, then abort(): libFuzzer saves the input
// as crash-<sha1>, the replay driver exits non-zero).
//
// Written without libFuzzer's FuzzedDataProvider so the same targets build with GCC as plain
// replay executables (fuzz/replay_main.cc) for the regression tests.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace ropekit::fuzz {

// Reads little-endian integers from the front of the input; past the end everything reads as 0,
// so every input (the empty one included) decodes to some valid choice sequence.
class ByteReader {
 public:
  ByteReader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::uint64_t bits(int nbytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < nbytes; ++i) v |= static_cast<std::uint64_t>(byte()) << (8 * i);
    return v;
  }
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  bool flag() { return (byte() & 1) != 0; }
  // Uniform-ish integer in [lo, hi] (hi - lo < 2^32).
  std::int64_t range(std::int64_t lo, std::int64_t hi) {
    const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
    const int nbytes = span <= 0x100 ? 1 : span <= 0x10000 ? 2 : 4;
    return lo + static_cast<std::int64_t>(bits(nbytes) % span);
  }
  // One of n choices.
  int pick(int n) { return static_cast<int>(range(0, n - 1)); }
  // A double in [lo, hi], 16 bits of resolution.
  double unit_range(double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(bits(2)) / 65535.0;
  }
  std::size_t remaining() const { return pos_ < size_ ? size_ - pos_ : 0; }
  const std::uint8_t* rest() const { return data_ + (pos_ < size_ ? pos_ : size_); }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// Reports a finding and aborts (libFuzzer and the replay driver both treat abort as a crash).
[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "\n==ropekit-fuzz== FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

inline bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

// Known findings can be silenced while their fix is pending, so a long campaign looks for new
// ones: ROPEKIT_FUZZ_KNOWN="id1,id2" (ids are listed in fuzz/README.md). CI never sets it.
inline bool known(std::string_view id) {
  const char* v = std::getenv("ROPEKIT_FUZZ_KNOWN");
  if (v == nullptr) return false;
  const std::string_view list(v);
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t end = std::min(list.find(',', start), list.size());
    if (list.substr(start, end - start) == id) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace ropekit::fuzz
