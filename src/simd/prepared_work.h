// Internal: the SIMD backend's record of a prepared shape, kept in detail::PreparedRange::backend
// (kernel/job.h). It holds what RopeRange's step 1 (rope-inl.h) decides from the fields of a job
// that a prepared shape never changes: a row kernel per tensor and what it needs of cos/sin, and
// the geometry the row kernels read. A call of that shape then binds only its data pointers.
// Plain data, the same on every Highway target (the row kernels are stored type-erased and
// called only by the target that chose them).
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernel/job.h"

namespace ropekit::simd {

// Geometry shared by every row of one tensor (the row kernels' argument).
struct RowGeom {
  int pairs = 0;
  int rotary_dim = 0;
  int head_dim = 0;
  std::int64_t in_sd = 1, out_sd = 1;  // element strides along head_dim
  std::int64_t in_sh = 0, out_sh = 0;  // element strides between heads
  std::int64_t heads = 0;
  bool in_place = false;
};

// One tensor (q or k) of a shape, everything but its data pointers. The data pointers decide two
// things per call: whether the tensor is rotated in place (in == out), and whether an out-of-place
// output may be streamed (its address a multiple of 64; rope-inl.h: ShapeMayStream).
struct PreparedTensor {
  using ErasedRows = void (*)();  // a row kernel (rows-inl.h: RowsFn) of the preparing target
  bool is_k = false;              // the job's tensor: q or k
  ErasedRows rows[2] = {};        // [in place]
  // Out of place with an output aligned to 64 bytes: the non-temporal form of rows[0], when the
  // shape allows streaming at all (contiguous rows, large enough, strides multiples of 64 bytes).
  ErasedRows rows_streaming = nullptr;
  unsigned needs[2] = {};              // [in place] TrigNeeds of rows[in place]
  bool trig_once[2] = {true, true};    // [in place] rows[in place] reads cos/sin once per token
  std::int64_t in_st = 0, out_st = 0;  // token strides in bytes
  std::int64_t in_sb = 0, out_sb = 0;  // batch strides in bytes
  std::int64_t seq = 0;                // tokens per sequence (0: one sequence)
  RowGeom g[2];                        // [in place]
};

struct PreparedWork {
  int tensors = 0;  // those with heads, q first
  // The job's CosSinCache had rows when prepared: sin_row(p) − cos_row(p) in bytes, the same for
  // every p (ropekit/cos_sin_cache.h), so that a call finds a row with one lookup, not two.
  // Before the tensors, so that a call of q alone reads the lines of q's record only.
  bool sin_offset_known = false;
  std::intptr_t sin_offset = 0;
  PreparedTensor tensor[2];
};

static_assert(std::is_trivially_copyable_v<PreparedWork> &&
                  sizeof(PreparedWork) <= sizeof(detail::PreparedRange::backend) &&
                  alignof(PreparedWork) <= alignof(detail::PreparedRange),
              "PreparedWork must fit PreparedRange::backend");

}  // namespace ropekit::simd
