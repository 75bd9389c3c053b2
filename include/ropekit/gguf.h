// ropekit/gguf.h — read a model's RoPE from a GGUF file (llama.cpp, ggml).
//
// A GGUF file is the other front-end beside config.json (ropekit/hf_config.h): its header
// carries the RoPE settings as `{arch}.rope.*` metadata, written by a converter, plus up to
// three small f32 tensors that scale the frequencies. load_gguf_rope reads them into the same
// ModelRope (one RopeConfig per layer type) and resolves them as llama.cpp does, so the plan
// built from it is the rotation llama.cpp computes for the file.
//
// Format (little-endian; versions 2 and 3):
//
//   "GGUF" | u32 version | u64 n_tensors | u64 n_kv | n_kv × key/value | n_tensors × tensor info
//   | padding to general.alignment (default 32) | tensor data
//   key/value:   u64 len, key bytes | u32 type | value
//   value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool, 8 string (u64 len + bytes),
//                9 array (u32 element type, u64 count, elements), 10 u64, 11 i64, 12 f64
//   tensor info: u64 len, name | u32 n_dims | n_dims × u64 | u32 ggml type | u64 offset
//
// Only the keys below are kept; every other value (tokenizer arrays of 10^5 strings included)
// is skipped without being held in memory, and only the RoPE tensors are read, by seeking to
// them: never the weights. Every count and length is checked against the file size before
// anything is allocated. Anything wrong throws ConfigError whose path is the GGUF key
// ("llama.rope.freq_base"), the tensor name ("rope_freqs.weight") or "byte offset N".
//
// Keys read ({arch} = general.architecture): general.architecture, general.name,
// general.alignment, split.count / split.no, {arch}.context_length, {arch}.block_count,
// {arch}.embedding_length, {arch}.attention.head_count, {arch}.attention.key_length(_mla),
// {arch}.attention.sliding_window(_pattern), {arch}.rope.dimension_count(_swa),
// {arch}.rope.dimension_sections, {arch}.rope.freq_base(_swa), {arch}.rope.scale_linear and
// {arch}.rope.scaling.{type, factor, alpha, attn_factor, original_context_length, finetuned,
// yarn_log_multiplier, yarn_ext_factor, yarn_attn_factor, yarn_beta_fast, yarn_beta_slow}.
// Tensors read: rope_freqs.weight, rope_factors_long.weight, rope_factors_short.weight (f32).
// docs/gguf.md describes how each becomes part of the RopeConfig.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ropekit/hf_config.h"

namespace ropekit {

// The RoPE metadata of a GGUF file, as written (no defaults applied).
struct GgufRopeMetadata {
  std::uint32_t version = 0;
  std::string architecture;  // general.architecture
  std::string name;          // general.name (may be empty)
  std::uint64_t tensor_count = 0;
  std::uint64_t alignment = 32;
  std::int64_t split_count = 1;  // split.count: shards of a split file (this is the first)

  std::optional<std::int64_t> context_length, block_count, embedding_length, head_count;
  std::optional<std::int64_t> key_length, key_length_mla, sliding_window;
  // attention.sliding_window_pattern: a period (every period-th layer is full attention) or
  // one flag per layer (true = sliding window).
  std::optional<std::int64_t> sliding_window_period;
  std::vector<bool> sliding_window_layers;

  std::optional<std::int64_t> dimension_count, dimension_count_swa;
  std::vector<std::int64_t> dimension_sections;  // M-RoPE: up to 4 sections (t, h, w, e)
  std::optional<double> freq_base, freq_base_swa, scale_linear;
  std::optional<std::string> scaling_type;  // "none", "linear", "yarn", "longrope"
  std::optional<double> factor, alpha, attn_factor;
  std::optional<std::int64_t> original_context_length;
  std::optional<bool> finetuned;
  std::optional<double> yarn_log_multiplier, yarn_ext_factor, yarn_attn_factor;
  std::optional<double> yarn_beta_fast, yarn_beta_slow;

