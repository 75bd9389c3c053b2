// Internal to the ropekit command: what `show`, `compare` and `plot` say about one layer's
// frequencies, derived from the library's plan (never recomputed here, so the command shows
// exactly what apply_rope uses).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ropekit/config.h"
#include "ropekit/frequencies.h"

namespace ropekit::cli {

// Which YaRN / Llama 3 band a frequency pair falls in:
//   kept          its inverse frequency is unchanged (high frequency: many turns in the
//                 original context, so the model has seen every angle; extrapolated as is);
//   interpolated  divided by the factor (low frequency: positions are squeezed, as in linear
//                 position interpolation, so long contexts stay within the angles trained on);
//   blended       in between (a ramp from one to the other).
// kNone for scaling types without bands.
enum class Band { kNone, kKept, kInterpolated, kBlended };
std::string_view band_name(Band band);  // "kept", "interpolated", "blended", "" for kNone

struct FrequencyRow {
  int index = 0;                 // pair index i
  double inv_freq = 0;           // the plan's value (a float32, exactly)
  double unscaled_inv_freq = 0;  // theta^(-2i/rotary_dim); NaN when the plan is wider
  double wavelength = 0;         // tokens per full turn, 2π / inv_freq (inf for inv_freq 0)
  double ratio = 0;              // inv_freq / unscaled_inv_freq
  Band band = Band::kNone;
  double turns = 0;  // full turns of the unscaled frequency within the original context
};

struct LayerReport {
  const RopeConfig* config = nullptr;
  FrequencyPlan plan;
  std::int64_t original_context = 0;  // the pre-training context the scaling starts from
  std::int64_t extended_context = 0;  // the context the scaling targets (= original if none)
  std::optional<double> factor;       // the scaling factor, for types that have one
  std::vector<FrequencyRow> rows;
};

// Builds the plan (throws what build_frequency_plan throws) and the per-pair rows.
// build_frequency_plan for the command. A config the parser accepted whose frequencies still
// cannot be computed (a factor so small a frequency overflows) is a ConfigError naming the layer
// and its rope type, not a RopeConfig field the config.json may not have ("rope_parameters" for
// a config with "rope_scaling").
FrequencyPlan plan_of(const RopeConfig& config, std::optional<std::int64_t> seq_len,
                      SeqLenPolicy policy,
                      FrequencyArithmetic arithmetic = FrequencyArithmetic::kExact);

LayerReport build_layer_report(const RopeConfig& config, std::optional<std::int64_t> seq_len,
                               SeqLenPolicy policy);

// True for the scaling types whose pairs fall in bands (YaRN, Llama 3).
bool has_bands(const RopeConfig& config);

}  // namespace ropekit::cli
