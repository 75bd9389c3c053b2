// GGUF header → GgufRopeMetadata: the keys ropekit reads, each checked for its type (as
// llama.cpp's loader requires: integers of any width where it reads an integer, f32 or f64
// where it reads a float, a string, a bool, an array of integers or bools).
#include <cmath>
#include <fstream>
#include <set>

#include "config/gguf_reader.h"
#include "ropekit/error.h"
#include "ropekit/gguf.h"

namespace ropekit {
namespace {

using detail::GgufHeader;
using detail::GgufValue;

// The {arch}.<suffix> keys kept.
const std::set<std::string, std::less<>>& arch_suffixes() {
  static const std::set<std::string, std::less<>> s = {
      "context_length",
      "block_count",
      "embedding_length",
      "attention.head_count",
      "attention.key_length",
      "attention.key_length_mla",
      "attention.sliding_window",
      "attention.sliding_window_pattern",
      "rope.dimension_count",
      "rope.dimension_count_swa",
      "rope.dimension_sections",
      "rope.freq_base",
      "rope.freq_base_swa",
      "rope.scale_linear",
      "rope.scaling.type",
      "rope.scaling.factor",
      "rope.scaling.alpha",
      "rope.scaling.attn_factor",
      "rope.scaling.original_context_length",
      "rope.scaling.finetuned",
      "rope.scaling.yarn_log_multiplier",
      "rope.scaling.yarn_ext_factor",
      "rope.scaling.yarn_attn_factor",
      "rope.scaling.yarn_beta_fast",
      "rope.scaling.yarn_beta_slow",
  };
  return s;
}

bool keep_key(std::string_view key) {
  if (key == "general.architecture" || key == "general.name" || key == "split.count" ||
      key == "split.no")
    return true;
  const auto dot = key.find('.');
  return dot != std::string_view::npos && arch_suffixes().count(key.substr(dot + 1)) > 0;
}

bool keep_tensor(std::string_view name) {
  return name == "rope_freqs.weight" || name == "rope_factors_long.weight" ||
         name == "rope_factors_short.weight";
}

bool is_integer_type(std::uint32_t t) {
  using namespace detail;
  return t == kGgufU8 || t == kGgufI8 || t == kGgufU16 || t == kGgufI16 || t == kGgufU32 ||
         t == kGgufI32 || t == kGgufU64 || t == kGgufI64;
}

[[noreturn]] void wrong_type(const std::string& key, const std::string& expected,
                             const GgufValue& v) {
  throw ConfigError(
      key, "expected " + expected + ", got " + detail::gguf_type_name(v.type, v.element_type));
}

class Fields {
 public:
  explicit Fields(const GgufHeader& h) : h_(h) {}

  const GgufValue* find(const std::string& key) const {
    const auto it = h_.values.find(key);
    return it == h_.values.end() ? nullptr : &it->second;
  }
  std::optional<std::int64_t> integer(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (!is_integer_type(v->type)) wrong_type(key, "an integer", *v);
    if (v->integer_negative || v->integer_magnitude > (std::uint64_t{1} << 40))
      throw ConfigError(key, "expected an integer in [0, 2^40], got " +
                                 std::string(v->integer_negative ? "-" : "") +
                                 std::to_string(v->integer_magnitude));
    return static_cast<std::int64_t>(v->integer_magnitude);
  }
  std::optional<double> number(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (v->type != detail::kGgufF32 && v->type != detail::kGgufF64) wrong_type(key, "an f32", *v);
    if (!std::isfinite(v->number))
      throw ConfigError(key, "expected a finite number, got " + std::to_string(v->number));
    return v->number;
  }
  std::optional<std::string> text(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (v->type != detail::kGgufString) wrong_type(key, "a string", *v);
    return v->text;
  }
  std::optional<bool> boolean(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (v->type != detail::kGgufBool) wrong_type(key, "a bool", *v);
    return v->number != 0;
  }

