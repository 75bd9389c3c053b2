// The baselines `ropekit bench` times beside apply_rope (docs/benchmarks.md, "Baselines"):
// copies of the kernel's bytes (the floor, its independent check, a non-temporal reference) and
// the plain loop a user would write with a cos/sin table. They live here, not in the library:
// they are yardsticks, compiled for every SIMD target this build has and dispatched like the
// library's kernels (cli/bench_loops.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ropekit/dtype.h"

namespace ropekit::cli::bench {

// Regular-store (write-allocating) copies: the candidates for the floor. Each is unrolled over
// whole vectors with aligned stores after an unaligned head. `ropekit bench` times them all on a
// case's bytes and uses the fastest as that case's floor.
int copy_floor_variants();
const char* copy_floor_name(int variant);
void copy_floor(int variant, void* dst, const void* src, std::size_t bytes);

// An independent regular-store copy: a plain loop over 8-byte words that the compiler
// vectorises (no intrinsics, nothing shared with copy_floor). If it beats the floor, the floor
// is not the fastest copy and the bench says so. dst and src must be 8-byte aligned (the bench's
// buffers and thread chunks are 64-byte aligned); the other loops take any alignment.
void copy_check(void* dst, const void* src, std::size_t bytes);

// Non-temporal (streaming) stores: bypass the caches, so no read-for-ownership of the
// destination. A further reference, not the floor: the kernels use regular stores.
void copy_non_temporal(void* dst, const void* src, std::size_t bytes);

// The in-place pass: every vector of `data` loaded and stored back where it was, with regular
// stores, leaving the bytes as they were. Each line is read once and written once, the least
// memory traffic any in-place kernel makes over these bytes (a copy to another buffer also reads
// its destination for ownership): the bound of an in-place call, reported beside the floor.
void pass_in_place(void* data, std::size_t bytes);

// One tensor [tokens, heads, head_dim], contiguous; rotated out of place or in place (in == out).
struct PlainTensor {
  const void* in = nullptr;
  void* out = nullptr;
  std::int64_t heads = 0;
};

// The plain loop: per token t, the table rows cos[pos[t]·pairs ...] and sin[pos[t]·pairs ...],
// then for every head of every tensor
//   half-split:  y[i] = x[i]·c[i] − x[i+pairs]·s[i],  y[i+pairs] = x[i+pairs]·c[i] + x[i]·s[i]
//   interleaved: y[2i] = x[2i]·c[i] − x[2i+1]·s[i],   y[2i+1] = x[2i+1]·c[i] + x[2i]·s[i]
// in float32; bf16 and f16 are widened and rounded to nearest even with integer and float
// arithmetic that the compiler vectorises. Features past 2·pairs are copied.
struct PlainJob {
  DType dtype = DType::kF32;
  int head_dim = 0;
  int pairs = 0;
  bool interleaved = false;
  const std::int64_t* positions = nullptr;  // [tokens]
  const float* cos = nullptr;               // [positions][pairs]
  const float* sin = nullptr;
  PlainTensor tensors[2];
  int n_tensors = 0;
};
void plain_rope(const PlainJob& job, std::int64_t t_begin, std::int64_t t_end);

}  // namespace ropekit::cli::bench
