// Internal: the per-type frequency builders. Each scaling type lives in its own file with the
// paper it follows and the meaning of every formula and constant. All exact math is double
// (the plan rounds each inverse frequency to float32 once); under
// FrequencyArithmetic::kTransformers a builder also replays transformers' float32 sequence.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ropekit/config.h"
#include "ropekit/frequencies.h"

namespace ropekit::detail {

// What build_frequency_plan was asked for, passed to every builder.
struct PlanRequest {
  std::optional<std::int64_t> seq_len;  // nullopt: the plan at initialisation
  SeqLenPolicy policy = SeqLenPolicy::kTransformers;
  FrequencyArithmetic arithmetic = FrequencyArithmetic::kExact;
};

// What a builder returns (before rounding to float32).
struct PairFrequencies {
  std::vector<double> inv_freq;
  // FrequencyArithmetic::kTransformers: transformers' float32 values (then used instead of
  // inv_freq); empty otherwise.
  std::vector<float> transformers_inv_freq;
  double attention_factor = 1.0;
  double softmax_scale_multiplier = 1.0;
  double effective_theta = 0.0;
  bool uses_long_factor = false;
};

// One builder per alternative of ropekit::Scaling, each defined in freq/<type>.cc.
// build_frequency_plan calls them through std::visit: a type without one does not compile.
PairFrequencies frequencies(const RopeConfig& c, const DefaultScaling& s, const PlanRequest& r);
PairFrequencies frequencies(const RopeConfig& c, const LinearScaling& s, const PlanRequest& r);
PairFrequencies frequencies(const RopeConfig& c, const DynamicNtkScaling& s, const PlanRequest& r);
PairFrequencies frequencies(const RopeConfig& c, const YarnScaling& s, const PlanRequest& r);
PairFrequencies frequencies(const RopeConfig& c, const LongRopeScaling& s, const PlanRequest& r);
PairFrequencies frequencies(const RopeConfig& c, const Llama3Scaling& s, const PlanRequest& r);
PairFrequencies frequencies(const RopeConfig& c, const ProportionalScaling& s,
                            const PlanRequest& r);
PairFrequencies frequencies(const RopeConfig& c, const GgmlScaling& s, const PlanRequest& r);

// ggml's YaRN correction range (ggml_rope_yarn_corr_dims): the floored correction dimension
// of beta_fast and the ceiled one of beta_slow, clamped to [0, n_dims − 1].
struct GgmlCorrDims {
  double low = 0, high = 0;
};
GgmlCorrDims ggml_corr_dims(int n_dims, std::int64_t n_ctx_orig, double freq_base, double beta_fast,
                            double beta_slow);

// theta^(-2i/d) for i < d/2 (RoFormer), in double. `d` is the rotary width.
std::vector<double> base_inv_freq(double theta, int d);

// transformers' float32 building blocks (freq/transformers_float32.cc): torch evaluates each
// step on float32 tensors, so every intermediate is rounded to float32.
//   theta ** (arange(0, 2n, 2).float() / denom)   and   1 / p   elementwise
std::vector<float> transformers_pos_freqs(double theta, int n, int denom);
std::vector<float> transformers_reciprocal(const std::vector<float>& p);
inline float f32(double v) { return static_cast<float>(v); }

// M-RoPE: the position row (0 = T, 1 = H, 2 = W) of each of `pairs` pairs.
std::vector<std::uint8_t> mrope_pair_axes(const MRopeSpec& spec, int pairs);
// 2-D vision RoPE (freq/vision_2d.cc): the per-pair frequencies (f(i) resolved) and, in
// `pair_axis`, the position row of each pair (0: patch row, 1: patch column).
PairFrequencies vision_2d_frequencies(const RopeConfig& c, const Vision2dSpec& v,
                                      const PlanRequest& r, std::vector<std::uint8_t>& pair_axis);

// XD-RoPE: run j of the sections takes row j. Throws ConfigError unless 1 to 4 sections >= 0
// sum to `pairs`.
std::vector<std::uint8_t> xdrope_pair_axes(const XdRopeSpec& spec, int pairs);

}  // namespace ropekit::detail