 private:
  const GgufHeader& h_;
};

GgufRopeMetadata to_metadata(const GgufHeader& h) {
  const Fields f(h);
  GgufRopeMetadata m;
  m.version = h.version;
  m.tensor_count = h.tensor_count;
  m.alignment = h.alignment;
  const auto split_count = f.integer("split.count");
  const auto split_no = f.integer("split.no");
  if (split_count && *split_count > 1 && split_no.value_or(0) != 0)
    throw ConfigError("split.no",
                      "expected the first shard of a split GGUF (split.no 0, which "
                      "holds the metadata), got shard " +
                          std::to_string(*split_no) + " of " + std::to_string(*split_count));
  m.split_count = split_count.value_or(1);
  const auto arch = f.text("general.architecture");
  if (!arch || arch->empty())
    throw ConfigError("general.architecture",
                      split_no.value_or(0) != 0
                          ? "missing: a split shard without metadata; expected the first shard"
                          : "missing; expected the model architecture (\"llama\", \"qwen2\", ...)");
  m.architecture = *arch;
  m.name = f.text("general.name").value_or("");
  auto k = [&](const char* s) { return m.key(s); };
  m.context_length = f.integer(k("context_length"));
  m.block_count = f.integer(k("block_count"));
  m.embedding_length = f.integer(k("embedding_length"));
  // head_count may be a per-layer array in some architectures; the first entry then stands.
  if (const GgufValue* v = f.find(k("attention.head_count")); v && v->type == detail::kGgufArray) {
    if (!is_integer_type(v->element_type) || !v->kept_elements || v->numbers.empty())
      wrong_type(k("attention.head_count"), "an integer or a short array of integers", *v);
    if (!(v->numbers.front() >= 0 && v->numbers.front() <= (1 << 20)))
      throw ConfigError(k("attention.head_count"),
                        "expected counts in [0, 2^20], got " + std::to_string(v->numbers.front()));
    m.head_count = static_cast<std::int64_t>(v->numbers.front());
  } else {
    m.head_count = f.integer(k("attention.head_count"));
  }
  m.key_length = f.integer(k("attention.key_length"));
  m.key_length_mla = f.integer(k("attention.key_length_mla"));
  m.sliding_window = f.integer(k("attention.sliding_window"));
  if (const GgufValue* v = f.find(k("attention.sliding_window_pattern"))) {
    if (v->type == detail::kGgufArray) {
      if (v->element_type != detail::kGgufBool || !v->kept_elements)
        wrong_type(k("attention.sliding_window_pattern"),
                   "an integer period or an array of bool (at most 65536 layers)", *v);
      for (double b : v->numbers) m.sliding_window_layers.push_back(b != 0);
    } else {
      m.sliding_window_period = f.integer(k("attention.sliding_window_pattern"));
    }
  }
  m.dimension_count = f.integer(k("rope.dimension_count"));
  m.dimension_count_swa = f.integer(k("rope.dimension_count_swa"));
  if (const GgufValue* v = f.find(k("rope.dimension_sections"))) {
    if (v->type != detail::kGgufArray || !is_integer_type(v->element_type) || !v->kept_elements ||
        v->count > 4)
      wrong_type(k("rope.dimension_sections"), "an array of at most 4 integers", *v);
    for (double x : v->numbers) {
      if (x < 0 || x > (1 << 20))
        throw ConfigError(k("rope.dimension_sections"),
                          "expected sections in [0, 2^20], got " + std::to_string(x));
      m.dimension_sections.push_back(static_cast<std::int64_t>(x));
    }
  }
  m.freq_base = f.number(k("rope.freq_base"));
  m.freq_base_swa = f.number(k("rope.freq_base_swa"));
  m.scale_linear = f.number(k("rope.scale_linear"));
  m.scaling_type = f.text(k("rope.scaling.type"));
  m.factor = f.number(k("rope.scaling.factor"));
  m.alpha = f.number(k("rope.scaling.alpha"));
  m.attn_factor = f.number(k("rope.scaling.attn_factor"));
  m.original_context_length = f.integer(k("rope.scaling.original_context_length"));
  m.finetuned = f.boolean(k("rope.scaling.finetuned"));
  m.yarn_log_multiplier = f.number(k("rope.scaling.yarn_log_multiplier"));
  m.yarn_ext_factor = f.number(k("rope.scaling.yarn_ext_factor"));
  m.yarn_attn_factor = f.number(k("rope.scaling.yarn_attn_factor"));
  m.yarn_beta_fast = f.number(k("rope.scaling.yarn_beta_fast"));
  m.yarn_beta_slow = f.number(k("rope.scaling.yarn_beta_slow"));
  auto tensor = [&](const char* name) -> std::optional<std::vector<float>> {
    const auto it = h.tensors.find(name);
    if (it == h.tensors.end()) return std::nullopt;
    for (std::size_t i = 0; i < it->second.size(); ++i)
      if (!(std::isfinite(it->second[i]) && it->second[i] > 0))
        throw ConfigError(std::string(name) + "[" + std::to_string(i) + "]",
                          "expected a finite factor > 0, got " + std::to_string(it->second[i]));
    return it->second;
  };
  m.rope_freqs = tensor("rope_freqs.weight");
  m.rope_factors_long = tensor("rope_factors_long.weight");
  m.rope_factors_short = tensor("rope_factors_short.weight");
  return m;
}

const detail::GgufKeep& keep() {
  static const detail::GgufKeep k{keep_key, keep_tensor};
  return k;
}

}  // namespace

GgufRopeMetadata read_gguf_rope_metadata(const std::filesystem::path& path,
                                         const GgufReadOptions& options) {
  const auto source = detail::open_file_source(path);
  return to_metadata(detail::read_gguf_header(*source, keep(), options));
}

GgufRopeMetadata parse_gguf_rope_metadata(std::string_view bytes, const GgufReadOptions& options) {
  const auto source = detail::memory_source(bytes);
  return to_metadata(detail::read_gguf_header(*source, keep(), options));
}

bool is_gguf_file(const std::filesystem::path& path) noexcept {
  try {
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    return in.read(magic, 4) && std::string_view(magic, 4) == "GGUF";
  } catch (...) {
    return false;
  }
}

}  // namespace ropekit
