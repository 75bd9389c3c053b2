#include "npy.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "file_io.h"
#include "ropekit/error.h"

namespace ropekit::cli {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw IoError("cannot read .npy " + path + ": " + what);
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// The header dict, parsed as the Python literal NumPy writes:
//   {'descr': '<f4', 'fortran_order': False, 'shape': (4, 2, 8), }
// Whitespace between tokens and a trailing comma (dict and tuple) are accepted, as Python does;
// anything else (other keys, duplicates, expressions, non-decimal or signed integers,
// "(4)" which is no tuple) is refused.
class HeaderParser {
 public:
  HeaderParser(const std::string& h, const std::string& path) : h_(h), path_(path) {}

  void parse(NpyArray& a) {
    ws();
    if (!eat('{')) bad("expected a dict starting with '{'");
    bool have_descr = false, have_fortran = false, have_shape = false;
    bool fortran = false;
    for (;;) {
      ws();
      if (eat('}')) break;
      const std::string key = string_literal("a key");
      ws();
      if (!eat(':')) bad("expected ':' after '" + echo(key) + "'");
      ws();
      auto once = [&](bool& seen) {
        if (seen) bad("duplicate key '" + key + "'");
        seen = true;
      };
      if (key == "descr") {
        once(have_descr);
        a.dtype = string_literal("the 'descr' value");
      } else if (key == "fortran_order") {
        once(have_fortran);
        if (word("True"))
          fortran = true;
        else if (word("False"))
          fortran = false;
        else
          bad("'fortran_order' must be True or False");
      } else if (key == "shape") {
        once(have_shape);
        a.shape = tuple();
      } else {
        bad("unexpected key '" + echo(key) + "' (NumPy writes 'descr', 'fortran_order', 'shape')");
      }
      ws();
      if (eat(',')) continue;
      if (eat('}')) break;
      bad("expected ',' or '}' after the '" + key + "' value");
    }
    ws();
    if (i_ != h_.size()) bad("unexpected text after the header dict");
    if (!have_descr) fail(path_, "header has no 'descr' entry");
    if (!have_fortran) fail(path_, "header has no 'fortran_order' entry");
    if (!have_shape) fail(path_, "header has no 'shape' entry");
    if (a.dtype != "<f4" && a.dtype != "<f8" && a.dtype != "<i4" && a.dtype != "<i8")
      fail(path_, "unsupported dtype " + echo(a.dtype) +
                      " (expected little-endian float32/float64/int32/int64)");
    if (fortran)
      fail(path_, "Fortran-order arrays are not supported (save with np.ascontiguousarray)");
  }

 private:
  [[noreturn]] void bad(const std::string& what) { fail(path_, "malformed header: " + what); }

  void ws() {
    while (i_ < h_.size() &&
           (h_[i_] == ' ' || h_[i_] == '\t' || h_[i_] == '\n' || h_[i_] == '\r')) {
      ++i_;
    }
  }
  bool eat(char c) {
    if (i_ < h_.size() && h_[i_] == c) return ++i_, true;
    return false;
  }
  bool word(const char* w) {
    const std::size_t n = std::strlen(w);
    if (h_.compare(i_, n, w) != 0) return false;
    const char next = i_ + n < h_.size() ? h_[i_ + n] : ' ';
    if (std::isalnum(static_cast<unsigned char>(next)) || next == '_') return false;
    i_ += n;
    return true;
  }
  std::string string_literal(const char* what) {
    if (i_ >= h_.size() || (h_[i_] != '\'' && h_[i_] != '"')) bad(std::string("expected ") + what);
    const char quote = h_[i_++];
    const std::size_t start = i_;
    while (i_ < h_.size() && h_[i_] != quote) {
      if (h_[i_] == '\\' || h_[i_] == '\n')
        bad("escapes and line breaks in strings are not supported");
      ++i_;
    }
    if (i_ >= h_.size()) bad("unterminated string");
    return h_.substr(start, i_++ - start);
  }
  // A tuple of non-negative decimal integers: "()", "(4,)", "(4, 2, 8)", "(4, 2, 8,)".
  std::vector<std::int64_t> tuple() {
    const std::size_t open = i_;
    const std::size_t close = h_.find(')', open);
    if (i_ >= h_.size() || h_[i_] != '(') {
      bad("'shape' must be a tuple of integers");
    }
    if (close == std::string::npos) fail(path_, "unterminated shape tuple in header");
    const std::string text = echo(h_.substr(open, close - open + 1));
    auto malformed = [&](const std::string& why) -> void {
      fail(path_, "malformed shape " + text + ": " + why);
    };
    ++i_;
    std::vector<std::int64_t> shape;
    ws();
    if (eat(')')) return shape;
    for (;;) {
      ws();
      const bool negative = eat('-');
      const std::size_t digits = i_;
      std::int64_t v = 0;
      bool overflow = false;
      while (i_ < h_.size() && h_[i_] >= '0' && h_[i_] <= '9') {
        const int d = h_[i_++] - '0';
        if (v > (std::numeric_limits<std::int64_t>::max() - d) / 10)
          overflow = true;
        else
          v = v * 10 + d;
      }
      if (i_ == digits)
        malformed("expected a decimal integer at offset " + std::to_string(i_ - open));
      if (h_[digits] == '0' && i_ - digits > 1) malformed("an integer with a leading zero");
      if (negative) fail(path_, "negative dimension in shape " + text);
      if (overflow || v > kNpyMaxDim) {
        fail(path_, "shape too large: dimension " + echo(h_.substr(digits, i_ - digits)) + " in " +
                        text + "; expected each dimension at most 2^31 - 1");
      }
      shape.push_back(v);
      if (shape.size() > kNpyMaxDims) {
        fail(path_, "shape too large: more than " + std::to_string(kNpyMaxDims) + " dimensions");
      }
      ws();
      if (eat(')')) {
        if (shape.size() == 1) malformed("a 1-D shape is written (n,): (n) is not a tuple");
        return shape;
      }
      if (!eat(',')) malformed("expected ',' or ')' after a dimension");
      ws();
      if (eat(')')) return shape;
    }
  }

