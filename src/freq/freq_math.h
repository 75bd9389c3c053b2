// Internal: the per-type frequency builders. Each lives in its own file with the paper it
// follows and the meaning of every formula and constant. All math is double; the plan
// rounds each inverse frequency to float32 once.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ropekit/config.h"
#include "ropekit/frequencies.h"

namespace ropekit::detail {

// What a builder returns (before rounding to float32).
struct PairFrequencies {
  std::vector<double> inv_freq;
  double attention_factor = 1.0;
  double softmax_scale_multiplier = 1.0;
  double effective_theta = 0.0;
  bool uses_long_factor = false;
};

// theta^(-2i/d) for i < d/2 (RoFormer). `d` is the rotary width.
std::vector<double> base_inv_freq(double theta, int d);

PairFrequencies default_frequencies(const RopeConfig& c);
PairFrequencies linear_frequencies(const RopeConfig& c, const LinearScaling& s);
PairFrequencies dynamic_ntk_frequencies(const RopeConfig& c, const DynamicNtkScaling& s,
                                        std::optional<std::int64_t> seq_len);
PairFrequencies yarn_frequencies(const RopeConfig& c, const YarnScaling& s);
PairFrequencies longrope_frequencies(const RopeConfig& c, const LongRopeScaling& s,
                                     bool use_long);
PairFrequencies llama3_frequencies(const RopeConfig& c, const Llama3Scaling& s);
PairFrequencies proportional_frequencies(const RopeConfig& c, const ProportionalScaling& s);

// transformers' float32 operation sequence (FrequencyArithmetic::kTransformers).
std::vector<float> transformers_float32_inv_freq(const RopeConfig& c, double effective_theta, bool use_long);

// M-RoPE: the position row (0 = T, 1 = H, 2 = W) of each of `pairs` pairs.
std::vector<std::uint8_t> mrope_pair_axes(const MRopeSpec& spec, int pairs);

}  // namespace ropekit::detail
