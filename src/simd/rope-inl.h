// The per-target RoPE range kernel, instantiated once per input dtype (rope_f32.cc, rope_f16.cc,
// rope_bf16.cc each instantiate RopeRange<their dtype>): kernel selection and the token driver.
//
// (1) Choose a row kernel per tensor (SelectRows: the portable kernels of rows-inl.h or the x86
// ones of rows_x86-inl.h) and note which cos/sin arrangements they need (PrepareWork): once per
// shape for a prepared one (a PreparedRope, a remembered apply_rope shape: RopeRangePrepared then
// only binds each call's pointers), else at every call (RopeRange). Then per token: (2) obtain
// cos/sin ONCE (TokenCosSin: a CosSinCache row, or computed on the fly by sincos-inl.h), (3)
// rearrange them once if a row kernel wants another order (PrepareTrig), (4) rotate every head of q
// and of k with them.

#if defined(ROPEKIT_SIMD_ROPE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ROPEKIT_SIMD_ROPE_INL_H_
#undef ROPEKIT_SIMD_ROPE_INL_H_
#else
#define ROPEKIT_SIMD_ROPE_INL_H_
#endif

#include <cstdint>
#include <cstring>
#include <new>
#include <optional>
#include <type_traits>

#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "kernel/angles.h"
#include "kernel/job.h"
#include "ropekit/cos_sin_cache.h"
#include "simd/hwy_compat-inl.h"
#include "simd/prepared_work.h"
#include "simd/rows-inl.h"
#include "simd/rows_x86-inl.h"
#include "simd/simd_api.h"
#include "simd/sincos-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ropekit {
namespace simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ---- step 1: a row kernel per tensor ----------------------------------------------------------
// stream: the caller found the output fit for non-temporal stores (ShapeMayStream,
// AlignedForStreams); the kernels that have a non-temporal form then use it (rows-inl.h:
// KernelStreams).
template <typename TIn, typename TOut>
HWY_INLINE RowsChoice SelectRowsOut(PairLayout layout, bool contiguous, int pairs, bool in_place,
                                    bool stream) {
  if (!contiguous) {
    switch (layout) {
      case PairLayout::kHalf:
        return {&RotateRowsStrided<PairLayout::kHalf, TIn, TOut>, 0};
      case PairLayout::kInterleaved:
        return {&RotateRowsStrided<PairLayout::kInterleaved, TIn, TOut>, 0};
      case PairLayout::kInterleavedToHalf:
        return {&RotateRowsStrided<PairLayout::kInterleavedToHalf, TIn, TOut>, 0};
    }
  }
  if constexpr (std::is_same_v<TIn, BF16> && std::is_same_v<TOut, BF16>) {
#if ROPEKIT_HAVE_AVX512BF16_KERNELS
    if (detail::avx512_bf16_enabled()) {
      if (const RowsChoice token = SelectTokenBF16Native(layout, pairs, in_place, stream); token.fn)
        return token;
      if (layout == PairLayout::kHalf) return {&RotateRowsBF16Native<PairLayout::kHalf>, 0};
      if (layout == PairLayout::kInterleaved)
        return {&RotateRowsBF16Native<PairLayout::kInterleaved>, 0};
    }
#endif
    if (layout == PairLayout::kHalf) return {&RotateRowsBF16Half<BF16>, kNeedEvenOdd};
  }
#if HWY_TARGET != HWY_SCALAR
  // F16C f16: the row-by-row swap kernel beats de-interleaving (decode 2.1x against 3.3x the
  // copy). For f32 this row-by-row form (per-token dup tables in memory, cos/sin loaded twice per
  // row) lost to de-interleaving loads (0.91-1.01x against 1.13-1.22x at the 8-head long shape);
  // f32 swaps only in the whole-token kernel below (RotateTokenRegsSwap: C/S built in registers
  // once per token), when they fit. bf16 pairs split with a shift/AND already (LoadPairs).
  if constexpr (std::is_same_v<TIn, TOut> && std::is_same_v<TIn, F16> && ROPEKIT_HWY_NATIVE_F16) {
    if (layout == PairLayout::kInterleaved) return {&RotateRowsInterleavedSwap<TIn>, kNeedDup};
  }
#endif
  // Rows of a common width: the whole-token kernel (cos/sin in registers, read in place).
  RowsChoice token;
  switch (layout) {
    case PairLayout::kHalf:
      token = SelectTokenRegs<PairLayout::kHalf, TIn, TOut>(pairs, in_place, stream);
      break;
    case PairLayout::kInterleaved:
      token = SelectTokenRegs<PairLayout::kInterleaved, TIn, TOut>(pairs, in_place, stream);
      break;
    case PairLayout::kInterleavedToHalf:
      token = SelectTokenRegs<PairLayout::kInterleavedToHalf, TIn, TOut>(pairs, in_place, stream);
      break;
  }
  if (token.fn) return token;
  switch (layout) {
    case PairLayout::kHalf:
      return {&RotateRowsContig<PairLayout::kHalf, TIn, TOut>, 0};
    case PairLayout::kInterleaved:
      return {&RotateRowsContig<PairLayout::kInterleaved, TIn, TOut>, 0};
    case PairLayout::kInterleavedToHalf:
      return {&RotateRowsContig<PairLayout::kInterleavedToHalf, TIn, TOut>, 0};
  }
  return {};
}

