// .npy files for the CLI tests (tests/cli/): the bytes of a file whose header text is given as
// it is, so that tests can write valid arrays and deliberately malformed headers alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace ropekit::cli_test {

// Format `major`.0: the magic, the version, the header length (2 bytes little-endian for 1.0, 4
// for 2.0 and 3.0), `dict` padded with spaces and a newline so that the data starts on a 64-byte
// boundary, then `data`.
inline std::string npy_file_bytes(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict;
  const std::size_t prefix = major == 1 ? 10 : 12;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  std::string file = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
  for (std::size_t b = 0; b < prefix - 8; ++b)
    file += static_cast<char>((header.size() >> (8 * b)) & 0xFF);
  return file + header + data;
}

// The header of a C-order array: descr ("<f4", "<i8", ...) and its shape.
inline std::string npy_dict(const std::string& descr, const std::vector<std::int64_t>& shape) {
  std::string dims;
  for (const std::int64_t d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);  // (n,) keeps its comma
  if (shape.size() == 1) dims.pop_back();
  return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
}

// Writes a C-order array of `bytes` bytes at `path` (format 1.0).
inline void write_npy(const std::string& path, const std::string& descr,
                      const std::vector<std::int64_t>& shape, const void* data, std::size_t bytes) {
  std::ofstream(path, std::ios::binary)
      << npy_file_bytes(npy_dict(descr, shape), std::string(static_cast<const char*>(data), bytes));
}

}  // namespace ropekit::cli_test
