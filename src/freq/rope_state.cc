// transformers' `dynamic_rope_update` as a small state machine, one per layer module.
#include <variant>

#include "ropekit/error.h"
#include "ropekit/frequencies.h"

namespace ropekit {

RopeState::RopeState(RopeConfig config, SeqLenPolicy policy, FrequencyArithmetic arithmetic)
    : config_(std::move(config)), policy_(policy), arithmetic_(arithmetic) {
  original_ = build_frequency_plan(config_, std::nullopt, policy_, arithmetic_);
  plan_ = original_;
  cached_len_ = config_.max_position_embeddings;
}

const FrequencyPlan& RopeState::plan_for(std::int64_t seq_len) {
  if (seq_len <= 0) throw ArgumentError("seq_len: expected > 0, got " + std::to_string(seq_len));
  if (std::holds_alternative<DynamicNtkScaling>(config_.scaling)) {
    if (policy_ == SeqLenPolicy::kMlxLm) {  // stateless: every call from its own length
      plan_ = build_frequency_plan(config_, seq_len, policy_, arithmetic_);
      return plan_;
    }
    const std::int64_t original = config_.max_position_embeddings;
    if (seq_len > cached_len_) {  // grow
      plan_ = build_frequency_plan(config_, seq_len, policy_, arithmetic_);
      cached_len_ = seq_len;
    }
    if (seq_len < original && cached_len_ > original) {  // reset
      plan_ = original_;
      cached_len_ = original;
    }
    return plan_;
  }
  if (const auto* l = std::get_if<LongRopeScaling>(&config_.scaling)) {
    const bool want_long =
        policy_ == SeqLenPolicy::kMlxLm || seq_len > l->original_max_position_embeddings;
    if (want_long != plan_.info.uses_long_factor)
      plan_ = build_frequency_plan(config_, seq_len, policy_, arithmetic_);
    return plan_;
  }
  return plan_;
}

}  // namespace ropekit
