// ropekit/apply.h — rotate queries and keys.
//
// For each token t with position p(t), each head h and each rotated pair i (PairLayout in
// ropekit/config.h says which two features (a, b) form pair i):
//
//     θ = p(t) · inv_freq[i]            c = A·cos θ,  s = A·sin θ   (A = attention factor)
//     forward:  y[a] = x[a]·c − x[b]·s        inverse:  y[a] =  x[a]·c + x[b]·s
//               y[b] = x[b]·c + x[a]·s                  y[b] =  x[b]·c − x[a]·s
//
// Features past rotary_dim are passed through bit-identical (copied out of place, untouched in
// place). The inverse is the transpose R(p)ᵀ: the backward pass of the forward rotation
// (dx = R(p)ᵀ dy); with A = 1 it undoes the forward rotation.
//
// Tensors are views over caller memory, shape [tokens, heads, head_dim], any element strides:
//
//     element (t, h, d) is at  data + t·stride_token + h·stride_head + d·stride_dim   (elements)
//
// so q and k can be slices of a fused qkv buffer, or laid out [heads, tokens, head_dim].
// q and k have their own head counts (grouped-query attention) and share positions.
//
// Batches: a view may hold `batch` sequences of `tokens` tokens each ([batch, seq, heads, dim]
// or [batch, heads, seq, dim], any strides); element (b, t, h, d) is at
//     data + b·stride_batch + t·stride_token + h·stride_head + d·stride_dim
// The call then sees batch·tokens tokens, sequence-major: token b·tokens + t. Positions count
// those: offset(p0) gives every sequence the positions p0 .. p0 + tokens − 1; per_sequence,
// per_token and mrope describe all batch·tokens tokens (indptr ends at batch·tokens).
//
// Positions (one convention per call):
//   offset(p0)                    token t has position p0 + t
//   per_sequence(indptr, offsets) ragged batch (FlashInfer): tokens indptr[s] .. indptr[s+1]−1
//                                 belong to sequence s and have positions offsets[s] + (t −
//                                 indptr[s])
//   per_token(ids)                one int32/int64 position per token; negative allowed
//                                 (left-padded batches)
//   rows(rows, tokens, n)         [n, tokens] int32/int64 position rows, 1 <= n <= 4 (the plan's
//                                 position_rows); pair i uses row plan.pair_axis[i]: M-RoPE,
//                                 XD-RoPE, 2-D vision RoPE
//   mrope(rows, tokens)           rows(rows, tokens, 3): M-RoPE's rows T, H, W
// Supported positions: |p| <= 2^31 − 1.
//
// Angle modes:
//   kExact (default)  θ = p · inv_freq in exact arithmetic, reduced modulo 2π in double
//                     precision; results stay within a few float32 ulp of true math at every
//                     supported position. Why the default: it is the true rotation the model
//                     was defined with, and it does not drift with the position.
//   kHf               θ = float32(float32(p) · inv_freq) as transformers and MLX compute it,
//                     then accurate cos/sin of that float: parity with their outputs (which at
//                     p = 131071 differ from true math by up to ~5e-3).
// Rounding (16-bit outputs):
//   kSingle (default) the result is computed in f64 (reference) or f32 (SIMD) and rounded once.
//   kTransformers     emulate transformers' sequence for bf16/f16 tensors: cos/sin rounded to the
//                     dtype, then each product and the sum rounded (three roundings), except
//                     for families that round once (plan.hf_rounds_once). Bit parity with HF.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "ropekit/config.h"
#include "ropekit/dtype.h"
#include "ropekit/frequencies.h"
#include "ropekit/numerics.h"

namespace ropekit {

class CosSinCache;
class ThreadPool;

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  std::int64_t tokens = 0, heads = 0, head_dim = 0;
  std::int64_t stride_token = 0, stride_head = 0, stride_dim = 1;  // in elements
  std::int64_t batch = 1, stride_batch = 0;  // sequences in the view (see above)

