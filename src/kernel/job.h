// Internal: the backend contract. A validated apply_rope call, as the backends (reference,
// SIMD) receive it; both implement the functions declared at the end.
//
// src/apply/apply.cc validates everything at the API boundary and fills an ApplyJob; backends
// trust it (no checks) and process a contiguous token range [t_begin, t_end). The driver splits
// the tokens over threads. Per token, a backend computes (or reads from the cache) cos/sin once
// and rotates every head of q and k with them.
#pragma once

#include <cstdint>

#include "ropekit/apply.h"
#include "ropekit/cos_sin_cache.h"
#include "ropekit/dtype.h"

namespace ropekit::detail {

// One tensor (q or k) of the job. in == out with equal strides means in place.
struct JobTensor {
  const void* in = nullptr;
  DType in_type = DType::kF32;
  std::int64_t in_stride_token = 0, in_stride_head = 0, in_stride_dim = 1;
  void* out = nullptr;
  DType out_type = DType::kF32;
  std::int64_t out_stride_token = 0, out_stride_head = 0, out_stride_dim = 1;
  std::int64_t heads = 0;  // 0: absent
  bool in_place = false;
  // Batched views: token t of the job is token t % seq of sequence t / seq, at
  // (t / seq)·stride_batch + (t % seq)·stride_token. seq == 0: one sequence (t·stride_token).
  std::int64_t seq = 0;
  std::int64_t in_stride_batch = 0, out_stride_batch = 0;
};

// Offset (in the unit of the strides) of job token t: the one place that knows the batch axis.
inline std::int64_t token_offset(std::int64_t t, std::int64_t seq, std::int64_t stride_token,
                                 std::int64_t stride_batch) {
  if (seq == 0) return t * stride_token;
  const std::int64_t b = t / seq;
  return b * stride_batch + (t - b * seq) * stride_token;
}

struct ApplyJob {
  // User-provided, so that the members are initialised one by one (their initialisers below)
  // instead of as one block clear that the per-call path would pay for (a `rep stos` of the
  // whole job with GCC); fields the caller then assigns are not written twice.
  ApplyJob() noexcept {}  // NOLINT(modernize-use-equals-default)
  // geometry
  std::int64_t tokens = 0;
  int head_dim = 0;
  int rotary_dim = 0;
  int pairs = 0;  // rotary_dim / 2
  PairLayout layout = PairLayout::kHalf;
  bool inverse = false;
  // frequencies
  const float* inv_freq = nullptr;  // [pairs]
  // Nonzero: an identity of the values at inv_freq. Every job with this id has the same pairs and
  // frequencies (its owner, a PreparedRope or an apply_rope memo entry, holds them in storage it
  // never changes under that id; new_frequency_id() never returns an id twice), so per-thread state
  // derived from them may be reused without comparing them. 0: unknown (compare the values).
  std::uint64_t freq_id = 0;
  // max |inv_freq[i]|, or 4 when all are <= 4 and position_scale == 1 (the SIMD range test)
  double max_abs_inv_freq = 0;
  const std::uint8_t* pair_axis = nullptr;  // [pairs] for M-RoPE, else nullptr
  double amplitude = 1.0;                   // attention factor folded into cos/sin (or 1)
  AngleMode angles = AngleMode::kExact;
  Rounding rounding = Rounding::kSingle;
  bool hf_rounds_once = false;
  float position_scale = 1.0f;        // mlx-lm linear, hf angles: float32(scale · float32(p))
  double position_scale_exact = 1.0;  // exact angles: p · scale with the scale in double
  bool has_position_scale = false;
  const CosSinCache* cache = nullptr;  // matches the job when set
  // Out-of-place outputs of at least this many bytes may be written with non-temporal stores
  // (ApplyOptions::output_stores; the SIMD kernels' ShapeMayStream and AlignedForStreams).
  std::int64_t stream_from_bytes = INT64_MAX;
  // positions (apply.cc check_positions sets each of these at every call)
  Positions::Kind pos_kind = Positions::Kind::kOffset;
  std::int64_t pos_start = 0;
  std::int64_t pos_seq = 0;  // kOffset with a batch: tokens per sequence (positions restart)
  const std::int64_t* indptr = nullptr;  // [n_seq + 1]
  const std::int64_t* seq_offsets = nullptr;
  std::int64_t n_seq = 0;
  int pos_rows = 1;                     // position rows of Kind::kMRope (1 to 4), else 1
  const std::int32_t* ids32 = nullptr;  // per token, or [pos_rows][tokens] for position rows
  const std::int64_t* ids64 = nullptr;
  // tensors
  JobTensor q, k;
};

// Position of token t on row `axis` (0 for 1-D positions). For kPerSequence, `seq_hint` is
// the sequence index of a nearby token (updated; start from seq_for_token()).
inline std::int64_t seq_for_token(const ApplyJob& job, std::int64_t t) {
  // last s with indptr[s] <= t (binary search; empty sequences are skipped naturally)
  std::int64_t lo = 0, hi = job.n_seq - 1;
  while (lo < hi) {
    const std::int64_t mid = (lo + hi + 1) / 2;
    if (job.indptr[mid] <= t)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

inline std::int64_t token_position(const ApplyJob& job, std::int64_t t, int axis,
                                   std::int64_t& seq_hint) {
  switch (job.pos_kind) {
    case Positions::Kind::kOffset:
      return job.pos_start + (job.pos_seq > 0 ? t % job.pos_seq : t);
    case Positions::Kind::kPerSequence:
      while (job.indptr[seq_hint + 1] <= t) ++seq_hint;
      return job.seq_offsets[seq_hint] + (t - job.indptr[seq_hint]);
    case Positions::Kind::kPerToken:
      return job.ids32 ? job.ids32[t] : job.ids64[t];
    case Positions::Kind::kMRope: {
      const std::int64_t i = static_cast<std::int64_t>(axis) * job.tokens + t;
      return job.ids32 ? job.ids32[i] : job.ids64[i];
    }
  }
  return 0;
}

// Feature index pair (a, b) of pair i, for reading (input) and writing (output).
inline void pair_features(PairLayout layout, int pairs, int i, int& in_a, int& in_b, int& out_a,
                          int& out_b) {
  switch (layout) {
    case PairLayout::kHalf:
      in_a = out_a = i;
      in_b = out_b = i + pairs;
      return;
    case PairLayout::kInterleaved:
      in_a = out_a = 2 * i;
      in_b = out_b = 2 * i + 1;
      return;
    case PairLayout::kInterleavedToHalf:
      in_a = 2 * i;
      in_b = 2 * i + 1;
      out_a = i;
      out_b = i + pairs;
      return;
  }
}

using RangeKernel = void (*)(const ApplyJob& job, std::int64_t t_begin, std::int64_t t_end);

// A backend's decisions for one shape of job, made once for a PreparedRope or a remembered
// apply_rope shape instead of at every call: what its range kernel derives from every field of the
// job but the tensors' data pointers and the positions (the row kernel of each tensor, in place or
// not, and their geometry). Its kernel runs only jobs of that shape: the job it was prepared from,
// with other data pointers and positions.
struct PreparedRange;
using PreparedRangeKernel = void (*)(const ApplyJob& job, const PreparedRange& prepared,
                                     std::int64_t t_begin, std::int64_t t_end);
struct PreparedRange {
  PreparedRangeKernel kernel = nullptr;  // nullptr: nothing prepared (run the RangeKernel)
  // The backend's record, in its own layout (the SIMD backend's: simd/prepared_work.h).
  alignas(16) unsigned char backend[512];
};

// The scalar double-precision reference (src/reference/reference_kernel.cc).
void reference_range(const ApplyJob& job, std::int64_t t_begin, std::int64_t t_end);

// The SIMD backend (src/simd/): returns nullptr when it cannot run this job (then the
// reference runs). Defined in src/simd/simd_dispatch.cc.
RangeKernel simd_kernel_for(const ApplyJob& job);
// Prepares the shape of `job` for the kernel simd_kernel_for(job) returns now, when it is one of
// the per-dtype kernels (q and k of one input dtype): sets prepared.kernel, else leaves it nullptr.
void simd_prepare(const ApplyJob& job, PreparedRange& prepared);
// A frequency identity (ApplyJob::freq_id) no earlier call returned; thread-safe. Defined in
// src/apply/apply.cc.
std::uint64_t new_frequency_id();

// Changes whenever the SIMD target that simd_kernel_for dispatches to, or a row kernel that
// simd_prepare chooses, may have changed (force_target, ROPEKIT_TARGET, the AVX512_BF16 switch of
// the tests): a kernel they returned stays the one they would return while this value is the same.
// Defined in src/simd/targets.cc.
std::uint64_t simd_dispatch_version();
// Bumps simd_dispatch_version() (targets.cc).
void note_dispatch_change();

}  // namespace ropekit::detail
