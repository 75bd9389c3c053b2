// Internal to the ropekit command: minimal .npy (NumPy format 1.0/2.0/3.0) reading and writing.
// Reads little-endian float32/float64/int32/int64 arrays in C order; anything else (Fortran
// order, big-endian, other dtypes, truncated data, bad magic) is an IoError naming the file
// and the problem.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ropekit::cli {

struct NpyArray {
  std::string path;   // the file it came from (for messages)
  std::string dtype;  // "<f4", "<f8", "<i4", "<i8"
  std::vector<std::int64_t> shape;
  std::vector<char> bytes;  // raw little-endian data, C order
  std::int64_t size() const;
  std::vector<float> as_float32() const;             // f4 (exact) or f8 (rounded)
  std::vector<std::int64_t> as_int64() const;        // i4/i8, or integral floats
};

NpyArray read_npy(const std::string& path);
void write_npy_f32(const std::string& path, const std::vector<std::int64_t>& shape,
                   const float* data);

}  // namespace ropekit::cli