  static TensorView contiguous(void* data, DType dtype, std::int64_t tokens, std::int64_t heads,
                               std::int64_t head_dim) {
    return TensorView{data, dtype, tokens, heads, head_dim, heads * head_dim, head_dim, 1};
  }
};

struct ConstTensorView {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  std::int64_t tokens = 0, heads = 0, head_dim = 0;
  std::int64_t stride_token = 0, stride_head = 0, stride_dim = 1;
  std::int64_t batch = 1, stride_batch = 0;

  ConstTensorView() = default;
  ConstTensorView(const void* d, DType t, std::int64_t nt, std::int64_t nh, std::int64_t hd,
                  std::int64_t st, std::int64_t sh, std::int64_t sd)
      : data(d),
        dtype(t),
        tokens(nt),
        heads(nh),
        head_dim(hd),
        stride_token(st),
        stride_head(sh),
        stride_dim(sd) {}
  ConstTensorView(const TensorView& v)  // NOLINT(google-explicit-constructor): views convert
      : ConstTensorView(v.data, v.dtype, v.tokens, v.heads, v.head_dim, v.stride_token,
                        v.stride_head, v.stride_dim) {
    batch = v.batch;
    stride_batch = v.stride_batch;
  }
  static ConstTensorView contiguous(const void* data, DType dtype, std::int64_t tokens,
                                    std::int64_t heads, std::int64_t head_dim) {
    return ConstTensorView{data, dtype, tokens, heads, head_dim, heads * head_dim, head_dim, 1};
  }
};

class Positions {
 public:
  // kMRope: position rows (M-RoPE, XD-RoPE, 2-D vision RoPE), whatever their number.
  enum class Kind { kOffset, kPerSequence, kPerToken, kMRope };

  static Positions offset(std::int64_t start) {
    Positions p;
    p.kind_ = Kind::kOffset;
    p.start_ = start;
    return p;
  }
  // indptr has n_seq + 1 non-decreasing entries from 0 to tokens; offsets has n_seq entries.
  static Positions per_sequence(std::span<const std::int64_t> indptr,
                                std::span<const std::int64_t> offsets) {
    Positions p;
    p.kind_ = Kind::kPerSequence;
    p.indptr_ = indptr;
    p.offsets_ = offsets;
    return p;
  }
  static Positions per_token(std::span<const std::int32_t> ids) {
    Positions p;
    p.kind_ = Kind::kPerToken;
    p.ids32_ = ids;
    return p;
  }
  static Positions per_token(std::span<const std::int64_t> ids) {
    Positions p;
    p.kind_ = Kind::kPerToken;
    p.ids64_ = ids;
    return p;
  }
  // Position rows (Kind::kMRope): n_rows rows of `tokens` ids each, row r at
  // rows.data() + r * tokens. n_rows in [1, kMaxRows] must equal the plan's position_rows.
  static constexpr int kMaxRows = 4;
  static Positions rows(std::span<const std::int32_t> rows, std::int64_t tokens, int n_rows) {
    Positions p;
    p.kind_ = Kind::kMRope;
    p.ids32_ = rows;
    p.mrope_tokens_ = tokens;
    p.rows_ = n_rows;
    return p;
  }
  static Positions rows(std::span<const std::int64_t> rows, std::int64_t tokens, int n_rows) {
    Positions p;
    p.kind_ = Kind::kMRope;
    p.ids64_ = rows;
    p.mrope_tokens_ = tokens;
    p.rows_ = n_rows;
    return p;
  }
  // M-RoPE: 3 rows T, H, W.
  static Positions mrope(std::span<const std::int32_t> r, std::int64_t tokens) {
    return rows(r, tokens, 3);
  }
  static Positions mrope(std::span<const std::int64_t> r, std::int64_t tokens) {
    return rows(r, tokens, 3);
  }