  // The RoPE tensors (f32 values), when the file has them.
  std::optional<std::vector<float>> rope_freqs, rope_factors_long, rope_factors_short;

  // "{arch}." + suffix: the full key name, for messages.
  std::string key(std::string_view suffix) const {
    return architecture + "." + std::string(suffix);
  }
};

struct GgufReadOptions {
  // The longest key or string value kept, and the most elements of a kept array or RoPE tensor.
  std::uint64_t max_string_bytes = 1u << 16;
  std::uint64_t max_rope_tensor_elements = 1u << 16;
};

// Reads the header of a GGUF file (seeking past everything else). Throws IoError (unreadable)
// or ConfigError (not a GGUF file, truncated, malformed, a big-endian or version-1 file, a
// split shard without metadata, a key of the wrong type).
GgufRopeMetadata read_gguf_rope_metadata(const std::filesystem::path& path,
                                         const GgufReadOptions& options = {});
// The same from bytes in memory (a whole file).
GgufRopeMetadata parse_gguf_rope_metadata(std::string_view bytes,
                                          const GgufReadOptions& options = {});

// Resolves the metadata as llama.cpp's loader does (defaults, the architecture's conventions:
// pair layout, sliding-window layers, alpha, M-RoPE mode; see docs/gguf.md) into a ModelRope.
// Throws ConfigError naming the key.
ModelRope gguf_model_rope(const GgufRopeMetadata& metadata);

// read_gguf_rope_metadata + gguf_model_rope.
ModelRope load_gguf_rope(const std::filesystem::path& path, const GgufReadOptions& options = {});

// True if the file starts with the GGUF magic. Never throws.
bool is_gguf_file(const std::filesystem::path& path) noexcept;

// What llama.cpp's architecture table says about an architecture (docs/gguf.md).
struct GgufArchitecture {
  std::string name;        // general.architecture
  std::string model_type;  // the Hugging Face model_type it is converted from
  // llama.cpp's rope type: NORMAL (kInterleaved), NEOX (kHalf), MROPE/IMROPE (kHalf + mrope).
  PairLayout layout = PairLayout::kHalf;
  // The converter permutes the q/k weights from Hugging Face's half-split order, so llama.cpp's
  // interleaved rotation of the file equals the config's half-split rotation.
  bool permuted_from_half = false;
  // Sliding-window layers: 0 none, 1 same RoPE as full layers, 2 plain RoPE (no scaling) with
  // rope.freq_base_swa (default swa_default_base).
  int swa_rope = 0;
  double swa_default_base = 10000.0;
  std::int64_t swa_default_period = 0;  // when the file has no sliding_window_pattern
  bool alpha = false;                   // theta = freq_base · alpha^(d/(d−2)) (HunYuan)
  std::optional<MRopeAssignment> mrope;
  bool deepseek_yarn = false;  // yarn_log_multiplier = 0.1·mscale_all_dim, mscale = mscale_all_dim
  bool head_is_rotary = false;  // the RoPE head is the rotated part (DeepSeek MLA's q_pe/k_pe)
  // llama.cpp reads rope.scaling.yarn_log_multiplier only in some architectures' loaders
  // (DeepSeek-2 and its MLA relatives, dividing by 0.1; Mistral 3 as it is); elsewhere the key
  // is ignored. deepseek_yarn implies it.
  bool reads_yarn_log_multiplier = false;
  // llama.cpp reads rope.scaling.yarn_attn_factor only in some architectures' loaders (Grok,
  // Laguna); it is then the magnitude without YaRN, and replaced by the automatic one with it.
  bool reads_yarn_attn_factor = false;
};

// The architectures ropekit knows; nullptr for another name (read as NEOX, a warning says so).
const GgufArchitecture* find_gguf_architecture(std::string_view name);
const std::vector<GgufArchitecture>& gguf_architectures();

}  // namespace ropekit