  const std::string& h_;
  const std::string& path_;
  std::size_t i_ = 0;
};

std::uint64_t le(const unsigned char* b, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(b[i]) << (8 * i);
  return v;
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
    if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * 4);
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
  if (dtype != "<i8" && dtype != "<i4")
    throw IoError(path + ": expected an integer array (int32 or int64), got dtype " + dtype);
  std::vector<std::int64_t> out(static_cast<std::size_t>(size()));
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (dtype == "<i8") {
      std::memcpy(&out[i], bytes.data() + i * 8, 8);
    } else {
      std::int32_t v;
      std::memcpy(&v, bytes.data() + i * 4, 4);
      out[i] = v;
    }
  }
  return out;
}

void parse_npy_header(const std::string& header, const std::string& path, NpyArray& a) {
  HeaderParser(header, path).parse(a);
  std::int64_t n = 1;
  for (const auto d : a.shape) {
    if (d != 0 && n > kNpyMaxElements / d) {
      fail(path, "shape too large: " + shape_text(a.shape) + " has more than 2^32 elements");
    }
    n *= d;
  }
}

NpyArray read_npy(const std::string& path) {
  InputFile in(path);
  unsigned char pre[12];
  const std::size_t got = in.read(pre, 8);
  static const char kMagic[] = "\x93NUMPY";
  if (got < 8 || std::memcmp(pre, kMagic, 6) != 0) fail(path, "not a .npy file (bad magic)");
  const int major = pre[6], minor = pre[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    fail(path,
         fmt::format("unsupported format version {}.{} (expected 1.0, 2.0 or 3.0)", major, minor));
  }
  const int len_bytes = major == 1 ? 2 : 4;
  if (in.read(pre + 8, static_cast<std::size_t>(len_bytes)) != static_cast<std::size_t>(len_bytes))
    fail(path, "truncated header");
  const std::uint64_t header_len = le(pre + 8, len_bytes);
  const std::uint64_t start = 8 + static_cast<std::uint64_t>(len_bytes);
  if (in.regular() && in.size() < start + header_len) fail(path, "truncated header");
  if (header_len > kNpyMaxHeaderBytes) {
    fail(path, fmt::format("header of {} bytes; expected at most {} (1 MiB)", header_len,
                           kNpyMaxHeaderBytes));
  }
  std::string header(static_cast<std::size_t>(header_len), '\0');
  if (in.read(header.data(), header.size()) != header.size()) fail(path, "truncated header");
  NpyArray a;
  a.path = path;
  parse_npy_header(header, path, a);
  const std::size_t elem = (a.dtype == "<f8" || a.dtype == "<i8") ? 8 : 4;
  const std::uint64_t need = static_cast<std::uint64_t>(a.size()) * elem;
  const std::uint64_t data_at = start + header_len;
  auto truncated = [&](std::uint64_t have) {
    fail(path, fmt::format("truncated data: expected {} bytes for shape {}, got {}", need,
                           shape_text(a.shape), have));
  };
  if (in.regular()) {
    if (in.size() - data_at < need) truncated(in.size() - data_at);
    a.bytes.resize(static_cast<std::size_t>(need));
    const std::size_t r = in.read(a.bytes.data(), a.bytes.size());
    if (r != need) truncated(r);  // the file shrank while being read
    return a;
  }
  // A pipe or a device: the memory grows with the data that actually arrives.
  constexpr std::size_t kMinChunk = std::size_t{1} << 20, kMaxChunk = std::size_t{64} << 20;
  while (a.bytes.size() < need) {
    const std::size_t old = a.bytes.size();
    const std::size_t chunk = std::clamp(old, kMinChunk, kMaxChunk);  // doubling, then steady
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, need - old));
    a.bytes.resize(old + want);
    const std::size_t r = in.read(a.bytes.data() + old, want);
    a.bytes.resize(old + r);
    if (r < want) truncated(a.bytes.size());
  }
  return a;
}

std::string npy_f32_header(const std::vector<std::int64_t>& shape) {
  std::string dims;
  for (const auto d : shape) dims += std::to_string(d) + ",";
  if (shape.size() > 1) dims.pop_back();  // "(4,)" for one dimension, "(4,2,8)" for more
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Version 1.0 while the padded header fits its 16-bit length, else 2.0 (as NumPy does); the
  // data starts at a multiple of 64 bytes.
  auto padded = [&](std::size_t prefix) {
    return (prefix + header.size() + 1 + 63) / 64 * 64 - prefix;
  };
  const bool v1 = padded(10) <= 65535;
  const std::size_t prefix = v1 ? 10 : 12;
  header.append(padded(prefix) - header.size() - 1, ' ');
  header.push_back('\n');
  std::string out = std::string("\x93NUMPY", 6) + static_cast<char>(v1 ? 1 : 2) + '\0';
  const std::size_t len = header.size();
  for (std::size_t b = 0; b < prefix - 8; ++b) out += static_cast<char>((len >> (8 * b)) & 0xFF);
  return out + header;
}

void write_npy_f32(const std::string& path, const std::vector<std::int64_t>& shape,
                   const float* data) {
  std::int64_t n = 1;
  for (const auto d : shape) n *= d;
  AtomicFile out(path);
  out.write(npy_f32_header(shape));
  if (n > 0) out.write(data, static_cast<std::size_t>(n) * 4);
  out.commit();
}

}  // namespace ropekit::cli