template <typename TIn>
HWY_INLINE RowsChoice SelectRows(DType out, PairLayout layout, bool contiguous, int pairs,
                                 bool in_place, bool stream) {
  switch (out) {
    case DType::kF32:
      return SelectRowsOut<TIn, float>(layout, contiguous, pairs, in_place, stream);
    case DType::kF16:
      return SelectRowsOut<TIn, F16>(layout, contiguous, pairs, in_place, stream);
    case DType::kBF16:
      return SelectRowsOut<TIn, BF16>(layout, contiguous, pairs, in_place, stream);
  }
  return {};
}

// Builds the arrangements of tt.c / tt.s that `needs` asks for into the given buffers.
HWY_INLINE void PrepareTrig(unsigned needs, int pairs_i, TokenTrig& tt, float* c_eo, float* s_eo,
                            float* c_dup, float* s_dup) {
  const hn::ScalableTag<float> df;
  const std::size_t N = hn::Lanes(df);
  const auto pairs = static_cast<std::size_t>(pairs_i);
  if (needs & kNeedEvenOdd) {
    for (std::size_t i = 0; i + 2 * N <= pairs; i += 2 * N) {
      hn::Vec<decltype(df)> e, o;
      hn::LoadInterleaved2(df, tt.c + i, e, o);
      hn::StoreU(e, df, c_eo + i);
      hn::StoreU(o, df, c_eo + i + N);
      hn::LoadInterleaved2(df, tt.s + i, e, o);
      hn::StoreU(e, df, s_eo + i);
      hn::StoreU(o, df, s_eo + i + N);
    }
    tt.c_eo = c_eo;
    tt.s_eo = s_eo;
  }
  if (needs & kNeedDup) {
    std::size_t i = 0;
    for (; i + N <= pairs; i += N) {
      const auto c = hn::LoadU(df, tt.c + i);
      const auto s = hn::LoadU(df, tt.s + i);
      hn::StoreInterleaved2(c, c, df, c_dup + 2 * i);
      hn::StoreInterleaved2(hn::Neg(s), s, df, s_dup + 2 * i);
    }
    for (; i < pairs; ++i) {
      c_dup[2 * i] = c_dup[2 * i + 1] = tt.c[i];
      s_dup[2 * i] = -tt.s[i];
      s_dup[2 * i + 1] = tt.s[i];
    }
    tt.c_dup = c_dup;
    tt.s_dup = s_dup;
  }
}

// Whether the output of t may be written with non-temporal stores (ropekit/apply.h:
// OutputStores, job.stream_from_bytes): out of place, contiguous rows, at least that large, and
// every row 64-byte aligned (the base and every stride in bytes a multiple of 64), so that each
// full vector a kernel stores is aligned to its size. The shape's part (all but the base address
// and in_place):
HWY_INLINE bool ShapeMayStream(const detail::ApplyJob& job, const detail::JobTensor& t,
                               bool contiguous) {
  if (!contiguous) return false;
  const auto size = static_cast<std::int64_t>(dtype_size(t.out_type));
  if (job.tokens * t.heads * job.head_dim * size < job.stream_from_bytes) return false;
  const std::uint64_t bits = static_cast<std::uint64_t>(t.out_stride_token * size) |
                             static_cast<std::uint64_t>(t.out_stride_head * size) |
                             static_cast<std::uint64_t>(t.seq != 0 ? t.out_stride_batch * size : 0);
  return (bits & 63) == 0;
}
HWY_INLINE bool AlignedForStreams(const void* out) {
  return (reinterpret_cast<std::uintptr_t>(out) & 63) == 0;
}

