// Internal: the llama.cpp numerics at the apply boundary (AngleMode::kGgml). ggml's angles are
// not p · inv_freq, so the kernels cannot compute them; instead, once the call is validated,
// a per-call cos/sin table is built here from the plan's ggml arguments (magnitude folded in)
// for the positions the call uses, and the job is pointed at it: the kernels then run their
// existing table path and know nothing of ggml.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernel/job.h"
#include "ropekit/apply.h"
#include "ropekit/cos_sin_cache.h"

namespace ropekit::detail {

// Owns the table for the duration of one apply_rope call.
struct GgmlAngleTable {
  std::vector<float> rows;             // per table row: cos[pairs], then sin[pairs]
  std::vector<std::int64_t> row_of;    // per job token: its table row (the job's new positions)
  std::unique_ptr<CosSinCache> cache;  // wraps `rows`
  double unapplied_magnitude = 1.0;    // ggml's magnitude when not folded (else 1)
};

// Throws ArgumentError when the plan has no ggml arguments (or invalid ones) or the options
// cannot apply (a caller cache, a position scale, transformers' rounding). `job`: the validated
// job of the call, without positions.
void check_ggml_angles(const FrequencyPlan& plan, const ApplyOptions& options, const ApplyJob& job);

// Builds the table for `job` (checked by check_ggml_angles, positions validated by apply.cc) and
// rewrites the job to read it: 1-D per-token positions indexing the table, no pair axes,
// amplitude 1, exact angles (never computed: every position is in the table).
void bind_ggml_angles(const FrequencyPlan& plan, const ApplyOptions& options, ApplyJob& job,
                      GgmlAngleTable& table);

}  // namespace ropekit::detail
