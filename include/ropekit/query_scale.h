// ropekit/query_scale.h — multiply queries by a per-position scale (QueryPositionScale in
// ropekit/config.h): Llama 4's attention-temperature tuning on its NoPE layers.
//
// For each token t with position p(t) (the absolute token index, transformers'
// `cache_position`), every head h and every feature d of q:
//
//     s(p) = float32( 1 + attn_scale · ln(1 + floor((p + position_offset) / floor_scale)) )
//     q[t, h, d] ← round_to_dtype( float32(q[t, h, d]) · s(p) )      (one float32 product)
//
// This is transformers' arithmetic: the scale is a float32 tensor and `query · scale` promotes
// a bf16/f16 query to float32, then `.to(query.dtype)` rounds once. ropekit evaluates s(p) in
// double from the exact quotient and rounds it once to float32: within 1 float32 ulp of
// transformers' float32 chain for p < 2^24. Beyond, transformers' float32(p) + 1 is rounded,
// so its floor can reach the next multiple of floor_scale a few tokens early (at p = 2^31 − 2
// with floor_scale 8192); ropekit keeps the exact token index.
//
// With scale_in_query_dtype (Ministral 3) the scale is first rounded to q's dtype and the
// product of the two dtype values is rounded once to it:
//     q[t, h, d] ← round_to_dtype( q[t, h, d] · round_to_dtype(s(p)) )
//
// A NoPE layer applies only this scale (no rotation); a model that scales the queries of
// rotated layers (Ministral 3) calls apply_rope first and this after it, as the model does.
#pragma once

#include <cstdint>

#include "ropekit/apply.h"
#include "ropekit/config.h"

namespace ropekit {

// s(p) as above. Throws ArgumentError for a position < 0 or > 2^31 − 1 (the scale is defined
// for token indices) and for an invalid QueryPositionScale.
float query_position_scale(const QueryPositionScale& scale, std::int64_t position);

// Scales q in place: any strides, a batch axis, f32/f16/bf16 (see ropekit/apply.h). Positions:
// offset, per_sequence or per_token (one per token; position rows are refused). Throws
// ArgumentError naming the argument for bad views, positions or scales.
void scale_queries(const QueryPositionScale& scale, const TensorView& q,
                   const Positions& positions);

}  // namespace ropekit