// Step 1 for one tensor of the job (heads > 0): its row kernels and geometry. all_forms: both
// in-place forms and the streaming one where the shape allows it (a prepared shape, whose calls
// bring their own pointers); else only the form this job's pointers take.
template <typename TIn>
HWY_INLINE void PrepareTensor(const detail::ApplyJob& job, const detail::JobTensor& t, bool is_k,
                              bool all_forms, PreparedTensor& p) {
  const bool contiguous = t.in_stride_dim == 1 && t.out_stride_dim == 1;
  p.is_k = is_k;
  for (const bool in_place : {false, true}) {
    if (!all_forms && in_place != t.in_place) continue;
    const RowsChoice choice =
        SelectRows<TIn>(t.out_type, job.layout, contiguous, job.pairs, in_place, false);
    p.rows[in_place] = reinterpret_cast<PreparedTensor::ErasedRows>(choice.fn);
    p.needs[in_place] = choice.needs;
    p.trig_once[in_place] = choice.trig_once;
  }
  p.rows_streaming = nullptr;
  if (ShapeMayStream(job, t, contiguous) &&
      (all_forms || (!t.in_place && AlignedForStreams(t.out)))) {
    const RowsChoice choice =
        SelectRows<TIn>(t.out_type, job.layout, contiguous, job.pairs, false, true);
    // Only a kernel with a non-temporal form (KernelStreams); its needs are its regular form's.
    if (choice.streams) p.rows_streaming = reinterpret_cast<PreparedTensor::ErasedRows>(choice.fn);
  }
  p.in_st = t.in_stride_token * static_cast<std::int64_t>(dtype_size(t.in_type));
  p.out_st = t.out_stride_token * static_cast<std::int64_t>(dtype_size(t.out_type));
  p.in_sb = t.in_stride_batch * static_cast<std::int64_t>(dtype_size(t.in_type));
  p.out_sb = t.out_stride_batch * static_cast<std::int64_t>(dtype_size(t.out_type));
  p.seq = t.seq;
  for (const bool in_place : {false, true}) {
    RowGeom& g = p.g[in_place];
    g.pairs = job.pairs;
    g.rotary_dim = job.rotary_dim;
    g.head_dim = job.head_dim;
    g.in_sd = t.in_stride_dim;
    g.out_sd = t.out_stride_dim;
    g.in_sh = t.in_stride_head;
    g.out_sh = t.out_stride_head;
    g.heads = t.heads;
    g.in_place = in_place;
  }
}

// Step 1 for the job: q then k, those with heads.
template <typename TIn>
HWY_INLINE void PrepareWork(const detail::ApplyJob& job, bool all_forms, PreparedWork& pw) {
  pw.tensors = 0;
  if (job.q.heads > 0) PrepareTensor<TIn>(job, job.q, false, all_forms, pw.tensor[pw.tensors++]);
  if (job.k.heads > 0) PrepareTensor<TIn>(job, job.k, true, all_forms, pw.tensor[pw.tensors++]);
}

// One tensor of one call: the prepared tensor with this call's pointers.
struct TensorCall {
  RowsFn fn = nullptr;
  const char* in = nullptr;  // bytes
  char* out = nullptr;
  const PreparedTensor* p = nullptr;
  const RowGeom* g = nullptr;
  bool streams = false;  // fn stores non-temporally: fence after the range
};

// Binds the job's pointers to prepared tensor p; false when the tensor has no data.
HWY_INLINE bool BindTensor(const detail::ApplyJob& job, const PreparedTensor& p, TensorCall& w,
                           unsigned& needs, bool& trig_once) {
  const detail::JobTensor& t = p.is_k ? job.k : job.q;
  if (t.in == nullptr) return false;
  const bool in_place = t.in_place;
  PreparedTensor::ErasedRows fn = p.rows[in_place];
  w.streams = false;
  if (p.rows_streaming != nullptr && !in_place && AlignedForStreams(t.out)) {
    fn = p.rows_streaming;
    w.streams = true;
  }
  w.fn = reinterpret_cast<RowsFn>(fn);
  w.in = static_cast<const char*>(t.in);
  w.out = static_cast<char*>(t.out);
  w.p = &p;
  w.g = &p.g[in_place];
  needs |= p.needs[in_place];
  trig_once = trig_once && p.trig_once[in_place];
  return true;
}

using CosSinFn = void (*)(const AngleParams&, const TokenAngles&, float*, float*);

// The per-pair constants of on-the-fly cos/sin for one set of frequencies (padded with zeros to
// a multiple of kPairPad: θ = 0 there, computed but never read): in hf mode the float inverse
// frequencies (the position scale goes into the float position), in exact mode the 64-bit turns
// of inv_freq (·scale as m + m_lo, exactly as the reference forms it). turns_q64 cannot refuse
// here: simd_kernel_for admits |inv_freq·scale| ≤ 4, under one turn per position.
//
// Deriving the turns costs more than a decode step's rotation, so each thread keeps the last
// set it derived and reuses it while the frequencies, angle mode and scale are the same: the
// same frequency identity (ApplyJob::freq_id: a PreparedRope or a remembered apply_rope shape),
// else one memcmp of the frequencies.
//
// With them it keeps the cos/sin row of its last one-token call. A decode step applies one
// position in every layer, and so does a serving loop that rotates q and k in separate calls:
// every call after the first at that position reuses the row (the same values: the same
// constants, position, amplitude and sign give the same computation).
struct AngleConstants {
  int pairs = -1;             // -1: nothing derived yet
  std::uint64_t freq_id = 0;  // the job's frequency identity when derived (0: none)
  bool hf = false, scaled = false;
  double scale = 1.0;
  float inv[detail::kMaxPairs];                    // the frequencies they were derived from
  HWY_ALIGN float inv_hi[kMaxPairsPadded];         // hf mode
  HWY_ALIGN std::uint64_t turns[kMaxPairsPadded];  // exact mode

  // The last one-token row (valid while row_valid) and what it was computed for.
  bool row_valid = false;
  std::int64_t row_p = 0;  // exact mode: the position; hf mode: the bits of the float position
  float row_amplitude = 1.0f;
  bool row_negate = false;
  HWY_ALIGN float row_cos[kMaxPairsPadded];
  HWY_ALIGN float row_sin[kMaxPairsPadded];