  Kind kind() const noexcept { return kind_; }
  std::int64_t start() const noexcept { return start_; }
  std::span<const std::int64_t> indptr() const noexcept { return indptr_; }
  std::span<const std::int64_t> offsets() const noexcept { return offsets_; }
  std::span<const std::int32_t> ids32() const noexcept { return ids32_; }
  std::span<const std::int64_t> ids64() const noexcept { return ids64_; }
  std::int64_t mrope_tokens() const noexcept { return mrope_tokens_; }
  int n_rows() const noexcept { return kind_ == Kind::kMRope ? rows_ : 1; }  // position rows

 private:
  Kind kind_ = Kind::kOffset;
  std::int64_t start_ = 0;
  std::span<const std::int64_t> indptr_, offsets_;
  std::span<const std::int32_t> ids32_;
  std::span<const std::int64_t> ids64_;
  std::int64_t mrope_tokens_ = 0;
  int rows_ = 1;
};

constexpr std::int64_t kMaxAbsPosition = 2147483647;  // 2^31 − 1

enum class Direction { kForward, kInverse };
// kAuto: the SIMD kernels when compiled in (ropekit/targets.h), else the reference.
// kReference: the scalar double-precision reference (the oracle of every fast path).
enum class Backend { kAuto, kReference, kSimd };

// How the SIMD kernels write an out-of-place result (the values are the same either way):
//
//   kAuto         non-temporal stores for an output tensor of kAutoNonTemporalFromBytes or more,
//                 regular stores below. Input plus output then exceed a large last-level cache,
//                 so the result cannot stay cached for the next kernel anyway, and a
//                 non-temporal store skips the read-for-ownership of each line: an out-of-place
//                 pass moves two bytes of DRAM traffic per output byte instead of three.
//   kRegular      write-allocating stores at every size (the result stays in the caches where
//                 they can hold it, e.g. for an attention kernel that reads it next).
//   kNonTemporal  non-temporal stores at every size.
//
// Non-temporal stores are used only where they measured faster (docs/benchmarks.md): on AVX-512
// targets, by the whole-token kernels of f32 outputs with 16, 32, 64 or 128 rotated pairs (every
// store a whole 64-byte line; f32 interleaved pairs only where they are rotated in registers)
// and by the AVX512_BF16 whole-token kernels of bf16 (half-split and interleaved); and only when
// every row of the output starts on a 64-byte boundary (its address and its strides in bytes are
// multiples of 64). In place, the lines are already cached and stores stay regular. Each thread
// fences its non-temporal stores before apply_rope returns.
enum class OutputStores { kAuto, kRegular, kNonTemporal };
inline constexpr std::int64_t kAutoNonTemporalFromBytes = std::int64_t{32} << 20;  // 32 MiB

struct ApplyOptions {
  AngleMode angles = AngleMode::kExact;
  Direction direction = Direction::kForward;
  Rounding rounding = Rounding::kSingle;
  Backend backend = Backend::kAuto;
  // true: cos/sin carry the attention factor (transformers). false: the rotation is pure and
  // the factor is returned in ApplyResult for the caller to fold into the softmax scale.
  bool fold_attention_factor = true;
  std::optional<PairLayout> layout;  // overrides plan.layout (e.g. kInterleavedToHalf)
  // Positions are multiplied by this first (mlx-lm's linear scaling, fast.rope `scale`);
  // kHf: float32(scale · float32(p)); kExact: exact p · scale. Finite and > 0.
  double position_scale = 1.0;
  // Precomputed cos/sin (must match plan, angles, folding). A cache wrapping a caller's table
  // (CosSinCache::wrap) is used as it is: every position must lie inside it.
  const CosSinCache* cache = nullptr;
  ThreadPool* pool = nullptr;  // nullptr: the library's pool (ropekit/thread_pool.h)
  int max_threads = 0;         // 0: the pool's size
  OutputStores output_stores = OutputStores::kAuto;  // see OutputStores
};

