#include "npy.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "ropekit/error.h"

namespace ropekit::cli {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw IoError("cannot read .npy " + path + ": " + what);
}

// Value of 'key': in the header dict (a Python literal).
std::string header_value(const std::string& header, const std::string& key, const std::string& path) {
  const std::string k = "'" + key + "':";
  const auto at = header.find(k);
  if (at == std::string::npos) fail(path, "header has no '" + key + "' entry");
  std::size_t i = at + k.size();
  while (i < header.size() && header[i] == ' ') ++i;
  if (i >= header.size()) fail(path, "truncated header");
  if (header[i] == '\'') {
    const auto end = header.find('\'', i + 1);
    if (end == std::string::npos) fail(path, "unterminated string in header");
    return header.substr(i + 1, end - i - 1);
  }
  if (header[i] == '(') {
    const auto end = header.find(')', i);
    if (end == std::string::npos) fail(path, "unterminated shape tuple in header");
    return header.substr(i + 1, end - i - 1);
  }
  const auto end = header.find_first_of(",}", i);
  return header.substr(i, end == std::string::npos ? std::string::npos : end - i);
}

}  // namespace

std::int64_t NpyArray::size() const {
  std::int64_t n = 1;
  for (const auto d : shape) n *= d;
  return n;
}

std::vector<float> NpyArray::as_float32() const {
  std::vector<float> out(static_cast<std::size_t>(size()));
  if (dtype == "<f4") {
    std::memcpy(out.data(), bytes.data(), out.size() * 4);
  } else if (dtype == "<f8") {
    for (std::size_t i = 0; i < out.size(); ++i) {
      double d;
      std::memcpy(&d, bytes.data() + i * 8, 8);
      out[i] = static_cast<float>(d);
    }
  } else {
    throw IoError(path + ": expected a float32 array, got dtype " + dtype);
  }
  return out;
}

std::vector<std::int64_t> NpyArray::as_int64() const {
  std::vector<std::int64_t> out(static_cast<std::size_t>(size()));
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (dtype == "<i8") {
      std::memcpy(&out[i], bytes.data() + i * 8, 8);
    } else if (dtype == "<i4") {
      std::int32_t v;
      std::memcpy(&v, bytes.data() + i * 4, 4);
      out[i] = v;
    } else {
      throw IoError(path + ": expected an integer array (int32 or int64), got dtype " + dtype);
    }
  }
  return out;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string file = ss.str();
  static const char kMagic[] = "\x93NUMPY";
  if (file.size() < 10 || file.compare(0, 6, kMagic, 6) != 0) fail(path, "not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(file[6]);
  std::size_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(file[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(file[9])) << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (file.size() < 12) fail(path, "truncated header");
    header_len = 0;
    for (int b = 0; b < 4; ++b) header_len |= static_cast<std::size_t>(static_cast<unsigned char>(file[8 + b])) << (8 * b);
    start = 12;
  } else {
    fail(path, "unsupported format version " + std::to_string(major));
  }
  if (file.size() < start + header_len) fail(path, "truncated header");
  const std::string header = file.substr(start, header_len);
  NpyArray a;
  a.path = path;
  a.dtype = header_value(header, "descr", path);
  if (a.dtype == "|i1" || a.dtype == "|u1") fail(path, "unsupported dtype " + a.dtype);
  if (a.dtype != "<f4" && a.dtype != "<f8" && a.dtype != "<i4" && a.dtype != "<i8")
    fail(path, "unsupported dtype " + a.dtype + " (expected little-endian float32/float64/int32/int64)");
  const std::string fortran = header_value(header, "fortran_order", path);
  if (fortran.find("True") != std::string::npos)
    fail(path, "Fortran-order arrays are not supported (save with np.ascontiguousarray)");
  const std::string shape = header_value(header, "shape", path);
  std::stringstream sh(shape);
  std::string item;
  while (std::getline(sh, item, ',')) {
    const auto b = item.find_first_not_of(" ");
    if (b == std::string::npos) continue;
    try {
      std::size_t used = 0;
      const long long v = std::stoll(item.substr(b), &used);
      if (v < 0) fail(path, "negative dimension in shape (" + shape + ")");
      a.shape.push_back(v);
    } catch (const std::logic_error&) {
      fail(path, "malformed shape (" + shape + ")");
    }
  }
  const std::size_t elem = (a.dtype == "<f8" || a.dtype == "<i8") ? 8 : 4;
  std::int64_t n = 1;
  for (const auto d : a.shape) {
    if (d != 0 && n > std::numeric_limits<std::int64_t>::max() / 16 / d) fail(path, "shape too large");
    n *= d;
  }
  const std::size_t need = static_cast<std::size_t>(n) * elem;
  const std::size_t data_at = start + header_len;
  if (file.size() - data_at < need)
    fail(path, "truncated data: expected " + std::to_string(need) + " bytes for shape (" + shape + "), got " +
                   std::to_string(file.size() - data_at));
  a.bytes.assign(file.begin() + static_cast<std::ptrdiff_t>(data_at),
                 file.begin() + static_cast<std::ptrdiff_t>(data_at + need));
  return a;
}

void write_npy_f32(const std::string& path, const std::vector<std::int64_t>& shape, const float* data) {
  std::string dims;
  std::int64_t n = 1;
  for (const auto d : shape) {
    dims += std::to_string(d) + ",";
    n *= d;
  }
  if (shape.size() > 1) dims.pop_back();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  if (!out) throw IoError("cannot write " + path);
  out.write("\x93NUMPY\x01\x00", 8);
  const auto len = static_cast<std::uint16_t>(header.size());
  const char lenb[2] = {static_cast<char>(len & 0xFF), static_cast<char>(len >> 8)};
  out.write(lenb, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * 4));
  if (!out) throw IoError("cannot write " + path);
}

}  // namespace ropekit::cli