  bool RowMatches(std::int64_t key, float amplitude, bool negate) const {
    return row_valid && row_p == key && row_amplitude == amplitude && row_negate == negate;
  }

  // Whether these constants are the job's; when the values had to be compared, the job's identity
  // (if any) is taken, so that its next call skips the compare.
  bool Matches(const detail::ApplyJob& job) {
    if (!(pairs == job.pairs && hf == (job.angles == AngleMode::kHf) &&
          scaled == job.has_position_scale && (!scaled || scale == job.position_scale_exact)))
      return false;
    if (job.freq_id != 0 && job.freq_id == freq_id) return true;
    if (std::memcmp(inv, job.inv_freq, static_cast<std::size_t>(pairs) * sizeof(float)) != 0)
      return false;
    if (job.freq_id != 0) freq_id = job.freq_id;
    return true;
  }

  // Out of line: the calls that match (nearly all) then do not pay for its frame.
  HWY_NOINLINE void Derive(const detail::ApplyJob& job, int padded) {
    pairs = -1;  // invalid until complete
    row_valid = false;
    freq_id = job.freq_id;
    hf = job.angles == AngleMode::kHf;
    scaled = job.has_position_scale;
    scale = job.position_scale_exact;
    std::memcpy(inv, job.inv_freq, static_cast<std::size_t>(job.pairs) * sizeof(float));
    if (hf) {
      for (int i = 0; i < padded; ++i) inv_hi[i] = i < job.pairs ? job.inv_freq[i] : 0.0f;
    } else {
      for (int i = 0; i < padded; ++i) {
        double m = 0.0, m_lo = 0.0;
        if (i < job.pairs) {
          if (job.has_position_scale) {
            detail::exact_multiplier(job.inv_freq[i], job.position_scale_exact, m, m_lo);
          } else {
            m = job.inv_freq[i];
          }
        }
        [[maybe_unused]] const bool in_range = detail::turns_q64(m, m_lo, turns[i]);
        HWY_DASSERT(in_range);
      }
    }
    pairs = job.pairs;
  }
};

// This thread's constants for the job's frequencies (derived now if they are not the last ones).
template <int kOdr = 0>  // a template so that every dtype TU may instantiate it (ODR)
HWY_NOINLINE AngleConstants& AngleConstantsFor(const detail::ApplyJob& job, int padded) {
  static thread_local AngleConstants constants;
  if (!constants.Matches(job)) constants.Derive(job, padded);
  return constants;
}

// ---- step 2: the cos/sin of one token -------------------------------------------------------
// What computing cos/sin on the fly needs, set up at the first token of a call that computes
// them (TokenCosSin::FlyState): a call served from a CosSinCache does not pay for it. (At
// namespace scope: Clang 14 cannot construct a nested class with member initialisers in a
// std::optional member of the class that encloses it.)
struct Fly {
  AngleParams ap;
  TokenAngles ta;
  CosSinFn cos_sin = nullptr;
  AngleConstants* constants = nullptr;  // this thread's
};

// Pair arrays are padded to a multiple of kPairPad (simd_api.h).
HWY_INLINE int PaddedPairs(int pairs) { return (pairs + kPairPad - 1) / kPairPad * kPairPad; }

// The on-the-fly state of a job (AngleParams from its frequencies, this thread's constants, the
// row function for 1-D positions or, with per_pair, position rows).
HWY_INLINE void InitFly(const detail::ApplyJob& job, int padded, bool per_pair, Fly& fly) {
  fly.constants = &AngleConstantsFor<>(job, padded);
  fly.ap.inv_hi = fly.constants->inv_hi;
  fly.ap.turns = fly.constants->turns;
  fly.ap.pairs = job.pairs;
  fly.ap.position_scale = job.position_scale;
  fly.ap.amplitude = static_cast<float>(job.amplitude);
  fly.ap.negate_sin = job.inverse;
  const bool hf = job.angles == AngleMode::kHf;
  fly.cos_sin = hf ? (per_pair ? &CosSinRowF32<true> : &CosSinRowF32<false>)
                   : (per_pair ? &CosSinRowTurns<true> : &CosSinRowTurns<false>);
}

// The 1-D position p of a token as the row function reads it: the float position in hf mode.
HWY_INLINE void SetFlyPosition(const detail::ApplyJob& job, bool hf, std::int64_t p, Fly& fly) {
  if (hf) {
    fly.ta.p_f = HfPosition(p, job.has_position_scale, job.position_scale);
  } else {
    fly.ta.p = p;
  }
}

// The cos/sin row of a one-token call at 1-D position p (fly.ta.p or p_f set by the caller):
// this thread's last row if it was for the same position and settings, else computed into that
// row (aligned: row kernels read it where it is).
HWY_INLINE void OneTokenRow(Fly& fly, bool hf, TokenTrig& tt) {
  AngleConstants& k = *fly.constants;
  std::int64_t key = fly.ta.p;
  if (hf) {
    std::int32_t bits;
    std::memcpy(&bits, &fly.ta.p_f, sizeof bits);
    key = bits;
  }
  if (!k.RowMatches(key, fly.ap.amplitude, fly.ap.negate_sin)) {
    fly.cos_sin(fly.ap, fly.ta, k.row_cos, k.row_sin);
    k.row_p = key;
    k.row_amplitude = fly.ap.amplitude;
    k.row_negate = fly.ap.negate_sin;
    k.row_valid = true;
  }
  tt.c = k.row_cos;
  tt.s = k.row_sin;
}

