// Test helper: writes GGUF files (the format of include/ropekit/gguf.h), well-formed or not, so
// the tests need no real model file. Little-endian host assumed (as the reader).
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace ropekit::test {

class GgufWriter {
 public:
  explicit GgufWriter(std::uint32_t version = 3) : version_(version) {}

  GgufWriter& str(const std::string& key, const std::string& v) {
    begin(key, 8);
    put_string(kv_, v);
    return *this;
  }
  GgufWriter& u32(const std::string& key, std::uint32_t v) { return scalar(key, 4, v); }
  GgufWriter& i32(const std::string& key, std::int32_t v) { return scalar(key, 5, v); }
  GgufWriter& u64(const std::string& key, std::uint64_t v) { return scalar(key, 10, v); }
  GgufWriter& f32(const std::string& key, float v) { return scalar(key, 6, v); }
  GgufWriter& f64(const std::string& key, double v) { return scalar(key, 12, v); }
  GgufWriter& boolean(const std::string& key, bool v) {
    return scalar(key, 7, static_cast<std::uint8_t>(v));
  }
  GgufWriter& i32_array(const std::string& key, const std::vector<std::int32_t>& v) {
    begin(key, 9);
    put(kv_, std::uint32_t{5});
    put(kv_, static_cast<std::uint64_t>(v.size()));
    for (auto x : v) put(kv_, x);
    return *this;
  }
  GgufWriter& bool_array(const std::string& key, const std::vector<bool>& v) {
    begin(key, 9);
    put(kv_, std::uint32_t{7});
    put(kv_, static_cast<std::uint64_t>(v.size()));
    for (bool x : v) put(kv_, static_cast<std::uint8_t>(x));
    return *this;
  }
  // A tokenizer-like array of n strings of `len` bytes each.
  GgufWriter& string_array(const std::string& key, std::uint64_t n, std::size_t len) {
    begin(key, 9);
    put(kv_, std::uint32_t{8});
    put(kv_, n);
    const std::string s(len, 'x');
    for (std::uint64_t i = 0; i < n; ++i) put_string(kv_, s);
    return *this;
  }
  // Raw bytes appended to the key/value section (for malformed files); counts as one key.
  GgufWriter& raw_kv(const std::string& bytes) {
    kv_ += bytes;
    ++n_kv_;
    return *this;
  }
  // An f32 tensor with its data.
  GgufWriter& tensor(const std::string& name, const std::vector<float>& v) {
    std::string data(v.size() * 4, '\0');
    if (!v.empty()) std::memcpy(data.data(), v.data(), data.size());
    return tensor_raw(name, {v.size()}, 0, data);
  }
  // A tensor of any type and shape with the given data bytes.
  GgufWriter& tensor_raw(const std::string& name, const std::vector<std::uint64_t>& dims,
                         std::uint32_t type, const std::string& data) {
    tensors_.push_back({name, dims, type, data});
    return *this;
  }

  std::string bytes(std::uint64_t alignment = 32) const {
    std::string out = "GGUF";
    put(out, version_);
    put(out, static_cast<std::uint64_t>(tensors_.size()));
    put(out, n_kv_);
    out += kv_;
    std::uint64_t offset = 0;
    std::string data;
    for (const auto& t : tensors_) {
      put_string(out, t.name);
      put(out, static_cast<std::uint32_t>(t.dims.size()));
      for (auto d : t.dims) put(out, d);
      put(out, t.type);
      put(out, offset);
      data += t.data;
      offset += t.data.size();
      while (offset % alignment) data += '\0', ++offset;
    }
    while (out.size() % alignment) out += '\0';
    return out + data;
  }

  void write(const std::filesystem::path& path) const {
    std::ofstream f(path, std::ios::binary);
    const std::string b = bytes();
    f.write(b.data(), static_cast<std::streamsize>(b.size()));
  }

  template <typename T>
  static void put(std::string& s, T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s.append(b, sizeof(T));
  }
  static void put_string(std::string& s, const std::string& v) {
    put(s, static_cast<std::uint64_t>(v.size()));
    s += v;
  }

 private:
  struct Tensor {
    std::string name;
    std::vector<std::uint64_t> dims;
    std::uint32_t type;
    std::string data;
  };
  void begin(const std::string& key, std::uint32_t type) {
    put_string(kv_, key);
    put(kv_, type);
    ++n_kv_;
  }
  template <typename T>
  GgufWriter& scalar(const std::string& key, std::uint32_t type, T v) {
    begin(key, type);
    put(kv_, v);
    return *this;
  }

  std::uint32_t version_;
  std::uint64_t n_kv_ = 0;
  std::string kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace ropekit::test
