// Internal to the ropekit command: .npy (NumPy format 1.0/2.0/3.0) reading and writing.
// Reads little-endian float32/float64/int32/int64 arrays in C order whose header is what NumPy
// writes: a Python dict literal with exactly the keys 'descr', 'fortran_order' and 'shape' (a
// tuple of decimal integers). Anything else (Fortran order, big-endian, other dtypes, malformed
// or duplicate keys, truncated data, bad magic) is an IoError naming the file and the problem.
// Only the bytes the header announces are read; the limits below are checked before any data
// is read or allocated (docs/errors.md "Limits").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ropekit::cli {

inline constexpr std::size_t kNpyMaxHeaderBytes = std::size_t{1} << 20;  // 1 MiB
inline constexpr std::size_t kNpyMaxDims = 64;                           // NumPy 2's maximum
inline constexpr std::int64_t kNpyMaxDim = (std::int64_t{1} << 31) - 1;  // each dimension
inline constexpr std::int64_t kNpyMaxElements = std::int64_t{1} << 32;   // 16 GiB of float32

struct NpyArray {
  std::string path;   // the file it came from (for messages)
  std::string dtype;  // "<f4", "<f8", "<i4", "<i8"
  std::vector<std::int64_t> shape;
  std::vector<char> bytes;  // raw little-endian data, C order
  std::int64_t size() const;
  std::vector<float> as_float32() const;       // f4 (exact) or f8 (rounded)
  std::vector<std::int64_t> as_int64() const;  // i4/i8, or integral floats
};

NpyArray read_npy(const std::string& path);
// Parses a header dict (the text after the length field) into dtype and shape, as read_npy.
void parse_npy_header(const std::string& header, const std::string& path, NpyArray& a);
// Writes float32 data atomically (cli/file_io.h); a version 2.0 header when the header does not
// fit version 1.0's 16-bit length.
void write_npy_f32(const std::string& path, const std::vector<std::int64_t>& shape,
                   const float* data);
// The bytes write_npy_f32 writes before the data.
std::string npy_f32_header(const std::vector<std::int64_t>& shape);

}  // namespace ropekit::cli