// A CosSinCache row (cr, sr) for tt: where it is when the row kernels read cos/sin once per token
// or the rows start on cache lines (no line-splitting loads), else copied to the aligned buffers
// (negated sin for the inverse rotation).
HWY_INLINE bool CacheRowReadInPlace(const float* cr, const float* sr, bool trig_once,
                                    bool inverse) {
  const bool lines_aligned =
      ((reinterpret_cast<std::uintptr_t>(cr) | reinterpret_cast<std::uintptr_t>(sr)) & 63) == 0;
  return (trig_once || lines_aligned) && !inverse;
}
HWY_INLINE void UseCacheRow(const float* cr, const float* sr, bool trig_once, bool inverse,
                            int pairs, float* cos_buf, float* sin_buf, TokenTrig& tt) {
  if (CacheRowReadInPlace(cr, sr, trig_once, inverse)) {
    tt.c = cr;
    tt.s = sr;
    return;
  }
  // Copied to the aligned buffers: cache rows are only 16-byte aligned, and every head would
  // otherwise load them with cache-line-splitting vector loads (measured: 10-30% slower than
  // on the fly at DRAM sizes; with the copy the table path is as fast).
  std::memcpy(cos_buf, cr, static_cast<std::size_t>(pairs) * sizeof(float));
  if (inverse) {
    for (int i = 0; i < pairs; ++i) sin_buf[i] = -sr[i];
  } else {
    std::memcpy(sin_buf, sr, static_cast<std::size_t>(pairs) * sizeof(float));
  }
  tt.c = cos_buf;
  tt.s = sin_buf;
}

// A CosSinCache row where every position the token needs is inside the table (the position
// scale is not in the cache, so scaled jobs always compute), else computed on the fly; the
// on-the-fly constants are prepared at the first token that needs them (a call served from a
// CosSinCache never does). Holds the per-call buffers; not copyable (AngleParams points into
// them).
class TokenCosSin {
 public:
  TokenCosSin(const detail::ApplyJob& job, bool trig_once)
      : job_(job),
        pairs_(job.pairs),
        padded_(PaddedPairs(job.pairs)),
        hf_(job.angles == AngleMode::kHf),
        scaled_(job.has_position_scale),
        trig_once_(trig_once),
        cache_(job.has_position_scale ? nullptr : job.cache),
        cache_n_(cache_ ? cache_->size() : 0),
        rows_apart_(cache_n_ > 0 && job.tokens > 1),
        sin_bytes_(rows_apart_ ? reinterpret_cast<std::intptr_t>(cache_->sin_row(0)) -
                                     reinterpret_cast<std::intptr_t>(cache_->cos_row(0))
                               : 0) {}
  TokenCosSin(const TokenCosSin&) = delete;
  TokenCosSin& operator=(const TokenCosSin&) = delete;

  // cos/sin of token t into tt.c / tt.s (valid until the next call).
  HWY_INLINE void Get(std::int64_t t, std::int64_t& seq_hint, TokenTrig& tt) {
    tt.c = cos_buf_;
    tt.s = sin_buf_;
    if (job_.pos_kind == Positions::Kind::kMRope) {
      PerPairRows(t, seq_hint);  // into cos_buf_ / sin_buf_
      return;
    }
    const std::int64_t p = detail::token_position(job_, t, 0, seq_hint);
    if (p >= 0 && p < cache_n_) {
      PrefetchRowAhead(t);
      CacheRow(p, tt);
    } else {
      Fly& fly = FlyState();
      SetFlyPosition(job_, hf_, p, fly);
      OnTheFly(fly, tt);
    }
  }

 private:
  // Consecutive positions (prefill, long context) read the table as a stream beside the tensors'
  // streams; the rows of a later token are requested early so that their DRAM latency overlaps
  // the rotation of the tokens before it.
  // Two tokens ahead. Measured against 1, 4 and 8 tokens, and against requesting 2, 4 or 8 rows
  // at a time (`ropekit bench`, long 32768 x 8 x 128 and prefill cases, 3-5 alternating rounds):
  // the lowest table cost over on the fly for f32 in place, within 1-3% of the best elsewhere.
  // Eight tokens (32 KiB of f32 input ahead) put 19 of 20 f32 in-place calls over the bench's
  // table allowance, two tokens none of 12.
  static constexpr std::int64_t kRowsAhead = 2;
  HWY_INLINE void PrefetchRowAhead(std::int64_t t) {
    if (job_.pos_kind != Positions::Kind::kOffset) return;
    const std::int64_t ahead = t + kRowsAhead;
    if (ahead >= job_.tokens) return;
    const std::int64_t p = job_.pos_start + (job_.pos_seq > 0 ? ahead % job_.pos_seq : ahead);
    if (p < 0 || p >= cache_n_) return;
    const float* c = cache_->cos_row(p);
    const char* cb = reinterpret_cast<const char*>(c);
    const char* sb = reinterpret_cast<const char*>(SinRow(c));
    const std::size_t bytes = static_cast<std::size_t>(pairs_) * sizeof(float);
    for (std::size_t off = 0; off < bytes; off += 64) hwy::Prefetch(cb + off);
    for (std::size_t off = 0; off < bytes; off += 64) hwy::Prefetch(sb + off);
  }

