// scale_queries: the per-position query scale of ropekit/query_scale.h (Llama 4's
// attention-temperature tuning on NoPE layers). A scalar pass: one float32 multiply per
// element, memory-bound like a copy; it validates its own arguments (the apply_rope boundary
// in apply.cc is not involved: no rotation happens here).
#include <cmath>
#include <cstdlib>
#include <string>

#include "ropekit/dtype.h"
#include "ropekit/error.h"
#include "ropekit/query_scale.h"

namespace ropekit {
namespace {

[[noreturn]] void bad(const std::string& what, const std::string& expected,
                      const std::string& got) {
  throw ArgumentError("[ropekit.scale_queries] " + what + ": expected " + expected + ", got " +
                      got);
}

std::string str(std::int64_t v) { return std::to_string(v); }
std::string str(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void check_scale(const QueryPositionScale& s) {
  if (!(std::isfinite(s.floor_scale) && s.floor_scale > 0.0))
    bad("floor_scale", "a finite number > 0", str(s.floor_scale));
  if (!std::isfinite(s.attn_scale)) bad("attn_scale", "a finite number", str(s.attn_scale));
  if (s.position_offset < 0 || s.position_offset > 1)
    bad("position_offset", "0 or 1", str(static_cast<std::int64_t>(s.position_offset)));
}

// Without the checks: the caller validated both.
float scale_at(const QueryPositionScale& s, std::int64_t p) {
  // p + offset <= 2^31 and floor_scale > 0: the quotient and its floor are exact enough in
  // double (an integer over a double, floored; exact for the power-of-two floor_scale models
  // ship), and log1p of that integer is then rounded once to float32.
  const double k = std::floor(static_cast<double>(p + s.position_offset) / s.floor_scale);
  return static_cast<float>(1.0 + s.attn_scale * std::log1p(k));
}

void check_position(std::int64_t p, const std::string& where) {
  if (p < 0 || p > kMaxAbsPosition)
    bad(where, "a token index in [0, 2^31 − 1] (the scale is defined from cache_position)", str(p));
}

}  // namespace

float query_position_scale(const QueryPositionScale& scale, std::int64_t position) {
  check_scale(scale);
  check_position(position, "position");
  return scale_at(scale, position);
}

void scale_queries(const QueryPositionScale& scale, const TensorView& q,
                   const Positions& positions) {
  check_scale(scale);
  if (q.batch < 1) bad("q.batch", "a count >= 1", str(q.batch));
  if (q.tokens < 0 || q.heads < 0 || q.head_dim < 0)
    bad("q shape", "non-negative sizes",
        "[" + str(q.tokens) + ", " + str(q.heads) + ", " + str(q.head_dim) + "]");
  if (q.dtype != DType::kF32 && q.dtype != DType::kF16 && q.dtype != DType::kBF16)
    bad("q.dtype", "f32, f16 or bf16", "the value " + str(static_cast<std::int64_t>(q.dtype)));
  const std::int64_t tokens = q.batch * q.tokens;  // sequence-major, as apply_rope counts them
  if (positions.kind() == Positions::Kind::kMRope)
    bad("positions", "one position per token (offset, per_sequence or per_token)",
        str(static_cast<std::int64_t>(positions.n_rows())) + " position rows");
  // Every token's position, checked before anything is written.
  std::int64_t seq_hint = 0;
  auto position_of = [&](std::int64_t t) -> std::int64_t {
    switch (positions.kind()) {
      case Positions::Kind::kOffset:
        return positions.start() + t % q.tokens;
      case Positions::Kind::kPerSequence: {
        const auto indptr = positions.indptr();
        while (indptr[static_cast<std::size_t>(seq_hint) + 1] <= t) ++seq_hint;
        return positions.offsets()[static_cast<std::size_t>(seq_hint)] +
               (t - indptr[static_cast<std::size_t>(seq_hint)]);
      }
      case Positions::Kind::kPerToken:
        return positions.ids64().empty() ? positions.ids32()[static_cast<std::size_t>(t)]
                                         : positions.ids64()[static_cast<std::size_t>(t)];
      case Positions::Kind::kMRope:
        break;
    }
    return 0;
  };
  switch (positions.kind()) {
    case Positions::Kind::kOffset:
      if (tokens > 0) {
        check_position(positions.start(), "positions (offset)");
        if (positions.start() > kMaxAbsPosition - (q.tokens - 1))
          bad("positions (offset)", "positions within [0, 2^31 − 1]",
              "offset " + str(positions.start()) + " with " + str(q.tokens) + " tokens");
      }
      break;
    case Positions::Kind::kPerSequence: {
      const auto indptr = positions.indptr();
      const auto offs = positions.offsets();
      if (indptr.size() != offs.size() + 1 || indptr.front() != 0 || indptr.back() != tokens)
        bad("positions.indptr",
            "offsets.size() + 1 boundaries from 0 to the token count " + str(tokens),
            str(static_cast<std::int64_t>(indptr.size())) + " entries");
      for (std::size_t s = 0; s + 1 < indptr.size(); ++s) {
        if (indptr[s + 1] < indptr[s])
          bad("positions.indptr[" + std::to_string(s + 1) + "]", "non-decreasing boundaries",
              str(indptr[s + 1]) + " after " + str(indptr[s]));
        const std::int64_t len = indptr[s + 1] - indptr[s];
        if (len > 0) {
          check_position(offs[s], "positions.offsets[" + std::to_string(s) + "]");
          if (offs[s] > kMaxAbsPosition - (len - 1))
            bad("positions.offsets[" + std::to_string(s) + "]", "positions within [0, 2^31 − 1]",
                str(offs[s]) + " with " + str(len) + " tokens");
        }
      }
      break;
    }
    case Positions::Kind::kPerToken: {
      const std::int64_t have = static_cast<std::int64_t>(
          positions.ids64().empty() ? positions.ids32().size() : positions.ids64().size());
      if (have != tokens) bad("positions", str(tokens) + " ids (one per token)", str(have));
      for (std::int64_t t = 0; t < tokens; ++t)
        check_position(position_of(t), "positions[" + std::to_string(t) + "]");
      break;
    }
    case Positions::Kind::kMRope:
      break;
  }
  if (tokens == 0 || q.heads == 0 || q.head_dim == 0) return;
  if (q.data == nullptr) bad("q.data", "a non-null pointer for a non-empty view", "nullptr");
  const std::int64_t es = dtype_size(q.dtype);
  auto* base = static_cast<unsigned char*>(q.data);
  seq_hint = 0;
  for (std::int64_t t = 0; t < tokens; ++t) {
    const float s32 = scale_at(scale, position_of(t));
    // Ministral 3 rounds the scale to the query dtype first; the product of two values of a
    // 16-bit dtype is exact in float32, so one rounding follows either way.
    const float s =
        scale.scale_in_query_dtype ? static_cast<float>(round_to_dtype(q.dtype, s32)) : s32;
    const std::int64_t b = t / q.tokens, tt = t % q.tokens;
    for (std::int64_t h = 0; h < q.heads; ++h) {
      unsigned char* row =
          base + (b * q.stride_batch + tt * q.stride_token + h * q.stride_head) * es;
      for (std::int64_t d = 0; d < q.head_dim; ++d) {
        void* e = row + d * q.stride_dim * es;
        // One float32 product, then one rounding to the storage dtype (transformers' promote-
        // multiply-cast); for f32 the product is the result.
        const float prod = static_cast<float>(load_as_double(q.dtype, e)) * s;
        store_from_double(q.dtype, e, prod);
      }
    }
  }
}

}  // namespace ropekit
