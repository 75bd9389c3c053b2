// The GGUF binary format (ggml's gguf.cpp and gguf-py define it; include/ropekit/gguf.h draws
// it). Every count and length is checked against the bytes left in the file before it is used,
// so a hostile header can neither allocate nor read past the end.
#include "config/gguf_reader.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <limits>

#include "ropekit/error.h"

namespace ropekit::detail {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader assumes a little-endian host");

class FileSource final : public ByteSource {
 public:
  explicit FileSource(const std::filesystem::path& path) : path_(path.string()) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      throw IoError("cannot read " + path_ + ": is a directory");
    file_ = std::fopen(path_.c_str(), "rb");
    if (!file_) throw IoError("cannot open " + path_);
    if (std::fseek(file_, 0, SEEK_END) != 0) throw IoError("cannot seek in " + path_);
    const long end = std::ftell(file_);
    if (end < 0) throw IoError("cannot seek in " + path_);
    size_ = static_cast<std::uint64_t>(end);
  }
  ~FileSource() override { std::fclose(file_); }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  std::uint64_t size() const override { return size_; }

  void read(std::uint64_t offset, void* dst, std::size_t n) override {
    auto* out = static_cast<unsigned char*>(dst);
    if (n > kWindow / 2) {  // large reads bypass the window
      fill(offset, out, n);
      return;
    }
    if (offset < window_start_ || offset + n > window_start_ + window_.size()) {
      const std::uint64_t len = std::min<std::uint64_t>(kWindow, size_ - offset);
      window_.resize(static_cast<std::size_t>(len));
      fill(offset, window_.data(), window_.size());
      window_start_ = offset;
    }
    std::memcpy(out, window_.data() + (offset - window_start_), n);
  }

 private:
  static constexpr std::size_t kWindow = 64u << 10;

  void fill(std::uint64_t offset, unsigned char* dst, std::size_t n) {
    if (offset > static_cast<std::uint64_t>(std::numeric_limits<long>::max()) ||
        std::fseek(file_, static_cast<long>(offset), SEEK_SET) != 0 ||
        std::fread(dst, 1, n, file_) != n)
      throw IoError("cannot read " + std::to_string(n) + " bytes at byte offset " +
                    std::to_string(offset) + " of " + path_);
  }

  std::string path_;
  std::FILE* file_ = nullptr;
  std::uint64_t size_ = 0;
  std::vector<unsigned char> window_;
  std::uint64_t window_start_ = 0;
};

class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::string_view bytes) : bytes_(bytes) {}
  std::uint64_t size() const override { return bytes_.size(); }
  void read(std::uint64_t offset, void* dst, std::size_t n) override {
    std::memcpy(dst, bytes_.data() + offset, n);
  }

 private:
  std::string_view bytes_;
};

std::string at(std::uint64_t offset) { return "byte offset " + std::to_string(offset); }

// Fixed element sizes of the scalar types; 0 for string and array.
std::uint64_t scalar_size(std::uint32_t type) {
  switch (type) {
    case kGgufU8:
    case kGgufI8:
    case kGgufBool:
      return 1;
    case kGgufU16:
    case kGgufI16:
      return 2;
    case kGgufU32:
    case kGgufI32:
    case kGgufF32:
      return 4;
    case kGgufU64:
    case kGgufI64:
    case kGgufF64:
      return 8;
    default:
      return 0;
  }
}

// A sequential reader over the source with the current offset.
class Cursor {
 public:
  Cursor(ByteSource& s, const GgufReadOptions& o) : src_(s), opt_(o), size_(s.size()) {}

  std::uint64_t pos() const { return pos_; }
  std::uint64_t left() const { return size_ - pos_; }