  // Every row's sin values lie at the same distance from its cos values (CosSinCache's
  // contract, ropekit/cos_sin_cache.h), found once per range of several tokens: one out-of-line
  // row lookup per token instead of two, and an owned table's [cos | sin] row requested in order.
  // Measured side by side (f32 32768 x 8 x 128 in place, 1 thread, three runs of 31 rounds):
  // the table call went from 1.087-1.095x its on-the-fly twin to 1.053-1.065x. A one-token
  // range looks both up (finding the distance would cost it a lookup more).
  HWY_INLINE const float* SinRow(const float* cos_row) const {
    return reinterpret_cast<const float*>(reinterpret_cast<std::intptr_t>(cos_row) + sin_bytes_);
  }

  HWY_INLINE void CacheRow(std::int64_t p, TokenTrig& tt) {
    const float* cr = cache_->cos_row(p);
    const float* sr = rows_apart_ ? SinRow(cr) : cache_->sin_row(p);
    UseCacheRow(cr, sr, trig_once_, job_.inverse, pairs_, cos_buf_, sin_buf_, tt);
  }

  // Position rows (M-RoPE, XD-RoPE, 2-D vision): pair i takes its position from row
  // pair_axis[i] of the job's pos_rows rows (1 to Positions::kMaxRows). Into cos_buf_ / sin_buf_
  // (never the one-token row of OnTheFly, which is for one position).
  HWY_INLINE void PerPairRows(std::int64_t t, std::int64_t& seq_hint) {
    const int rows = job_.pos_rows;
    std::int64_t pos[Positions::kMaxRows];
    for (int axis = 0; axis < rows; ++axis)
      pos[axis] = detail::token_position(job_, t, axis, seq_hint);
    bool in_cache = cache_n_ > 0;
    for (int axis = 0; axis < rows; ++axis)
      in_cache = in_cache && pos[axis] >= 0 && pos[axis] < cache_n_;
    if (in_cache) {
      const float* crow[Positions::kMaxRows];
      const float* srow[Positions::kMaxRows];
      for (int axis = 0; axis < rows; ++axis) {
        crow[axis] = cache_->cos_row(pos[axis]);
        srow[axis] = cache_->sin_row(pos[axis]);
      }
      for (int i = 0; i < pairs_; ++i) {
        const int axis = job_.pair_axis[i];
        cos_buf_[i] = crow[axis][i];
        sin_buf_[i] = job_.inverse ? -srow[axis][i] : srow[axis][i];
      }
      return;
    }
    Fly& fly = FlyState();
    if (hf_) {
      float pf[Positions::kMaxRows];
      for (int axis = 0; axis < rows; ++axis)
        pf[axis] = HfPosition(pos[axis], scaled_, job_.position_scale);
      for (int i = 0; i < pairs_; ++i) pp_f_[i] = pf[job_.pair_axis[i]];
    } else {
      for (int i = 0; i < pairs_; ++i) pp_[i] = pos[job_.pair_axis[i]];
    }
    fly.cos_sin(fly.ap, fly.ta, cos_buf_, sin_buf_);
  }

  HWY_INLINE Fly& FlyState() {
    if (HWY_LIKELY(fly_.has_value())) return *fly_;
    Fly& fly = fly_.emplace();
    const bool per_pair = job_.pos_kind == Positions::Kind::kMRope;
    InitFly(job_, padded_, per_pair, fly);
    if (per_pair) {
      for (int i = pairs_; i < padded_; ++i) pp_f_[i] = 0, pp_[i] = 0;
      fly.ta.pp = pp_;
      fly.ta.pp_f = pp_f_;
    }
    return fly;
  }

  // 1-D positions (fly.ta.p or p_f set).
  HWY_INLINE void OnTheFly(Fly& fly, TokenTrig& tt) {
    if (job_.tokens == 1) {
      OneTokenRow(fly, hf_, tt);
      return;
    }
    fly.cos_sin(fly.ap, fly.ta, cos_buf_, sin_buf_);
  }

  const detail::ApplyJob& job_;
  const int pairs_, padded_;
  const bool hf_, scaled_, trig_once_;
  const CosSinCache* const cache_;
  const std::int64_t cache_n_;
  const bool rows_apart_;          // sin_bytes_ is known (several tokens from a table)
  const std::intptr_t sin_bytes_;  // sin_row(p) − cos_row(p) in bytes, the same for every p
  HWY_ALIGN float cos_buf_[kMaxPairsPadded];
  HWY_ALIGN float sin_buf_[kMaxPairsPadded];
  HWY_ALIGN float pp_f_[kMaxPairsPadded];       // M-RoPE per-pair positions, hf mode
  HWY_ALIGN std::int64_t pp_[kMaxPairsPadded];  // M-RoPE per-pair positions, exact mode
  std::optional<Fly> fly_;
};

