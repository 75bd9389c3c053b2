// Internal: ggml's RoPE angle arithmetic (src/reference/ggml_rope.cc), shared by the public
// scalar API (ropekit/ggml_rope.h) and the llama.cpp numerics preset at the apply boundary
// (src/apply/ggml_angles.cc), so that ggml's float32 sequence is written once.
#pragma once

#include <array>
#include <cstdint>

#include "ropekit/ggml_rope.h"

namespace ropekit::detail {

// Pairs rotated: n_dims/2, or n_dims for kVision.
int ggml_pair_count(const GgmlRopeParams& p);

// Throws ArgumentError for parameters ggml would reject (odd n_dims, short freq_factors, YaRN
// without n_ctx_orig).
void ggml_check_params(const GgmlRopeParams& p);

// ggml's cos/sin multiplier: attn_factor, times 1 + 0.1·logf(1/freq_scale) when ext_factor != 0
// (evaluated in float32, as rope_yarn does).
float ggml_magnitude(const GgmlRopeParams& p);

// The float32 angles at one position (streams t, h, w, e; 1-D modes read t), one per pair.
void ggml_angles_into(const GgmlRopeParams& p, const std::array<std::int64_t, 4>& position,
                      float* theta);

// cosf(θ_i)·magnitude and sinf(θ_i)·magnitude for every pair (params already checked).
void ggml_cos_sin_into(const GgmlRopeParams& p, const std::array<std::int64_t, 4>& position,
                       float magnitude, float* cos_out, float* sin_out);

}  // namespace ropekit::detail
