// Fuzz target: GGUF bytes → parse_gguf_rope_metadata → gguf_model_rope → build_frequency_plan
// for every layer → ggml_rope_params / ggml_rope_cache at a few positions.
//
// Property: for any input, reading either throws ConfigError (never another exception, a crash,
// an allocation beyond the input's size or a sanitizer report), or gives layers whose plans are
// valid (rotary_dim == 2·inv_freq.size() in (0, head_dim], inv_freq finite and >= 0, attention
// factor finite and > 0) or throw ConfigError / ArgumentError. Anything else is a finding.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.h"
#include "ropekit/error.h"
#include "ropekit/frequencies.h"
#include "ropekit/ggml_rope.h"
#include "ropekit/gguf.h"

namespace ropekit::fuzz {
namespace {

void check_layer(const RopeConfig& c) {
  FrequencyPlan p;
  try {
    p = build_frequency_plan(c, c.max_position_embeddings);
  } catch (const ConfigError&) {
    return;
  } catch (const ArgumentError&) {
    return;
  }
  if (p.rotary_dim <= 0 || p.rotary_dim > p.head_dim ||
      static_cast<std::size_t>(p.rotary_dim) != 2 * p.inv_freq.size())
    finding("plan rotary_dim " + std::to_string(p.rotary_dim) + " for a GGUF layer");
  for (float v : p.inv_freq)
    if (!std::isfinite(v) || v < 0) finding("inv_freq " + std::to_string(v) + " for a GGUF layer");
  if (!(std::isfinite(p.attention_factor) && p.attention_factor > 0))
    finding("attention factor " + std::to_string(p.attention_factor));
  try {
    const GgmlRopeParams g = ggml_rope_params(c);
    for (std::int64_t pos : {0, 1, 4095}) (void)ggml_rope_cache(g, {pos, pos, pos, pos});
  } catch (const ConfigError&) {
  } catch (const ArgumentError&) {
  }
}

}  // namespace
}  // namespace ropekit::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ropekit;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  ModelRope m;
  try {
    m = gguf_model_rope(parse_gguf_rope_metadata(bytes));
  } catch (const ConfigError&) {
    return 0;
  }
  for (const RopeConfig& c : m.layers) fuzz::check_layer(c);
  return 0;
}