// ---- the driver ---------------------------------------------------------------------------------

// Binds the job's tensors (step 1 done: pw); returns how many have data.
HWY_INLINE int BindWork(const detail::ApplyJob& job, const PreparedWork& pw, TensorCall* work,
                        unsigned& needs, bool& trig_once) {
  int n_work = 0;
  if (pw.tensors > 0 && BindTensor(job, pw.tensor[0], work[n_work], needs, trig_once)) ++n_work;
  if (pw.tensors > 1 && BindTensor(job, pw.tensor[1], work[n_work], needs, trig_once)) ++n_work;
  return n_work;
}

// Step 4 for token t: every head of each bound tensor.
HWY_INLINE void RotateToken(const TensorCall* work, int n_work, std::int64_t t,
                            const TokenTrig& tt) {
  for (int w = 0; w < n_work; ++w) {
    const TensorCall& tc = work[w];
    const PreparedTensor& p = *tc.p;
    tc.fn(tc.in + detail::token_offset(t, p.seq, p.in_st, p.in_sb),
          tc.out + detail::token_offset(t, p.seq, p.out_st, p.out_sb), tt, *tc.g);
  }
}

// Non-temporal stores are weakly ordered: make them visible before the range is reported done
// (the pool's release of the job, or the return to the caller).
HWY_INLINE void FenceStreams(const TensorCall* work, int n_work) {
  if (work[0].streams || (n_work > 1 && work[1].streams)) hwy::FlushStream();
}

// Steps 3 and 4 of one token whose row kernels want cos/sin rearranged (out of line: the buffers
// would otherwise enlarge the frame of every one-token call). Templates so that every dtype TU
// may instantiate them (ODR).
template <int kOdr = 0>
HWY_NOINLINE void RotateTokenRearranged(const TensorCall* work, int n_work, std::int64_t t,
                                        TokenTrig tt, unsigned needs, int pairs) {
  HWY_ALIGN float c_eo[kMaxPairsPadded];
  HWY_ALIGN float s_eo[kMaxPairsPadded];
  HWY_ALIGN float c_dup[2 * kMaxPairsPadded];
  HWY_ALIGN float s_dup[2 * kMaxPairsPadded];
  PrepareTrig(needs, pairs, tt, c_eo, s_eo, c_dup, s_dup);
  RotateToken(work, n_work, t, tt);
}

HWY_INLINE void FinishToken(const TensorCall* work, int n_work, std::int64_t t, const TokenTrig& tt,
                            unsigned needs, int pairs) {
  if (needs != 0) {
    RotateTokenRearranged<>(work, n_work, t, tt, needs, pairs);
  } else {
    RotateToken(work, n_work, t, tt);
  }
}

// Steps 3 and 4 of one token from a CosSinCache row that is copied first (UseCacheRow; out of line
// for the same reason).
template <int kOdr = 0>
HWY_NOINLINE void RotateTokenFromRowCopy(const detail::ApplyJob& job, const TensorCall* work,
                                         int n_work, std::int64_t t, const float* cr,
                                         const float* sr, unsigned needs) {
  HWY_ALIGN float cos_buf[kMaxPairsPadded];
  HWY_ALIGN float sin_buf[kMaxPairsPadded];
  TokenTrig tt;
  UseCacheRow(cr, sr, /*trig_once=*/false, job.inverse, job.pairs, cos_buf, sin_buf, tt);
  FinishToken(work, n_work, t, tt, needs, job.pairs);
}

// A range of one token with 1-D positions: a decode step, where the fixed cost of a call is most
// of its time. The steps of RopeRangeTokens for that token without its per-range state
// (TokenCosSin, the token loop): its position, a CosSinCache row or this thread's one-token row
// (TokenCosSin::Get gives the same), then the heads.
template <typename TIn>
HWY_INLINE void RopeOneToken(const detail::ApplyJob& job, const PreparedWork& pw, std::int64_t t) {
  TensorCall work[2];
  unsigned needs = 0;
  bool trig_once = true;
  const int n_work = BindWork(job, pw, work, needs, trig_once);
  if (n_work == 0) return;
  std::int64_t seq_hint =
      job.pos_kind == Positions::Kind::kPerSequence ? detail::seq_for_token(job, t) : 0;
  const std::int64_t p = detail::token_position(job, t, 0, seq_hint);
  TokenTrig tt;
  const CosSinCache* cache = job.has_position_scale ? nullptr : job.cache;
  if (cache != nullptr && p >= 0 && p < cache->size()) {
    const float* cr = cache->cos_row(p);
    const float* sr =
        pw.sin_offset_known
            ? reinterpret_cast<const float*>(reinterpret_cast<std::intptr_t>(cr) + pw.sin_offset)
            : cache->sin_row(p);
    if (!CacheRowReadInPlace(cr, sr, trig_once, job.inverse)) {
      RotateTokenFromRowCopy<>(job, work, n_work, t, cr, sr, needs);
      FenceStreams(work, n_work);
      return;
    }
    tt.c = cr;
    tt.s = sr;
  } else {
    Fly fly;
    InitFly(job, PaddedPairs(job.pairs), /*per_pair=*/false, fly);
    const bool hf = job.angles == AngleMode::kHf;
    SetFlyPosition(job, hf, p, fly);
    OneTokenRow(fly, hf, tt);
  }
  FinishToken(work, n_work, t, tt, needs, job.pairs);
  FenceStreams(work, n_work);
}

