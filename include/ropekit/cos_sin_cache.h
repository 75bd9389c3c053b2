// ropekit/cos_sin_cache.h — a table of cos/sin for positions 0..N-1 of one plan.
//
// Row p holds, for the plan's n = rotary_dim/2 pairs, float32 values
//
//     cos_row(p) = [ A·cos θ_0(p) … A·cos θ_(n−1)(p) ]     sin_row(p) = [ A·sin θ_0(p) … ]
//
// with θ_i(p) = p · inv_freq[i] computed in the cache's AngleMode and A the attention factor
// when `fold_attention_factor` (else 1). Each value is the correctly rounded float of the
// double-precision result. The table grows on demand (`reserve`) in blocks that never move,
// so row pointers stay valid for the cache's lifetime; reads are safe from many threads,
// concurrently with growth. Positions outside [0, size()) are computed on the fly by the
// kernels (negative positions, or a cache that was not reserved far enough).
//
// For M-RoPE plans the table is indexed by each pair's own position row: pair i of a token
// reads cos_row(p_axis(i))[i], which equals cos(p_axis(i) · inv_freq[i]).
#pragma once

#include <cstdint>
#include <memory>

#include "ropekit/apply.h"
#include "ropekit/frequencies.h"

namespace ropekit {

class CosSinCache {
 public:
  CosSinCache(const FrequencyPlan& plan, AngleMode angles, bool fold_attention_factor = true,
              std::int64_t initial_positions = 0);
  ~CosSinCache();
  // A cache over a caller's float32 tables (not copied; they must outlive the cache): row p
  // of `rows` is cos[p·row_stride + i] and sin[p·row_stride + i] for pairs i < `pairs`.
  // vLLM / FlashInfer's [max_pos, rotary_dim] cos|sin cache C is
  // wrap(C, C + rotary_dim / 2, max_pos, rotary_dim / 2, rotary_dim). The values are used as
  // they are (attention factor included or not, as the caller computed them): it matches any
  // plan with `pairs` frequencies, with fold_attention_factor, and every position must be in
  // [0, rows). Throws ArgumentError for bad sizes or pointers.
  static std::unique_ptr<CosSinCache> wrap(const float* cos, const float* sin, std::int64_t rows,
                                           int pairs, std::int64_t row_stride);
  bool is_external() const noexcept;  // made by wrap()
  // A number that no other CosSinCache of this process has had or will have (an address may be
  // reused once a cache is destroyed): what was checked against this cache can be remembered
  // under it. apply_rope's per-thread memo of validated calls does (ropekit/apply.h).
  std::uint64_t serial() const noexcept;

  CosSinCache(const CosSinCache&) = delete;
  CosSinCache& operator=(const CosSinCache&) = delete;

  // Makes positions [0, n) available. Thread-safe. n <= kMaxAbsPosition + 1.
  void reserve(std::int64_t n);
  std::int64_t size() const noexcept;  // positions available now
  int pairs() const noexcept;
  AngleMode angles() const noexcept;
  bool folds_attention_factor() const noexcept;
  const std::vector<float>& inv_freq() const noexcept;
  // max |inv_freq[i]| over the frequencies the table was built from (validated finite by the
  // constructor); 0 for a wrapped table, which has none.
  double max_abs_inv_freq() const noexcept;
  double attention_factor() const noexcept;

  // Rows of `pairs()` floats; p must be in [0, size()). The address of sin_row(p) minus that of
  // cos_row(p) is the same for every p (a built table holds rows [cos | sin], so it is pairs()
  // floats; a wrapped one, the distance between the caller's two tables): the kernels look up
  // one of the two per token.
  const float* cos_row(std::int64_t p) const noexcept;
  const float* sin_row(std::int64_t p) const noexcept;

  // True when this cache was built for the same frequencies, angle mode and folding.
  bool matches(const FrequencyPlan& plan, AngleMode angles, bool fold) const noexcept;

 private:
  CosSinCache();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ropekit