// ApplyOptions with a preset's angles and rounding (ropekit/numerics.h); the plan must have
// been built with the same preset for its frequencies.
inline ApplyOptions with_numerics(ApplyOptions options, const Numerics& numerics) {
  options.angles = numerics.angles;
  options.rounding = numerics.rounding;
  return options;
}

struct ApplyResult {
  // The attention factor NOT applied to the outputs (1 when folded into cos/sin).
  double unapplied_attention_factor = 1.0;
};

// Small calls and their fixed cost: each thread remembers the validated shapes of its last few
// calls of at most 256 tokens (1-D positions, not AngleMode::kGgml) once it has seen one twice in
// a row. A call whose plan values (inv_freq included), options, view geometry and pool size equal
// a remembered one's then checks only what it brings (data pointers, overlaps, positions), as
// PreparedRope::apply does; everything else is checked again whenever any of those inputs
// differs. Results and error messages are the same either way. A loop that alternates a few
// shapes (q and k in separate calls, two plans) is served for each of them.

// In place: q and k are rotated where they are. k may be empty (data == nullptr, heads == 0).
ApplyResult apply_rope(const FrequencyPlan& plan, const TensorView& q, const TensorView& k,
                       const Positions& positions, const ApplyOptions& options = {});

// Out of place: q_out/k_out receive the rotated q_in/k_in (same shapes; dtypes may differ from
// the inputs'). An output may be exactly its input (same data and strides: in place) but must
// not otherwise overlap any input or the other output.
ApplyResult apply_rope(const FrequencyPlan& plan, const ConstTensorView& q_in,
                       const TensorView& q_out, const ConstTensorView& k_in,
                       const TensorView& k_out, const Positions& positions,
                       const ApplyOptions& options = {});

// A call validated once and run many times: the decode loop of a server, which applies the same
// plan and options to tensors of the same shape at every step, and only the data pointers and
// the positions change. (apply_rope remembers such shapes itself, see above; a PreparedRope
// also skips comparing the call with them, and holds its shape however many others run.)
//
//     PreparedRope rope(plan, q_in, q_out, k_in, k_out, options);  // views: shapes, dtypes,
//     for (step ...)                                               // strides (data unused)
//       rope.apply(q_in_data, q_out_data, k_in_data, k_out_data, Positions::offset(p));
//
// The constructor checks everything apply_rope checks that is not a data pointer or a position
// (plan, options, cache, shapes, dtypes, strides), picks the kernel and the thread split, and
// throws ArgumentError with apply_rope's messages. apply() then checks only what a call brings:
// each pointer (non-null for a non-empty view, aligned to its dtype), the overlaps between
// them (an output exactly its input, or disjoint from every other view), and the positions;
// its result is bit-identical to apply_rope's with the same arguments.
//
// The plan and options are copied; the cache and the thread pool they point to must outlive
// the object. apply() is const and may run on several threads at once (each call is its own).
class PreparedRope {
 public:
  PreparedRope(const FrequencyPlan& plan, const ConstTensorView& q_in, const TensorView& q_out,
               const ConstTensorView& k_in, const TensorView& k_out,
               const ApplyOptions& options = {});
  // In place: apply(q, k, positions) rotates q and k where they are.
  PreparedRope(const FrequencyPlan& plan, const TensorView& q, const TensorView& k,
               const ApplyOptions& options = {});
  PreparedRope(PreparedRope&&) noexcept;
  PreparedRope& operator=(PreparedRope&&) noexcept;
  PreparedRope(const PreparedRope&) = delete;
  PreparedRope& operator=(const PreparedRope&) = delete;
  ~PreparedRope();

  // Out of place (an output may be its input: in place). k_in / k_out may be nullptr when the
  // prepared k is empty.
  ApplyResult apply(const void* q_in, void* q_out, const void* k_in, void* k_out,
                    const Positions& positions) const;
  ApplyResult apply(void* q, void* k, const Positions& positions) const;  // in place

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ropekit