// The range kernel for input dtype TIn (q and k share it; see simd_dispatch.cc for mixed inputs),
// with step 1 already taken for the job's shape (PrepareWork): any range.
template <typename TIn>
HWY_NOINLINE void RopeRangeTokens(const detail::ApplyJob& job, const PreparedWork& pw,
                                  std::int64_t t_begin, std::int64_t t_end) {
  TensorCall work[2];
  unsigned needs = 0;
  bool trig_once = true;  // every row kernel of the job reads cos/sin once per token
  const int n_work = BindWork(job, pw, work, needs, trig_once);
  if (n_work == 0 || t_begin >= t_end) return;

  TokenCosSin cos_sin(job, trig_once);
  HWY_ALIGN float c_eo[kMaxPairsPadded];
  HWY_ALIGN float s_eo[kMaxPairsPadded];
  HWY_ALIGN float c_dup[2 * kMaxPairsPadded];
  HWY_ALIGN float s_dup[2 * kMaxPairsPadded];
  std::int64_t seq_hint =
      job.pos_kind == Positions::Kind::kPerSequence ? detail::seq_for_token(job, t_begin) : 0;
  // A range larger than the caches streams from DRAM, and the hardware prefetchers follow the
  // tensors, the output and the cos/sin table at once. The tensors' rows are not requested in
  // software: requesting the next token's input one token early (4 KiB tokens, f32 8 x 128) once
  // measured 10-25% faster on this VM, but when its memory ran at half that bandwidth it measured
  // 10-60% slower than without, and up to 1.6x the time of the bench's plain loop, which has no
  // prefetch (docs/benchmarks.md, "Prefetching the next token").
  for (std::int64_t t = t_begin; t < t_end; ++t) {
    TokenTrig tt;
    cos_sin.Get(t, seq_hint, tt);                                                 // step 2
    if (needs != 0) PrepareTrig(needs, job.pairs, tt, c_eo, s_eo, c_dup, s_dup);  // step 3
    RotateToken(work, n_work, t, tt);                                             // step 4
  }
  FenceStreams(work, n_work);
}

// Either of the two above.
template <typename TIn>
HWY_INLINE void RopeRangePrepared(const detail::ApplyJob& job, const PreparedWork& pw,
                                  std::int64_t t_begin, std::int64_t t_end) {
  if (t_end - t_begin == 1 && job.pos_kind != Positions::Kind::kMRope) {
    RopeOneToken<TIn>(job, pw, t_begin);
  } else {
    RopeRangeTokens<TIn>(job, pw, t_begin, t_end);
  }
}

// The range kernel of a job not prepared before: step 1 for this job's pointers, then the rest.
template <typename TIn>
HWY_INLINE void RopeRange(const detail::ApplyJob& job, std::int64_t t_begin, std::int64_t t_end) {
  PreparedWork pw;
  PrepareWork<TIn>(job, /*all_forms=*/false, pw);
  RopeRangePrepared<TIn>(job, pw, t_begin, t_end);
}

// Prepares the job's shape: its record in prepared.backend, and `kernel` (this target's
// RopeRangePrepared for TIn) to run it.
template <typename TIn>
HWY_INLINE void PrepareShape(const detail::ApplyJob& job, detail::PreparedRange& prepared,
                             detail::PreparedRangeKernel kernel) {
  PreparedWork& pw = *new (prepared.backend) PreparedWork();
  PrepareWork<TIn>(job, /*all_forms=*/true, pw);
  if (job.cache != nullptr && job.cache->size() > 0) {
    pw.sin_offset_known = true;
    pw.sin_offset = reinterpret_cast<std::intptr_t>(job.cache->sin_row(0)) -
                    reinterpret_cast<std::intptr_t>(job.cache->cos_row(0));
  }
  prepared.kernel = kernel;
}

// A prepared shape's record in PreparedRange::backend (detail::PreparedRange: plain bytes that
// the preparing call filled with a PreparedWork, trivially copyable, so copies of it are one too).
HWY_INLINE const PreparedWork& WorkOf(const detail::PreparedRange& prepared) {
  return *std::launder(reinterpret_cast<const PreparedWork*>(prepared.backend));
}

}  // namespace HWY_NAMESPACE
}  // namespace simd
}  // namespace ropekit
HWY_AFTER_NAMESPACE();

#endif  // toggle guard