  void need(std::uint64_t n, const std::string& what) const {
    if (n > left())
      throw ConfigError(at(pos_), "expected " + what + " (" + std::to_string(n) +
                                      " bytes), got end of file after " + std::to_string(left()) +
                                      " bytes (truncated file)");
  }
  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    src_.read(pos_, &v, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  void skip(std::uint64_t n, const std::string& what) {
    need(n, what);
    pos_ += n;
  }
  void seek(std::uint64_t p) { pos_ = p; }

  // A u64-length string; longer than the limit: ConfigError, unless skipped.
  std::string string(const char* what) {
    const std::uint64_t start = pos_;
    const auto n = get<std::uint64_t>(what);
    if (n > opt_.max_string_bytes)
      throw ConfigError(at(start), std::string("expected ") + what + " of at most " +
                                       std::to_string(opt_.max_string_bytes) +
                                       " bytes, got a length of " + std::to_string(n));
    need(n, what);
    std::string s(static_cast<std::size_t>(n), '\0');
    if (n) src_.read(pos_, s.data(), s.size());
    pos_ += n;
    return s;
  }
  void skip_string(const char* what) {
    const auto n = get<std::uint64_t>(what);
    skip(n, what);
  }

  ByteSource& source() { return src_; }

 private:
  ByteSource& src_;
  const GgufReadOptions& opt_;
  std::uint64_t size_;
  std::uint64_t pos_ = 0;
};

// Reads one scalar of `type` into v (numbers) or skips it.
void read_scalar(Cursor& c, std::uint32_t type, GgufValue& v) {
  auto set_int = [&](bool neg, std::uint64_t mag) {
    v.integer_negative = neg;
    v.integer_magnitude = mag;
    v.number = neg ? -static_cast<double>(mag) : static_cast<double>(mag);
  };
  auto signed_int = [&](std::int64_t x) {
    set_int(x < 0, x < 0 ? 0 - static_cast<std::uint64_t>(x) : static_cast<std::uint64_t>(x));
  };
  switch (type) {
    case kGgufU8:
      set_int(false, c.get<std::uint8_t>("a u8"));
      break;
    case kGgufI8:
      signed_int(c.get<std::int8_t>("an i8"));
      break;
    case kGgufU16:
      set_int(false, c.get<std::uint16_t>("a u16"));
      break;
    case kGgufI16:
      signed_int(c.get<std::int16_t>("an i16"));
      break;
    case kGgufU32:
      set_int(false, c.get<std::uint32_t>("a u32"));
      break;
    case kGgufI32:
      signed_int(c.get<std::int32_t>("an i32"));
      break;
    case kGgufU64:
      set_int(false, c.get<std::uint64_t>("a u64"));
      break;
    case kGgufI64:
      signed_int(c.get<std::int64_t>("an i64"));
      break;
    case kGgufF32:
      v.number = c.get<float>("an f32");
      break;
    case kGgufF64:
      v.number = c.get<double>("an f64");
      break;
    case kGgufBool: {
      const std::uint64_t start = c.pos();
      const auto b = c.get<std::uint8_t>("a bool");
      if (b > 1) throw ConfigError(at(start), "expected a bool (0 or 1), got " + std::to_string(b));
      v.number = b;
      break;
    }
    default:
      break;
  }
}

void check_type(std::uint32_t type, std::uint64_t offset) {
  if (type > kGgufF64)
    throw ConfigError(at(offset),
                      "expected a GGUF value type (0..12), got " + std::to_string(type));
}

// Reads (kept) or skips one value of `type` at the cursor.
void read_value(Cursor& c, std::uint32_t type, bool keep, GgufValue& v) {
  if (type == kGgufString) {
    if (keep)
      v.text = c.string("a string value");
    else
      c.skip_string("a string value");
    return;
  }
  if (type != kGgufArray) {
    read_scalar(c, type, v);
    return;
  }
  const std::uint64_t type_at = c.pos();
  v.element_type = c.get<std::uint32_t>("an array element type");
  check_type(v.element_type, type_at);
  if (v.element_type == kGgufArray)
    throw ConfigError(at(type_at), "expected an array of scalars or strings, got nested arrays");
  const std::uint64_t count_at = c.pos();
  v.count = c.get<std::uint64_t>("an array length");
  const std::uint64_t each = v.element_type == kGgufString ? 8 : scalar_size(v.element_type);
  if (v.count > c.left() / each)
    throw ConfigError(at(count_at), "expected an array length that fits in the " +
                                        std::to_string(c.left()) + " bytes left, got " +
                                        std::to_string(v.count) + " elements of " +
                                        gguf_type_name(v.element_type));
  if (v.element_type == kGgufString) {  // walked, never held (tokenizer vocabularies)
    for (std::uint64_t i = 0; i < v.count; ++i) c.skip_string("an array string");
    return;
  }
  constexpr std::uint64_t kMaxKeptElements = 1u << 16;
  if (!keep || v.count > kMaxKeptElements) {
    c.skip(v.count * each, "array elements");
    return;
  }
  v.kept_elements = true;
  v.numbers.reserve(static_cast<std::size_t>(v.count));
  for (std::uint64_t i = 0; i < v.count; ++i) {
    GgufValue e;
    read_scalar(c, v.element_type, e);
    v.numbers.push_back(e.number);
  }
}

}  // namespace

std::unique_ptr<ByteSource> open_file_source(const std::filesystem::path& path) {
  return std::make_unique<FileSource>(path);
}
std::unique_ptr<ByteSource> memory_source(std::string_view bytes) {
  return std::make_unique<MemorySource>(bytes);
}

std::string gguf_type_name(std::uint32_t type, std::uint32_t element_type) {
  static const char* const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                      "bool", "string", "array", "u64", "i64", "f64"};
  if (type > kGgufF64) return "type " + std::to_string(type);
  if (type == kGgufArray) return "array of " + gguf_type_name(element_type);
  return names[type];
}

