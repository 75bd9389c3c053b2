// Internal: the GGUF binary format, read with a bounds check before every allocation.
//
// read_gguf_header walks the key/value section and the tensor infos of a GGUF file (versions 2
// and 3, little-endian) through a ByteSource, keeps the values `keep` asks for and the data of
// the tensors `keep_tensor` asks for (f32, read by seeking to them), and skips everything
// else without holding it in memory. Errors are ConfigErrors naming "byte offset N" or the key.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ropekit/gguf.h"

namespace ropekit::detail {

// Random access to the bytes of a file or a buffer.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual std::uint64_t size() const = 0;
  // Copies n bytes at offset into dst; the caller has checked offset + n <= size().
  virtual void read(std::uint64_t offset, void* dst, std::size_t n) = 0;
};

// A file read through a 64 KiB window (sequential small reads cost a memcpy). Throws IoError.
std::unique_ptr<ByteSource> open_file_source(const std::filesystem::path& path);
// Bytes in memory (not copied: they must outlive the source).
std::unique_ptr<ByteSource> memory_source(std::string_view bytes);

enum GgufType : std::uint32_t {
  kGgufU8 = 0,
  kGgufI8 = 1,
  kGgufU16 = 2,
  kGgufI16 = 3,
  kGgufU32 = 4,
  kGgufI32 = 5,
  kGgufF32 = 6,
  kGgufBool = 7,
  kGgufString = 8,
  kGgufArray = 9,
  kGgufU64 = 10,
  kGgufI64 = 11,
  kGgufF64 = 12,
};
// "u32", "string", "array of f32", ... for messages.
std::string gguf_type_name(std::uint32_t type, std::uint32_t element_type = 0);

// A kept value. Scalars: `number` (integers exactly up to 2^53, and `integer` for all), or
// `text`; arrays of numbers or bools: `numbers` (bools as 0/1). Arrays of strings are never kept.
struct GgufValue {
  std::uint32_t type = 0;
  std::uint32_t element_type = 0;  // arrays
  std::uint64_t offset = 0;        // byte offset of the value (after the type)
  std::uint64_t count = 0;         // arrays: element count
  bool integer_negative = false;
  std::uint64_t integer_magnitude = 0;  // integer scalars: |value|
  double number = 0;
  std::string text;
  std::vector<double> numbers;
  bool kept_elements = false;  // arrays: numbers holds the elements (count small enough)
};

struct GgufHeader {
  std::uint32_t version = 0;
  std::uint64_t tensor_count = 0;
  std::uint64_t kv_count = 0;
  std::uint64_t alignment = 32;
  std::uint64_t data_offset = 0;                                   // start of the tensor data
  std::map<std::string, GgufValue, std::less<>> values;            // the kept keys
  std::map<std::string, std::vector<float>, std::less<>> tensors;  // the kept tensors
};

struct GgufKeep {
  std::function<bool(std::string_view key)> key;
  std::function<bool(std::string_view tensor)> tensor;
};

GgufHeader read_gguf_header(ByteSource& source, const GgufKeep& keep,
                            const GgufReadOptions& options);

}  // namespace ropekit::detail
