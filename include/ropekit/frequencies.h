// ropekit/frequencies.h — from a RopeConfig to the numbers a kernel needs.
//
//   RopeConfig ──build_frequency_plan(seq_len, policy)──▶ FrequencyPlan
//                                                          ├ inv_freq[n_pairs]   (float32)
//                                                          ├ attention_factor    (cos/sin
//                                                          magnitude) ├ layout, head_dim,
//                                                          rotary_dim ├ pair_axis[n_pairs]  (row
//                                                          a(i)) ├ position_rows       (0 or 1-4)
//                                                          └ info (PlanInfo: what it was built
//                                                            from; for reports, not kernels)
//
// Kernels see only a plan; they know nothing of scaling types. Each inverse frequency is
// computed in double and rounded once to float32 (relative error <= 2^-24 of the true value
// of the formula; transformers computes some steps in float32 and agrees to ~1e-7).
//
// Sequence-length dependence (the only two scaling types with it):
//   dynamic NTK  theta' = theta · (factor·L/max_pos − (factor − 1))^(d/(d−2)),
//                L = max(seq_len, max_position_embeddings)  — identical to plain RoPE until the
//                sequence exceeds max_position_embeddings.
//   longrope     short_factor while seq_len <= original_max_position_embeddings, else long_factor.
// The policy says whose rule applies:
//   kTransformers  as above (transformers' `dynamic_rope_update`); for longrope the factor set
//                  flips when the sequence crosses the original context, so keys already in a KV
//                  cache were rotated with the other set — transformers' Phi-3 drops the cache
//                  at that point and re-encodes the prefix. Dynamic NTK changes theta for every
//                  position of a long call while cached keys keep the old one.
//   kMlxLm         mlx-lm: longrope always uses long_factor (no switch, the KV cache stays
//                  consistent; short prompts get the long factors); dynamic NTK uses
//                  L = max(seq_len, max_pos) on every call (stateless).
// Without a seq_len the plan is the one at initialisation (transformers' init with seq_len None:
// short factors, unscaled dynamic theta).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ropekit/config.h"
#include "ropekit/ggml_rope.h"
#include "ropekit/numerics.h"

namespace ropekit {

// What the plan was built from and for: reported by tools, never read by the kernels.
struct PlanInfo {
  std::string rope_type;  // canonical scaling name
  // Multiplier of the softmax scale 1/sqrt(d) that the model applies (DeepSeek YaRN:
  // yarn_get_mscale(factor, mscale_all_dim)^2); 1 when none. Returned, never applied here.
  double softmax_scale_multiplier = 1.0;
  std::optional<MRopeSpec> mrope;        // the config's M-RoPE spec (pair_axis is its kernel form)
  std::optional<XdRopeSpec> xdrope;      // the config's XD-RoPE spec (likewise)
  std::optional<Vision2dSpec> vision2d;  // the vision encoder's 2-D RoPE (likewise)
  std::int64_t seq_len_used = 0;         // the sequence length the plan was built for (0 = init)
  double effective_theta = 0;            // theta after dynamic NTK (else rope_theta)
  bool uses_long_factor = false;         // longrope: which set was chosen
};

// The kernel inputs: everything apply_rope and CosSinCache read.
struct FrequencyPlan {
  int head_dim = 0;
  int rotary_dim = 0;  // features rotated: 2 * inv_freq.size()
  PairLayout layout = PairLayout::kHalf;
  std::vector<float> inv_freq;    // radians per position, one per rotated pair
  double attention_factor = 1.0;  // multiplies cos and sin (transformers' attention_scaling)
  // N-axis positions: pair i takes its position from row pair_axis[i] (< position_rows) and
  // its frequency from inv_freq[i] (the builder has already placed frequency f(i) there).
  // M-RoPE: rows 0 T, 1 H, 2 W; XD-RoPE: 4 rows; 2-D vision RoPE: rows (h, w). Empty (and
  // position_rows 0) for 1-D positions; an empty pair_axis means 1-D positions whatever
  // position_rows says. A plan with pair_axis and position_rows 0 takes 3 rows
  // (M-RoPE plans built by hand before position_rows existed).
  std::vector<std::uint8_t> pair_axis;
  int position_rows = 0;
  bool hf_rounds_once = false;  // see RopeConfig
  // FrequencyArithmetic::kGgml only: the ggml_rope_ext arguments llama.cpp passes for this
  // config (ggml_rope_params at the plan's sequence length, else max_position_embeddings as
  // llama.cpp's default context). AngleMode::kGgml computes the angles from these.
  std::optional<GgmlRopeParams> ggml;
  PlanInfo info;
};

// Builds the plan. seq_len (if given) must be > 0. Throws ConfigError for invalid configs
// (configs from parse_hf_config are already valid) and ArgumentError for a bad seq_len.
// SeqLenPolicy and FrequencyArithmetic: ropekit/numerics.h.

FrequencyPlan build_frequency_plan(const RopeConfig& config,
                                   std::optional<std::int64_t> seq_len = std::nullopt,
                                   SeqLenPolicy policy = SeqLenPolicy::kTransformers,
                                   FrequencyArithmetic arithmetic = FrequencyArithmetic::kExact);
// The same with a preset's policy and arithmetic (ropekit/numerics.h).
inline FrequencyPlan build_frequency_plan(const RopeConfig& config,
                                          std::optional<std::int64_t> seq_len,
                                          const Numerics& numerics) {
  return build_frequency_plan(config, seq_len, numerics.policy, numerics.arithmetic);
}

// The unscaled inverse frequencies theta^(-2i/rotary_dim) (for comparisons and plots).
std::vector<double> unscaled_inv_freq(const RopeConfig& config);

// transformers' stateful module semantics (`dynamic_rope_update`) for one layer:
//   dynamic:  seq_len > cached length → recompute and remember (grow only); seq_len below the
//             original max while grown → back to the original plan.
//   longrope: long factors iff seq_len > original_max_position_embeddings.
// Other types: the static plan. Not thread-safe (one per module, as in transformers).
class RopeState {
 public:
  explicit RopeState(RopeConfig config, SeqLenPolicy policy = SeqLenPolicy::kTransformers,
                     FrequencyArithmetic arithmetic = FrequencyArithmetic::kExact);
  // Returns the plan for a forward call whose largest position + 1 is seq_len.
  const FrequencyPlan& plan_for(std::int64_t seq_len);
  const FrequencyPlan& current() const noexcept { return plan_; }

 private:
  RopeConfig config_;
  SeqLenPolicy policy_;
  FrequencyArithmetic arithmetic_;
  FrequencyPlan original_;
  FrequencyPlan plan_;
  std::int64_t cached_len_ = 0;
};

// yarn_get_mscale: 1 for s <= 1, else 0.1·m·ln(s) + 1 (YaRN's magnitude; see src/freq/yarn.cc).
double yarn_mscale(double scale, double m = 1.0);

}  // namespace ropekit