GgufHeader read_gguf_header(ByteSource& source, const GgufKeep& keep,
                            const GgufReadOptions& options) {
  Cursor c(source, options);
  GgufHeader h;
  const auto magic = c.get<std::uint32_t>("the GGUF magic");
  if (magic != 0x46554747u)  // "GGUF" little-endian
    throw ConfigError(at(0), "expected the GGUF magic \"GGUF\", got another file type");
  h.version = c.get<std::uint32_t>("the GGUF version");
  if (h.version != 2 && h.version != 3) {
    const std::uint32_t swapped = __builtin_bswap32(h.version);
    if (swapped >= 1 && swapped <= 3)
      throw ConfigError(at(4),
                        "expected a little-endian GGUF file, got a big-endian one (version " +
                            std::to_string(swapped) + "); big-endian files are not supported");
    throw ConfigError(at(4),
                      "expected GGUF version 2 or 3, got " + std::to_string(h.version) +
                          (h.version == 1 ? " (version 1 has 32-bit counts; re-convert)" : ""));
  }
  h.tensor_count = c.get<std::uint64_t>("the tensor count");
  const std::uint64_t kv_at = c.pos();
  h.kv_count = c.get<std::uint64_t>("the key/value count");
  // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes, each tensor info at least
  // 8 + 4 + 4 + 8: counts that cannot fit in the file are refused before the walk.
  if (h.kv_count > c.left() / 13)
    throw ConfigError(at(kv_at), "expected a key/value count that fits in the file, got " +
                                     std::to_string(h.kv_count));
  if (h.tensor_count > c.left() / 24)
    throw ConfigError(at(8), "expected a tensor count that fits in the file, got " +
                                 std::to_string(h.tensor_count));

  for (std::uint64_t i = 0; i < h.kv_count; ++i) {
    const std::uint64_t key_at = c.pos();
    std::string key = c.string("a key");
    const std::uint64_t type_at = c.pos();
    const auto type = c.get<std::uint32_t>("a value type");
    check_type(type, type_at);
    const bool kept = keep.key && keep.key(key);
    GgufValue v;
    v.type = type;
    v.offset = c.pos();
    read_value(c, type, kept, v);
    if (key == "general.alignment") {
      if (type != kGgufU32)
        throw ConfigError(key, "expected a u32, got " + gguf_type_name(type, v.element_type));
      if (v.integer_magnitude == 0 || !std::has_single_bit(v.integer_magnitude))
        throw ConfigError(key,
                          "expected a power of two, got " + std::to_string(v.integer_magnitude));
      h.alignment = v.integer_magnitude;
    }
    if (!kept) continue;
    if (h.values.count(key))
      throw ConfigError(key, "expected each key once, got a second one at " + at(key_at));
    h.values.emplace(std::move(key), std::move(v));
  }

  struct TensorRef {
    std::string name;
    std::uint64_t elements, offset, info_at;
  };
  std::vector<TensorRef> wanted;
  for (std::uint64_t i = 0; i < h.tensor_count; ++i) {
    const std::uint64_t info_at = c.pos();
    std::string name = c.string("a tensor name");
    const std::uint64_t dims_at = c.pos();
    const auto n_dims = c.get<std::uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > 4)
      throw ConfigError(at(dims_at), "expected 1 to 4 dimensions for tensor \"" + name +
                                         "\", got " + std::to_string(n_dims));
    std::uint64_t elements = 1;
    bool overflow = false;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const auto n = c.get<std::uint64_t>("a tensor dimension");
      if (n != 0 && elements > std::numeric_limits<std::uint64_t>::max() / n) overflow = true;
      elements *= n;
    }
    const std::uint64_t type_at = c.pos();
    const auto ggml_type = c.get<std::uint32_t>("a tensor's ggml type");
    const auto offset = c.get<std::uint64_t>("a tensor's data offset");
    if (!(keep.tensor && keep.tensor(name))) continue;
    if (overflow || elements > options.max_rope_tensor_elements)
      throw ConfigError(name, "expected at most " +
                                  std::to_string(options.max_rope_tensor_elements) + " elements (" +
                                  at(dims_at) + "), got more");
    if (ggml_type != 0)  // GGML_TYPE_F32
      throw ConfigError(name, "expected ggml type 0 (f32) at " + at(type_at) + ", got " +
                                  std::to_string(ggml_type));
    wanted.push_back({std::move(name), elements, offset, info_at});
  }
  const std::uint64_t pad = (h.alignment - c.pos() % h.alignment) % h.alignment;
  h.data_offset = c.pos() + pad;
  for (TensorRef& t : wanted) {
    if (h.tensors.count(t.name))
      throw ConfigError(t.name, "expected each tensor once, got a second one at " + at(t.info_at));
    const std::uint64_t bytes = t.elements * 4;
    if (h.data_offset > source.size() || t.offset > source.size() - h.data_offset ||
        bytes > source.size() - h.data_offset - t.offset)
      throw ConfigError(t.name, "expected " + std::to_string(bytes) + " bytes of data at " +
                                    at(h.data_offset) + " + " + std::to_string(t.offset) +
                                    ", got a file of " + std::to_string(source.size()) +
                                    " bytes (truncated file)");
    std::vector<float> values(static_cast<std::size_t>(t.elements));
    if (!values.empty()) source.read(h.data_offset + t.offset, values.data(), bytes);
    h.tensors.emplace(std::move(t.name), std::move(values));
  }
  return h;
}

}  // namespace ropekit::detail
