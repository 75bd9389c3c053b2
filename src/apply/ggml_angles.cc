// The llama.cpp numerics preset at the apply boundary (see ggml_angles.h). The arithmetic is
// ggml's (src/reference/ggml_math.h: float32 running product, YaRN ramp, built-in magnitude,
// freq_factors, the M-RoPE / vision streams); here only the positions are gathered and the
// table laid out. One row per position of [min, max] when the call's positions span no more
// values than it has tokens (a prefill or decode step), else one row per token.
#include <algorithm>
#include <array>
#include <string>

#include "apply/ggml_angles.h"
#include "reference/ggml_math.h"
#include "ropekit/error.h"
#include "ropekit/thread_pool.h"

namespace ropekit::detail {
namespace {

[[noreturn]] void bad(const std::string& what, const std::string& expected,
                      const std::string& got) {
  throw ArgumentError("[ropekit.apply] " + what + ": expected " + expected + ", got " + got);
}

}  // namespace

void check_ggml_angles(const FrequencyPlan& plan, const ApplyOptions& o, const ApplyJob& job) {
  if (!plan.ggml)
    bad("plan.ggml",
        "ggml's arguments for AngleMode::kGgml (build the plan with FrequencyArithmetic::kGgml, "
        "e.g. Numerics::llama_cpp())",
        "a plan without them");
  const GgmlRopeParams& g = *plan.ggml;
  ggml_check_params(g);
  const int pairs = ggml_pair_count(g);
  if (pairs != job.pairs)
    bad("plan.ggml.n_dims", std::to_string(job.pairs) + " pairs (the plan's rotary_dim / 2)",
        std::to_string(pairs) + " pairs");
  if (o.cache) bad("options.cache", "no cache with AngleMode::kGgml", "a cache");
  if (job.has_position_scale)
    bad("options.position_scale", "1 with AngleMode::kGgml (ggml has no position scale)",
        std::to_string(o.position_scale));
  if (o.rounding == Rounding::kTransformers)
    bad("options.rounding", "Rounding::kSingle with AngleMode::kGgml", "kTransformers");
}

void bind_ggml_angles(const FrequencyPlan& plan, const ApplyOptions& o, ApplyJob& job,
                      GgmlAngleTable& table) {
  const GgmlRopeParams& g = *plan.ggml;
  const int pairs = job.pairs;
  const float magnitude = ggml_magnitude(g);
  const float folded = o.fold_attention_factor ? magnitude : 1.0f;
  table.unapplied_magnitude = o.fold_attention_factor ? 1.0 : static_cast<double>(magnitude);

  const std::int64_t tokens = job.tokens;
  const bool rows_kind = job.pos_kind == Positions::Kind::kMRope;
  // ggml's four streams (t, h, w, e) from the job's rows: M-RoPE's T, H, W (the e stream
  // repeats T: Positions carries 3 rows), 2-D vision's row and column.
  auto streams = [&](std::int64_t t, std::int64_t& hint) {
    std::array<std::int64_t, 4> s{};
    if (!rows_kind) {
      s.fill(token_position(job, t, 0, hint));
      return s;
    }
    for (int a = 0; a < 4; ++a) {
      const int row = a < job.pos_rows ? a : 0;
      s[static_cast<std::size_t>(a)] = token_position(job, t, row, hint);
    }
    return s;
  };

  // 1-D positions spanning at most `tokens` values: one row per position (p − pmin).
  std::int64_t pmin = 0, pmax = -1;
  if (!rows_kind && tokens > 0) {
    std::int64_t hint = job.pos_kind == Positions::Kind::kPerSequence ? seq_for_token(job, 0) : 0;
    pmin = pmax = token_position(job, 0, 0, hint);
    for (std::int64_t t = 1; t < tokens; ++t) {
      const std::int64_t p = token_position(job, t, 0, hint);
      pmin = std::min(pmin, p);
      pmax = std::max(pmax, p);
    }
  }
  const bool by_position = !rows_kind && tokens > 0 && pmax - pmin < tokens;
  const std::int64_t n_rows = by_position ? pmax - pmin + 1 : tokens;
  const auto row_floats = static_cast<std::size_t>(2 * pairs);
  table.rows.resize(static_cast<std::size_t>(n_rows) * row_floats);
  table.row_of.resize(static_cast<std::size_t>(tokens));
  const bool ragged = job.pos_kind == Positions::Kind::kPerSequence;
  if (by_position) {
    std::int64_t hint = ragged ? seq_for_token(job, 0) : 0;
    for (std::int64_t t = 0; t < tokens; ++t)
      table.row_of[static_cast<std::size_t>(t)] = token_position(job, t, 0, hint) - pmin;
  } else {
    for (std::int64_t t = 0; t < tokens; ++t) table.row_of[static_cast<std::size_t>(t)] = t;
  }
  // Rows [r0, r1): position pmin + r, or token r's streams.
  auto fill = [&](std::int64_t r0, std::int64_t r1) {
    std::int64_t hint = !by_position && ragged ? seq_for_token(job, r0) : 0;
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::array<std::int64_t, 4> s =
          by_position ? std::array<std::int64_t, 4>{pmin + r, pmin + r, pmin + r, pmin + r}
                      : streams(r, hint);
      float* row = table.rows.data() + static_cast<std::size_t>(r) * row_floats;
      ggml_cos_sin_into(g, s, folded, row, row + pairs);
    }
  };
  // A long prefill's table is spread over the pool like the rotation (tens of thousands of
  // sincosf pairs per thread at least); a decode step's is built here.
  ThreadPool& pool = o.pool ? *o.pool : default_pool();
  const int threads = o.max_threads > 0 ? std::min(o.max_threads, pool.size()) : pool.size();
  constexpr std::int64_t kMinPairsPerChunk = 32768;
  const std::int64_t chunks = std::min<std::int64_t>(
      {n_rows, 4 * static_cast<std::int64_t>(threads), n_rows * pairs / kMinPairsPerChunk});
  if (threads <= 1 || chunks <= 1) {
    fill(0, n_rows);
  } else {
    pool.parallel_for(
        chunks, [&](std::int64_t c) { fill(n_rows * c / chunks, n_rows * (c + 1) / chunks); },
        threads);
  }

  table.cache = CosSinCache::wrap(table.rows.data(), table.rows.data() + pairs, n_rows, pairs,
                                  static_cast<std::int64_t>(row_floats));
  job.cache = table.cache.get();
  job.pos_kind = Positions::Kind::kPerToken;
  job.ids32 = nullptr;
  job.ids64 = table.row_of.data();
  job.pos_rows = 1;
  job.pos_seq = 0;
  job.pair_axis = nullptr;
  job.amplitude = 1.0;
  job.angles = AngleMode::kExact;
}

}  // namespace ropekit::detail
