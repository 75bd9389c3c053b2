// Fuzz target: bytes → an apply_rope call (plan, shapes, strides, dtypes, positions, options) run
// on the reference backend and on every compiled SIMD target this CPU supports.
//
// Properties (docs/numerics.md, docs/errors.md):
//   * A call built valid is accepted by every backend; a call with one deliberate defect
//     ("mutation": overlap, bad position, wrong count, bad plan, ...) throws ArgumentError on every
//     backend, with the same message, and writes nothing.
//   * Nothing outside the output views is written: every byte of the arena that is not an
//     output element (guards around and gaps between elements) keeps its value.
//   * Backends agree: for each rotated output y of a pair (x_a, x_b), with A the amplitude
//     folded into cos/sin,
//         |y_simd − y_ref| <= ulp_out(y_ref) [16-bit outputs only] + 8·ulp_f32(A·max(|x_a|, |x_b|))
//     and pass-through features are identical (NaN: both NaN).
//   * The reference agrees with an independent long-double oracle within the same bound
//     (single rounding; the transformers rounding emulation is compared between backends only).
// Non-finite inputs (the "special values" mode) are only checked for crashes, guards and
// pass-through. A finding aborts (fuzz/fuzz_common.h).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "ropekit/ropekit.h"

namespace ropekit::fuzz {
namespace {

constexpr std::int64_t kMax = kMaxAbsPosition;

// The arena's memory starts on a 64-byte line, so that a view's alignment is its offset's
// (regions start on 8-byte steps): one output in eight starts on a line, as non-temporal stores
// need (OutputStores::kNonTemporal).
template <class T>
struct LineAligned {
  using value_type = T;
  LineAligned() = default;
  template <class U>
  explicit LineAligned(const LineAligned<U>&) {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{64}));
  }
  void deallocate(T* p, std::size_t) { ::operator delete (p, std::align_val_t{64}); }
  template <class U>
  bool operator==(const LineAligned<U>&) const {
    return true;
  }
};
using Arena = std::vector<std::uint8_t, LineAligned<std::uint8_t>>;

// ---- helpers -----------------------------------------------------------------------------------

std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double ulp_f32(double v) {
  const float f = static_cast<float>(std::fabs(v));
  if (!(f < std::numeric_limits<float>::max())) return std::ldexp(1.0, 104);  // 2^(127−23)
  const float up = std::nextafter(f, std::numeric_limits<float>::infinity());
  return static_cast<double>(up) - static_cast<double>(f) > 0
             ? static_cast<double>(up) - static_cast<double>(f)
             : std::ldexp(1.0, -149);
}
double ulp_out(DType t, double v) {
  const double a = std::fabs(v);
  switch (t) {
    case DType::kF32:
      return ulp_f32(a);
    case DType::kBF16: {
      if (a < std::ldexp(1.0, -126)) return std::ldexp(1.0, -133);
      int e = 0;
      (void)std::frexp(a, &e);  // a in [2^(e−1), 2^e)
      return std::ldexp(1.0, std::min(e - 1, 127) - 7);
    }
    case DType::kF16: {
      if (a < std::ldexp(1.0, -14)) return std::ldexp(1.0, -24);
      int e = 0;
      (void)std::frexp(a, &e);
      return std::ldexp(1.0, std::min(e - 1, 15) - 10);
    }
  }
  return 0;
}
double max_finite(DType t) {
  switch (t) {
    case DType::kF32:
      return std::numeric_limits<float>::max();
    case DType::kF16:
      return 65504.0;
    case DType::kBF16:
      return 3.3895313892515355e38;
  }
  return 0;
}

std::string dt(DType t) { return std::string(dtype_name(t)); }
std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// ---- the call under test
// -------------------------------------------------------------------------

struct View {
  DType in_t = DType::kF32, out_t = DType::kF32;
  std::int64_t heads = 0;
  std::int64_t st = 0, sh = 0, sd = 1;     // input strides (elements of in_t)
  std::int64_t ost = 0, osh = 0, osd = 1;  // output strides (elements of out_t)
  std::int64_t in_off = -1,
               out_off = -1;  // byte offsets of element (0,0,0) in the arena; -1: nullptr
  bool in_place = false;
};

struct Call {
  FrequencyPlan plan;
  std::int64_t tokens = 0, head_dim = 0;
  View q, k;
  bool in_place_api = false;
  int pos_kind =
      0;  // 0 offset, 1 per_sequence, 2 per_token i32, 3 per_token i64, 4 mrope i32, 5 mrope i64
  std::int64_t pos_start = 0;
  std::vector<std::int64_t> indptr, offsets, ids64;
  std::vector<std::int32_t> ids32;
  std::int64_t mrope_tokens = 0;
  ApplyOptions options;
  std::unique_ptr<CosSinCache> cache;
  bool special_values = false;
  int mutation = 0;       // 0: a valid call
  bool mutate_q = false;  // which tensor a view mutation acts on
  std::string mutation_name;
  Arena arena;  // inputs written, outputs and gaps hold guard bytes

  Positions positions() const {
    switch (pos_kind) {
      case 0:
        return Positions::offset(pos_start);
      case 1:
        return Positions::per_sequence(indptr, offsets);
      case 2:
        return Positions::per_token(std::span<const std::int32_t>(ids32));
      case 3:
        return Positions::per_token(std::span<const std::int64_t>(ids64));
      case 4:
        return Positions::mrope(std::span<const std::int32_t>(ids32), mrope_tokens);
      default:
        return Positions::mrope(std::span<const std::int64_t>(ids64), mrope_tokens);
    }
  }
  // Position of token t on row `axis` (the call's positions, known valid).
  std::int64_t position(std::int64_t t, int axis) const {
    switch (pos_kind) {
      case 0:
        return pos_start + t;
      case 1: {
        std::size_t s = 0;
        while (s + 1 < indptr.size() && indptr[s + 1] <= t) ++s;
        return offsets[s] + (t - indptr[s]);
      }
      case 2:
        return ids32[static_cast<std::size_t>(t)];
      case 3:
        return ids64[static_cast<std::size_t>(t)];
      case 4:
        return ids32[static_cast<std::size_t>(axis * tokens + t)];
      default:
        return ids64[static_cast<std::size_t>(axis * tokens + t)];
    }
  }
  std::string describe() const {
    return "T=" + std::to_string(tokens) + " D=" + std::to_string(head_dim) +
           " rot=" + std::to_string(plan.rotary_dim) + " q[" + std::to_string(q.heads) + " " +
           dt(q.in_t) + "->" + dt(q.out_t) + (q.in_place ? " in-place" : "") +
           " st=" + std::to_string(q.st) + "," + std::to_string(q.sh) + "," + std::to_string(q.sd) +
           "] k[" + std::to_string(k.heads) + " " + dt(k.in_t) + "->" + dt(k.out_t) +
           (k.in_place ? " in-place" : "") + " st=" + std::to_string(k.st) + "," +
           std::to_string(k.sh) + "," + std::to_string(k.sd) +
           "] pos_kind=" + std::to_string(pos_kind) +
           " angles=" + std::to_string(static_cast<int>(options.angles)) +
           " rounding=" + std::to_string(static_cast<int>(options.rounding)) +
           " inverse=" + std::to_string(options.direction == Direction::kInverse) +
           " layout=" + std::to_string(static_cast<int>(options.layout.value_or(plan.layout))) +
           " A=" + std::to_string(plan.attention_factor) +
           " fold=" + std::to_string(options.fold_attention_factor) +
           " scale=" + std::to_string(options.position_scale) +
           " cache=" + std::to_string(cache != nullptr) +
           " stores=" + std::to_string(static_cast<int>(options.output_stores)) +
           (mutation ? " mutation=" + mutation_name : "");
  }
};

// ---- plans
// ----------------------------------------------------------------------------------------

// head_dim and rotary_dim: one case in four takes a real model's shape (head_dim 64/128/256,
// all or half of it rotated), which selects the whole-token kernels of fixed row widths;
// the others are random even sizes up to 2·max_half (one in 16 larger).
void pick_dims(ByteReader& r, std::int64_t max_half, int& head_dim, int& rotary_dim) {
  if (r.pick(4) == 0) {
    static const int kModelDims[] = {64, 128, 256};
    head_dim = kModelDims[r.pick(3)];
    rotary_dim = r.pick(3) == 0 ? head_dim / 2 : head_dim;
    return;
  }
  head_dim = static_cast<int>(r.pick(16) == 0 ? 2 * r.range(129, 550) : 2 * r.range(1, max_half));
  rotary_dim = static_cast<int>(2 * r.range(1, head_dim / 2));
}

std::optional<FrequencyPlan> plan_from_config(ByteReader& r) {
  RopeConfig c;
  pick_dims(r, 128, c.head_dim, c.rotary_dim);
  static const double kThetas[] = {10000.0, 500000.0, 1e6, 5e6, 160.0};
  c.rope_theta = r.pick(6) == 5 ? r.unit_range(1.5, 1e7) : kThetas[r.pick(5)];
  c.max_position_embeddings = r.range(256, 131072);
  c.layout = r.flag() ? PairLayout::kInterleaved : PairLayout::kHalf;
  c.hf_rounds_once = r.flag();
  const std::int64_t orig = r.range(256, 65536);
  switch (r.pick(7)) {
    case 0:
      break;
    case 1:
      c.scaling = LinearScaling{r.unit_range(0.25, 64)};
      break;
    case 2:
      c.scaling = DynamicNtkScaling{r.unit_range(0.5, 64), std::nullopt};
      break;
    case 3: {
      YarnScaling y;
      y.factor = r.unit_range(1, 64);
      y.original_max_position_embeddings = orig;
      if (r.flag()) y.beta_fast = r.unit_range(2, 64);
      if (r.flag()) y.beta_slow = r.unit_range(0.25, 4);
      if (r.flag()) y.mscale = r.unit_range(0.5, 1.5);
      if (r.flag()) y.mscale_all_dim = r.unit_range(0.5, 1.5);
      if (r.flag()) y.attention_factor = r.unit_range(0.5, 2);
      y.truncate = r.flag();
      c.scaling = y;
      break;
    }
    case 4: {
      LongRopeScaling l;
      for (int i = 0; i < c.rotary_dim / 2; ++i) {
        l.short_factor.push_back(r.unit_range(0.5, 4));
        l.long_factor.push_back(r.unit_range(1, 64));
      }
      l.original_max_position_embeddings = orig;
      if (r.flag()) l.factor = r.unit_range(1, 64);
      if (r.flag()) l.attention_factor = r.unit_range(0.5, 2);
      c.scaling = l;
      break;
    }
    case 5: {
      Llama3Scaling l;
      l.factor = r.unit_range(1, 32);
      l.low_freq_factor = r.unit_range(0.5, 2);
      l.high_freq_factor = l.low_freq_factor + r.unit_range(0, 4);
      l.original_max_position_embeddings = orig;
      c.scaling = l;
      break;
    }
    default: {
      c.scaling = ProportionalScaling{r.unit_range(0.5, 8)};
      c.partial_rotary_factor = static_cast<double>(c.rotary_dim) / c.head_dim;
      c.rotary_dim = c.head_dim;
      break;
    }
  }
  if (r.pick(4) == 0) {
    MRopeSpec m;
    const int pairs = c.rotary_dim / 2;
    m.section[0] = static_cast<int>(r.range(0, pairs));
    m.section[1] = static_cast<int>(r.range(0, pairs - m.section[0]));
    m.section[2] = pairs - m.section[0] - m.section[1];
    m.assignment = static_cast<MRopeAssignment>(r.pick(3));
    c.mrope = m;
  }
  std::optional<std::int64_t> seq;
  if (r.flag()) seq = r.range(1, 1 << 20);
  const SeqLenPolicy policy = r.flag() ? SeqLenPolicy::kMlxLm : SeqLenPolicy::kTransformers;
  const FrequencyArithmetic ar =
      r.flag() ? FrequencyArithmetic::kTransformers : FrequencyArithmetic::kExact;
  try {
    return build_frequency_plan(c, seq, policy, ar);
  } catch (const ConfigError&) {
    return std::nullopt;  // e.g. dynamic NTK with rotary_dim 2: not this target's subject
  }
}

FrequencyPlan synthetic_plan(ByteReader& r) {
  FrequencyPlan p;
  p.info.rope_type = "synthetic";
  pick_dims(r, 64, p.head_dim, p.rotary_dim);
  p.layout = r.flag() ? PairLayout::kInterleaved : PairLayout::kHalf;
  const int dist = r.pick(6);
  const double theta = r.unit_range(2, 1e6);
  for (int i = 0; i < p.rotary_dim / 2; ++i) {
    double f = 0;
    switch (dist == 5 ? r.pick(5) : dist) {
      case 0:
        f = std::pow(theta, -2.0 * i / p.rotary_dim);
        break;
      case 1:
        f = r.unit_range(0, 1);
        break;
      case 2:
        f = r.unit_range(0, 4);
        break;  // the SIMD kernels' range
      case 3:
        f = r.unit_range(4, 1e4);
        break;  // beyond: SIMD declines, the reference runs
      default:
        f = r.flag() ? 0.0 : -r.unit_range(0, 2);
        break;  // zero, negative
    }
    p.inv_freq.push_back(static_cast<float>(f));
  }
  p.attention_factor = std::exp2(r.unit_range(-4, 4));
  if (r.pick(4) == 0) {
    p.info.mrope = MRopeSpec{};
    for (int i = 0; i < p.rotary_dim / 2; ++i)
      p.pair_axis.push_back(static_cast<std::uint8_t>(r.pick(3)));
  }
  p.hf_rounds_once = r.flag();
  return p;
}

// ---- layouts
// ----------------------------------------------------------------------------------------

// Strides for [T, H, D] of one kind; `lo`/`hi`: element extent relative to element (0,0,0).
void strides_for(int kind, std::int64_t T, std::int64_t H, std::int64_t D, ByteReader& r,
                 std::int64_t& st, std::int64_t& sh, std::int64_t& sd) {
  switch (kind) {
    case 0:
      st = H * D;
      sh = D;
      sd = 1;
      break;  // contiguous
    case 1:
      st = D;
      sh = T * D;
      sd = 1;
      break;   // head-major
    case 2: {  // padded rows
      const std::int64_t p1 = r.range(1, 5), p2 = r.range(0, 7);
      sd = 1;
      sh = D + p1;
      st = H * sh + p2;
      break;
    }
    case 3: {  // strided features
      sd = r.range(2, 3);
      sh = D * sd + r.range(0, 3);
      st = H * sh + r.range(0, 5);
      break;
    }
    case 4:
      st = -H * D;
      sh = D;
      sd = 1;
      break;  // tokens reversed
    case 5:
      st = H * D;
      sh = D;
      sd = -1;
      break;  // features reversed
    default:
      st = H * D;
      sh = -D;
      sd = 1;
      break;  // heads reversed
  }
}

void extent(std::int64_t T, std::int64_t H, std::int64_t D, std::int64_t st, std::int64_t sh,
            std::int64_t sd, std::int64_t& lo, std::int64_t& hi) {
  lo = hi = 0;
  for (const auto& [n, s] : {std::pair{T, st}, std::pair{H, sh}, std::pair{D, sd}}) {
    if (n <= 0) continue;
    if (s < 0)
      lo += (n - 1) * s;
    else
      hi += (n - 1) * s;
  }
}

constexpr std::int64_t kGuard = 64;  // bytes between regions

// Appends a region for a view to the arena layout; returns the byte offset of element (0,0,0).
std::int64_t place(std::int64_t& cursor, std::int64_t T, std::int64_t H, std::int64_t D, DType t,
                   std::int64_t st, std::int64_t sh, std::int64_t sd) {
  std::int64_t lo = 0, hi = 0;
  extent(T, H, D, st, sh, sd, lo, hi);
  const std::int64_t es = dtype_size(t);
  const std::int64_t origin = cursor + kGuard + (-lo) * es;
  cursor = origin + (hi + 1) * es;
  cursor = (cursor + 7) / 8 * 8;
  return origin;
}

// ---- element access
// -----------------------------------------------------------------------------------

std::int64_t byte_of(std::int64_t origin, DType t, std::int64_t st, std::int64_t sh,
                     std::int64_t sd, std::int64_t tt, std::int64_t h, std::int64_t d) {
  return origin + (tt * st + h * sh + d * sd) * dtype_size(t);
}
double load(const Arena& a, std::int64_t off, DType t) { return load_as_double(t, a.data() + off); }
bool same_bits_or_both_nan(const Arena& a, const Arena& b, std::int64_t off, DType t) {
  if (std::memcmp(a.data() + off, b.data() + off, static_cast<std::size_t>(dtype_size(t))) == 0)
    return true;
  return std::isnan(load(a, off, t)) && std::isnan(load(b, off, t));
}

// ---- building a call
// ---------------------------------------------------------------------------------

float random_value(std::uint64_t& s, bool special, double magnitude) {
  const std::uint64_t z = splitmix(s);
  if (special) {
    const auto bits = static_cast<std::uint32_t>(z);
    if ((z >> 32) % 4 == 0) return std::bit_cast<float>(bits);  // anything, NaN and inf included
  }
  if ((z >> 40) % 29 == 0) return 0.0f;
  const double m = 1.0 + static_cast<double>(z & 0xFFFFFF) / 16777216.0;
  const int e = static_cast<int>((z >> 24) % 21) - 10;  // 2^-10 .. 2^10
  const double v = std::ldexp(m, e) * magnitude * (((z >> 63) & 1) ? -1 : 1);
  return static_cast<float>(v);
}

void write_input(Call& c, const View& v, std::uint64_t& seed, double magnitude) {
  if (v.in_off < 0) return;
  for (std::int64_t t = 0; t < c.tokens; ++t)
    for (std::int64_t h = 0; h < v.heads; ++h)
      for (std::int64_t d = 0; d < c.head_dim; ++d) {
        const std::int64_t off = byte_of(v.in_off, v.in_t, v.st, v.sh, v.sd, t, h, d);
        store_from_double(v.in_t, c.arena.data() + off,
                          random_value(seed, c.special_values, magnitude));
      }
}

std::int64_t random_position(ByteReader& r, std::uint64_t& s) {
  const std::uint64_t z = splitmix(s);
  switch (r.pick(4)) {
    case 0:
      return static_cast<std::int64_t>(z % 4096);
    case 1:
      return static_cast<std::int64_t>(z % (2 * static_cast<std::uint64_t>(kMax) + 1)) - kMax;
    case 2:
      return kMax - static_cast<std::int64_t>(z % 64);
    default:
      return -static_cast<std::int64_t>(z % 5000);
  }
}

// The mutations: each makes the call invalid (ArgumentError expected).
enum Mutation {
  kNone = 0,
  kPosOutOfRange,
  kPosCount,
  kIndptr,
  kMropeRowsNoMrope,
  kHeadDim,
  kKTokens,
  kNullData,
  kMisaligned,
  kOutOverlapsIn,
  kOutputsOverlap,
  kSelfOverlap,
  kNegativeSize,
  kInPlaceDtype,
  kPlanNaN,
  kPlanAttention,
  kPlanOddHead,
  kPlanInvSize,
  kPositionScale,
  kMaxThreads,
  kCacheMismatch,
  kBadDtype,
  kDrawn,  // the mutations above are drawn with the options; the ones below from the last byte
  kBadOutputStores = kDrawn,
  kCount
};
const char* mutation_name(int m) {
  static const char* const names[] = {"none",
                                      "pos-out-of-range",
                                      "pos-count",
                                      "indptr",
                                      "mrope-rows-no-mrope",
                                      "head-dim",
                                      "k-tokens",
                                      "null-data",
                                      "misaligned",
                                      "out-overlaps-in",
                                      "outputs-overlap",
                                      "self-overlap",
                                      "negative-size",
                                      "in-place-dtype",
                                      "plan-nan",
                                      "plan-attention",
                                      "plan-odd-head",
                                      "plan-inv-size",
                                      "position-scale",
                                      "max-threads",
                                      "cache-mismatch",
                                      "bad-dtype",
                                      "bad-output-stores"};
  return m >= 0 && m < kCount ? names[m] : "?";
}

bool build(ByteReader& r, Call& c) {
  // Plan.
  if (r.flag()) {
    auto p = plan_from_config(r);
    if (!p) return false;
    c.plan = std::move(*p);
  } else {
    c.plan = synthetic_plan(r);
  }
  c.head_dim = c.plan.head_dim;
  const std::int64_t D = c.head_dim;
  const bool big = r.pick(48) == 0 && D <= 256;
  c.tokens = big ? r.range(256, 600) : r.range(0, 24);
  c.q.heads = r.range(0, 4);
  c.k.heads = r.range(0, 4);
  if (big) c.q.heads = std::max<std::int64_t>(c.q.heads, 2);
  while (!big && c.tokens * (c.q.heads + c.k.heads) * D > 65536) c.tokens /= 2;
  const std::int64_t T = c.tokens;

  // Dtypes, in place or not, the API.
  const DType types[] = {DType::kF32, DType::kF16, DType::kBF16};
  c.in_place_api = r.pick(3) == 0;
  for (View* v : {&c.q, &c.k}) {
    v->in_t = types[r.pick(3)];
    v->in_place = c.in_place_api || r.pick(3) == 0;
    v->out_t = v->in_place ? v->in_t : types[r.pick(3)];
  }

  // Layout: separate regions, or q and k fused in one buffer with equal row strides.
  const bool fused = T > 0 && r.pick(4) == 0 && c.q.in_t == c.k.in_t;
  std::int64_t cursor = 0;
  if (fused) {
    const std::int64_t gap = r.range(0, 3), tail = r.range(0, 9);
    const std::int64_t row = (c.q.heads + c.k.heads) * D + gap + tail;
    c.q.st = c.k.st = row;
    c.q.sh = c.k.sh = D;
    c.q.sd = c.k.sd = 1;
    const std::int64_t origin = cursor + kGuard;
    c.q.in_off = origin;
    c.k.in_off = origin + (c.q.heads * D + gap) * dtype_size(c.q.in_t);
    cursor = origin + T * row * dtype_size(c.q.in_t);
    cursor = (cursor + 7) / 8 * 8;
  }
  for (View* v : {&c.q, &c.k}) {
    if (!fused) {
      int kind = r.pick(8);
      if (kind == 7) {  // broadcast input heads (stride 0): inputs only
        if (v->in_place)
          kind = 0;
        else {
          v->st = D;
          v->sh = 0;
          v->sd = 1;
        }
      }
      if (kind != 7) strides_for(kind, T, v->heads, D, r, v->st, v->sh, v->sd);
      v->in_off = (v->heads == 0 && r.flag())
                      ? -1
                      : place(cursor, T, v->heads, D, v->in_t, v->st, v->sh, v->sd);
    }
    if (v->in_place) {
      v->ost = v->st;
      v->osh = v->sh;
      v->osd = v->sd;
      v->out_off = v->in_off;
    } else {
      int kind = r.pick(7);
      strides_for(kind, T, v->heads, D, r, v->ost, v->osh, v->osd);
      v->out_off = (v->heads == 0 && r.flag())
                       ? -1
                       : place(cursor, T, v->heads, D, v->out_t, v->ost, v->osh, v->osd);
    }
  }
  // Inputs that share their origin with their output must be exactly the output (in place).
  c.arena.assign(static_cast<std::size_t>(cursor + kGuard), 0);
  const std::uint8_t guard = r.byte();
  std::fill(c.arena.begin(), c.arena.end(), guard);

  // Values.
  c.special_values = r.pick(8) == 0;
  std::uint64_t seed = r.bits(8);
  const double magnitude = r.pick(8) == 0 ? std::ldexp(1.0, -120) : 1.0;
  write_input(c, c.q, seed, c.q.in_t == DType::kF16 ? std::min(magnitude, 1.0) : magnitude);
  write_input(c, c.k, seed, magnitude);

  // Positions.
  const bool mrope = c.plan.info.mrope.has_value();
  c.pos_kind = mrope && r.flag() ? 4 + r.pick(2) : r.pick(4);
  std::uint64_t ps = r.bits(8);
  switch (c.pos_kind) {
    case 0: {
      const int how = r.pick(4);
      c.pos_start = how == 0   ? r.range(0, 8192)
                    : how == 1 ? kMax - std::max<std::int64_t>(T - 1, 0) - r.range(0, 16)
                    : how == 2 ? -kMax + r.range(0, 16)
                               : r.range(-100000, 100000);
      break;
    }
    case 1: {
      const std::int64_t n = r.range(0, 5);
      if (T > 0 && n == 0) {
        c.pos_kind = 0;
        break;
      }
      std::vector<std::int64_t> cuts;
      for (std::int64_t i = 0; i + 1 < n; ++i)
        cuts.push_back(r.range(0, static_cast<std::int64_t>(std::max<std::int64_t>(T, 0))));
      std::sort(cuts.begin(), cuts.end());
      c.indptr.push_back(0);
      for (auto x : cuts) c.indptr.push_back(x);
      if (n > 0) c.indptr.push_back(T);
      for (std::int64_t s = 0; s < n; ++s) {
        const std::int64_t len =
            c.indptr[static_cast<std::size_t>(s + 1)] - c.indptr[static_cast<std::size_t>(s)];
        std::int64_t o = random_position(r, ps);
        if (o > kMax - std::max<std::int64_t>(len - 1, 0))
          o = kMax - std::max<std::int64_t>(len - 1, 0);
        c.offsets.push_back(o);
      }
      if (n == 0) c.indptr = {0};
      break;
    }
    default: {
      const std::int64_t rows = c.pos_kind >= 4 ? 3 : 1;
      c.mrope_tokens = T;
      for (std::int64_t i = 0; i < rows * T; ++i) {
        const std::int64_t p = random_position(r, ps);
        if (c.pos_kind % 2 == 0)
          c.ids32.push_back(static_cast<std::int32_t>(std::clamp<std::int64_t>(p, -kMax, kMax)));
        else
          c.ids64.push_back(p);
      }
      break;
    }
  }

  // Options.
  ApplyOptions& o = c.options;
  o.angles = r.flag() ? AngleMode::kHf : AngleMode::kExact;
  o.direction = r.flag() ? Direction::kInverse : Direction::kForward;
  o.rounding = r.pick(4) == 0 ? Rounding::kTransformers : Rounding::kSingle;
  o.fold_attention_factor = r.pick(4) != 0;
  switch (r.pick(6)) {
    case 0:
      o.layout = PairLayout::kHalf;
      break;
    case 1:
      o.layout = PairLayout::kInterleaved;
      break;
    case 2:
      o.layout = PairLayout::kInterleavedToHalf;
      break;
    default:
      break;
  }
  static const double kScales[] = {0.25, 0.5, 0.125, 2.0, 4.0, 0.0625, 1.5, 0.75};
  const bool scaled = r.pick(6) == 0;
  if (scaled) o.position_scale = kScales[r.pick(8)];
  if (!scaled && c.plan.inv_freq.size() <= 64 && r.pick(5) == 0) {
    c.cache =
        std::make_unique<CosSinCache>(c.plan, o.angles, o.fold_attention_factor, r.range(0, 3000));
    o.cache = c.cache.get();
  }
  o.backend = Backend::kAuto;
  if (big) {
    static ThreadPool pool(3);
    o.pool = &pool;
  } else {
    o.max_threads = 1;
  }

  // At most one deliberate defect.
  c.mutation = r.pick(4) == 0 ? static_cast<int>(r.range(1, kDrawn - 1)) : 0;
  auto nonempty = [&](const View& v) { return T > 0 && v.heads > 0 && v.in_off >= 0; };
  c.mutate_q = r.flag();
  View& mv = c.mutate_q ? c.q : c.k;
  switch (c.mutation) {
    case kPosOutOfRange:
      if (T == 0) {
        c.mutation = 0;
        break;
      }
      if (c.pos_kind == 0)
        c.pos_start = r.flag() ? kMax - T + 2 : -kMax - 1;
      else if (c.pos_kind == 1) {
        std::size_t s = 0;
        while (c.indptr[s + 1] == c.indptr[s]) ++s;  // a non-empty sequence
        c.offsets[s] = r.flag() ? kMax + 1 : -kMax - 1;
      } else if (c.pos_kind % 2 == 0) {
        c.ids32[static_cast<std::size_t>(
            r.range(0, static_cast<std::int64_t>(c.ids32.size()) - 1))] =
            std::numeric_limits<std::int32_t>::min();
      } else {
        c.ids64[static_cast<std::size_t>(
            r.range(0, static_cast<std::int64_t>(c.ids64.size()) - 1))] =
            r.flag() ? kMax + 1 : std::numeric_limits<std::int64_t>::min();
      }
      break;
    case kPosCount:
      if (c.pos_kind < 2) {
        c.mutation = 0;
        break;
      }
      if (c.pos_kind % 2 == 0)
        c.ids32.push_back(0);
      else
        c.ids64.push_back(0);
      break;
    case kIndptr:
      if (c.pos_kind != 1) {
        c.mutation = 0;
        break;
      }
      switch (r.pick(3)) {
        case 0:
          c.indptr.front() = 1;
          break;
        case 1:
          c.indptr.back() = T + 1;
          break;
        default:
          c.offsets.push_back(0);
          break;
      }
      break;
    case kMropeRowsNoMrope:
      if (mrope) {
        c.mutation = 0;
        break;
      }
      c.pos_kind = 5;
      c.ids64.assign(static_cast<std::size_t>(3 * T), 0);
      c.mrope_tokens = T;
      break;
    case kHeadDim:
      if (!nonempty(mv)) {
        c.mutation = 0;
        break;
      }
      c.head_dim = D;  // the tensors keep D; the plan changes
      c.plan.head_dim = static_cast<int>(D + 2);
      break;
    case kKTokens:
      if (c.k.heads == 0 || T == 0) {
        c.mutation = 0;
        break;
      }
      break;  // applied when the views are made
    case kNullData:
      if (!nonempty(mv)) {
        c.mutation = 0;
        break;
      }
      break;
    case kMisaligned:
      if (!nonempty(mv)) {
        c.mutation = 0;
        break;
      }
      break;
    case kOutOverlapsIn:
    case kOutputsOverlap:
      if (c.in_place_api || !nonempty(c.q) || !nonempty(c.k) || c.q.in_place || c.k.in_place) {
        c.mutation = 0;
        break;
      }
      break;
    case kSelfOverlap:
      if (!nonempty(mv) || (mv.heads < 2 && T < 2)) {
        c.mutation = 0;
        break;
      }
      break;
    case kNegativeSize:
      break;
    case kInPlaceDtype:
      if (c.in_place_api || !nonempty(mv)) {
        c.mutation = 0;
        break;
      }
      break;
    case kPlanNaN:
      c.plan.inv_freq[static_cast<std::size_t>(
          r.range(0, static_cast<std::int64_t>(c.plan.inv_freq.size()) - 1))] =
          std::numeric_limits<float>::quiet_NaN();
      break;
    case kPlanAttention:
      c.plan.attention_factor = r.flag() ? 0.0 : -1.0;
      break;
    case kPlanOddHead:
      c.plan.head_dim += 1;
      break;
    case kPlanInvSize:
      c.plan.inv_freq.push_back(0.5f);
      break;
    case kPositionScale:
      o.position_scale = r.flag() ? 0.0 : std::numeric_limits<double>::quiet_NaN();
      break;
    case kMaxThreads:
      o.max_threads = -1;
      break;
    case kCacheMismatch: {
      FrequencyPlan other = c.plan;
      other.inv_freq[0] = other.inv_freq[0] * 0.5f + 0.25f;
      if (other.inv_freq == c.plan.inv_freq) {
        c.mutation = 0;
        break;
      }
      c.cache = std::make_unique<CosSinCache>(other, o.angles, o.fold_attention_factor, 0);
      o.cache = c.cache.get();
      o.position_scale = 1.0;
      break;
    }
    case kBadDtype:
      if (!nonempty(mv)) {
        c.mutation = 0;
        break;
      }
      break;
    default:
      break;
  }
  // Output stores, from the byte after everything above (inputs that end before it keep kAuto,
  // so older corpus entries decode as they did): non-temporal stores must write what regular
  // ones write, and a value that is no OutputStores is a defect of its own.
  switch (r.pick(16)) {
    case 10:
    case 11:
    case 12:
      o.output_stores = OutputStores::kRegular;
      break;
    case 13:
    case 14:
      o.output_stores = OutputStores::kNonTemporal;
      break;
    case 15:
      if (c.mutation == 0) {
        c.mutation = kBadOutputStores;
        o.output_stores = static_cast<OutputStores>(3 + r.pick(250));
      }
      break;
    default:
      break;
  }
  c.mutation_name = mutation_name(c.mutation);
  return true;
}

// Views of the call over an arena, with the mutations that act on views.
struct Views {
  ConstTensorView qi, ki;
  TensorView qo, ko;
};
Views views_of(const Call& c, Arena& a, bool mutate_q) {
  auto ptr = [&](std::int64_t off) -> std::uint8_t* { return off < 0 ? nullptr : a.data() + off; };
  Views v;
  v.qi = ConstTensorView(ptr(c.q.in_off), c.q.in_t, c.tokens, c.q.heads, c.head_dim, c.q.st, c.q.sh,
                         c.q.sd);
  v.qo = TensorView{ptr(c.q.out_off), c.q.out_t, c.tokens, c.q.heads,
                    c.head_dim,       c.q.ost,   c.q.osh,  c.q.osd};
  v.ki = ConstTensorView(ptr(c.k.in_off), c.k.in_t, c.tokens, c.k.heads, c.head_dim, c.k.st, c.k.sh,
                         c.k.sd);
  v.ko = TensorView{ptr(c.k.out_off), c.k.out_t, c.tokens, c.k.heads,
                    c.head_dim,       c.k.ost,   c.k.osh,  c.k.osd};
  ConstTensorView& mi = mutate_q ? v.qi : v.ki;
  TensorView& mo = mutate_q ? v.qo : v.ko;
  switch (c.mutation) {
    case kKTokens:
      v.ki.tokens = v.ko.tokens = c.tokens + 1;
      break;
    case kNullData:
      if (c.in_place_api || mi.data == mo.data)
        mi.data = mo.data = nullptr;
      else
        mi.data = nullptr;
      break;
    case kMisaligned: {
      auto* p = static_cast<std::uint8_t*>(mo.data) + 1;
      if (c.in_place_api || mi.data == mo.data) mi.data = p;
      mo.data = p;
      break;
    }
    case kOutOverlapsIn:  // q_out moved onto q_in, shifted by one element
      v.qo = TensorView{
          static_cast<std::uint8_t*>(const_cast<void*>(v.qi.data)) + dtype_size(v.qi.dtype),
          v.qi.dtype,
          v.qi.tokens,
          v.qi.heads,
          v.qi.head_dim,
          v.qi.stride_token,
          v.qi.stride_head,
          v.qi.stride_dim};
      v.qo.dtype = c.q.in_t;
      break;
    case kOutputsOverlap:  // k_out is q_out's first heads
      v.ko = TensorView{v.qo.data,     v.qo.dtype,        v.ki.tokens,      v.ki.heads,
                        v.ki.head_dim, v.qo.stride_token, v.qo.stride_head, v.qo.stride_dim};
      break;
    case kSelfOverlap:
      if (mo.heads >= 2)
        mo.stride_head = 0;
      else
        mo.stride_token = 0;
      if (c.in_place_api || mi.data == mo.data) {
        mi.stride_head = mo.stride_head;
        mi.stride_token = mo.stride_token;
      }
      break;
    case kNegativeSize:
      v.qi.tokens = v.qo.tokens = -1;
      break;
    case kInPlaceDtype:
      mo.dtype = mi.dtype == DType::kF32 ? DType::kF16 : DType::kF32;
      mo.data = const_cast<void*>(mi.data);
      mo.stride_token = mi.stride_token;
      mo.stride_head = mi.stride_head;
      mo.stride_dim = mi.stride_dim;
      break;
    case kBadDtype:
      mo.dtype = static_cast<DType>(3);
      if (c.in_place_api) mi.dtype = mo.dtype;
      break;
    default:
      break;
  }
  return v;
}

struct Outcome {
  bool threw = false;
  std::string message;
  Arena arena;
};

Outcome run(const Call& c, Backend backend, bool mutate_q) {
  Outcome out;
  out.arena = c.arena;
  Views v = views_of(c, out.arena, mutate_q);
  ApplyOptions o = c.options;
  o.backend = backend;
  try {
    if (c.in_place_api)
      apply_rope(c.plan, v.qo, v.ko, c.positions(), o);
    else
      apply_rope(c.plan, v.qi, v.qo, v.ki, v.ko, c.positions(), o);
  } catch (const ArgumentError& e) {
    out.threw = true;
    out.message = e.what();
  }
  return out;
}

// ---- checks
// ----------------------------------------------------------------------------------------

// Marks the bytes of a view's elements.
void mark(std::vector<std::uint8_t>& is_out, const Call& c, const View& v) {
  if (v.out_off < 0) return;
  const std::int64_t es = dtype_size(v.out_t);
  for (std::int64_t t = 0; t < c.tokens; ++t)
    for (std::int64_t h = 0; h < v.heads; ++h)
      for (std::int64_t d = 0; d < c.head_dim; ++d) {
        const std::int64_t off = byte_of(v.out_off, v.out_t, v.ost, v.osh, v.osd, t, h, d);
        for (std::int64_t b = 0; b < es; ++b) is_out[static_cast<std::size_t>(off + b)] = 1;
      }
}

void check_guards(const Call& c, const Outcome& o, const std::string& who) {
  std::vector<std::uint8_t> is_out(c.arena.size(), 0);
  const bool noop = c.tokens == 0 || (c.q.heads == 0 && c.k.heads == 0);
  if (!noop) {
    mark(is_out, c, c.q);
    mark(is_out, c, c.k);
  }
  for (std::size_t i = 0; i < c.arena.size(); ++i)
    if (!is_out[i] && o.arena[i] != c.arena[i])
      finding(who + " wrote byte " + std::to_string(i) + " outside the output views (" +
              c.describe() + ")");
}

// cos/sin of the call's angle for position p and inverse frequency inv, independently of the
// library: hf angles are a float (exact); exact angles p·m are split exactly into hi + lo
// (FMA) and expanded in long double, cos(hi + lo) = cos hi·cos lo − sin hi·sin lo.
void oracle_cos_sin(const Call& c, std::int64_t p, float inv, long double& cs, long double& sn) {
  const ApplyOptions& o = c.options;
  const bool scaled = o.position_scale != 1.0;
  const auto scale = static_cast<float>(o.position_scale);
  if (o.angles == AngleMode::kHf) {
    float pf = static_cast<float>(p);
    if (scaled) pf = scale * pf;
    const auto theta = static_cast<long double>(pf * inv);
    cs = std::cos(theta);
    sn = std::sin(theta);
    return;
  }
  const double m =
      scaled ? static_cast<double>(inv) * static_cast<double>(scale) : static_cast<double>(inv);
  const double pd = static_cast<double>(p);
  const double hi = pd * m;
  const double lo = std::fma(pd, m, -hi);
  const long double ch = std::cos(static_cast<long double>(hi)),
                    sh = std::sin(static_cast<long double>(hi));
  const long double cl = std::cos(static_cast<long double>(lo)),
                    sl = std::sin(static_cast<long double>(lo));
  cs = ch * cl - sh * sl;
  sn = sh * cl + ch * sl;
}

void pair_of(PairLayout layout, int pairs, int i, int& ia, int& ib, int& oa, int& ob) {
  switch (layout) {
    case PairLayout::kHalf:
      ia = oa = i;
      ib = ob = i + pairs;
      return;
    case PairLayout::kInterleaved:
      ia = oa = 2 * i;
      ib = ob = 2 * i + 1;
      return;
    case PairLayout::kInterleavedToHalf:
      ia = 2 * i;
      ib = 2 * i + 1;
      oa = i;
      ob = i + pairs;
      return;
  }
}

void compare(const Call& c, const View& v, const Outcome& ref, const Outcome& other,
             const std::string& who, bool vs_oracle) {
  if (v.out_off < 0 || v.heads == 0) return;
  const int pairs = c.plan.rotary_dim / 2;
  const PairLayout layout = c.options.layout.value_or(c.plan.layout);
  const double amp = c.options.fold_attention_factor ? c.plan.attention_factor : 1.0;
  const double sign = c.options.direction == Direction::kInverse ? -1.0 : 1.0;
  for (std::int64_t t = 0; t < c.tokens; ++t) {
    std::int64_t pos[3] = {c.position(t, 0), 0, 0};
    if (c.pos_kind >= 4) {
      pos[1] = c.position(t, 1);
      pos[2] = c.position(t, 2);
    }
    for (std::int64_t h = 0; h < v.heads; ++h) {
      auto in_at = [&](int d) {
        return load(c.arena, byte_of(v.in_off, v.in_t, v.st, v.sh, v.sd, t, h, d), v.in_t);
      };
      auto out_off = [&](int d) {
        return byte_of(v.out_off, v.out_t, v.ost, v.osh, v.osd, t, h, d);
      };
      for (int i = 0; i < pairs; ++i) {
        int ia = 0, ib = 0, oa = 0, ob = 0;
        pair_of(layout, pairs, i, ia, ib, oa, ob);
        const double xa = in_at(ia), xb = in_at(ib);
        // Non-finite inputs have no numeric contract; nor have values whose f32 products may
        // overflow (special-values mode only: normal inputs stay below 2^12). NaN results
        // compare equal to NaN, infinities to the same infinity.
        if (!std::isfinite(xa) || !std::isfinite(xb)) continue;
        if (amp * (std::fabs(xa) + std::fabs(xb)) > 0x1p125) continue;  // f32 products may overflow
        const double bound_f32 = 8.0 * ulp_f32(amp * std::max(std::fabs(xa), std::fabs(xb)));
        const double ya_r = load(ref.arena, out_off(oa), v.out_t),
                     yb_r = load(ref.arena, out_off(ob), v.out_t);
        double ya_x = 0, yb_x = 0;
        if (vs_oracle) {
          const std::int64_t p = c.pos_kind >= 4 && !c.plan.pair_axis.empty()
                                     ? pos[c.plan.pair_axis[static_cast<std::size_t>(i)]]
                                     : pos[0];
          long double cs = 0, sn = 0;
          oracle_cos_sin(c, p, c.plan.inv_freq[static_cast<std::size_t>(i)], cs, sn);
          cs *= amp;
          sn *= amp * sign;
          ya_x = static_cast<double>(static_cast<long double>(xa) * cs -
                                     static_cast<long double>(xb) * sn);
          yb_x = static_cast<double>(static_cast<long double>(xb) * cs +
                                     static_cast<long double>(xa) * sn);
        } else {
          ya_x = load(other.arena, out_off(oa), v.out_t);
          yb_x = load(other.arena, out_off(ob), v.out_t);
        }
        for (const auto& [y, x, name] :
             {std::tuple{ya_r, ya_x, "a"}, std::tuple{yb_r, yb_x, "b"}}) {
          const double bound =
              (v.out_t == DType::kF32 ? 0.0 : ulp_out(v.out_t, vs_oracle ? x : y)) + bound_f32;
          bool ok = std::fabs(y - x) <= bound || y == x || (std::isnan(y) && std::isnan(x));
          if (!ok && (!std::isfinite(y) || !std::isfinite(x)))  // overflow at the edge of the range
            ok = std::fabs(vs_oracle ? x : y) >= max_finite(v.out_t) * (1 - 1.0 / 128) &&
                 (std::isinf(y) || std::isinf(x));
          if (!ok)
            finding(who + ": t=" + std::to_string(t) + " h=" + std::to_string(h) + " pair " +
                    std::to_string(i) + name + " (pos " + std::to_string(pos[0]) + ", inv_freq " +
                    num(c.plan.inv_freq[static_cast<std::size_t>(i)]) + "): " + num(y) + " vs " +
                    num(x) + " (|diff| " + num(std::fabs(y - x)) + " > bound " + num(bound) +
                    ", x = " + num(xa) + ", " + num(xb) + ") " + c.describe());
        }
      }
      // Pass-through features: identical between backends; equal to the converted input.
      for (int d = c.plan.rotary_dim; d < c.head_dim; ++d) {
        if (vs_oracle) {
          const double want = round_to_dtype(v.out_t, in_at(d));
          const double got = load(ref.arena, out_off(d), v.out_t);
          if (!(got == want || (std::isnan(got) && std::isnan(want))))
            finding(who + ": pass-through feature " + std::to_string(d) + " is " +
                    std::to_string(got) + ", expected " + std::to_string(want) + " " +
                    c.describe());
        } else if (!same_bits_or_both_nan(ref.arena, other.arena, out_off(d), v.out_t)) {
          finding(who + ": pass-through feature " + std::to_string(d) +
                  " differs from the reference " + c.describe());
        }
      }
    }
  }
}

void check_call(ByteReader& r) {
  Call c;
  if (!build(r, c)) return;
  const bool mutate_q = c.mutate_q;

  // Backends: the reference, then every supported SIMD target (kAuto dispatches to it).
  std::vector<std::string> targets;
  for (const SimdTarget& t : compiled_targets())
    if (t.supported) targets.push_back(t.name);

  const Outcome ref = run(c, Backend::kReference, mutate_q);
  if (c.mutation != 0 && !ref.threw)
    finding("a call with defect '" + c.mutation_name + "' was accepted: " + c.describe());
  if (c.mutation == 0 && ref.threw)
    finding("a valid call was refused: " + ref.message + " — " + c.describe());
  if (ref.threw) {
    if (ref.arena != c.arena) finding("a refused call wrote memory: " + ref.message);
  } else {
    check_guards(c, ref, "reference");
    if (!c.special_values && c.options.rounding == Rounding::kSingle) {
      compare(c, c.q, ref, ref, "reference vs oracle (q)", true);
      compare(c, c.k, ref, ref, "reference vs oracle (k)", true);
    }
  }
  for (const std::string& t : targets) {
    force_target(t);
    const Outcome o = run(c, Backend::kAuto, mutate_q);
    force_target("auto");
    const std::string who = "target " + t;
    if (o.threw != ref.threw || o.message != ref.message)
      finding(who + " and the reference disagree on validity: '" + o.message + "' vs '" +
              ref.message + "' " + c.describe());
    if (o.threw) {
      if (o.arena != c.arena) finding(who + ": a refused call wrote memory");
      continue;
    }
    check_guards(c, o, who);
    compare(c, c.q, ref, o, who + " vs reference (q)", false);
    compare(c, c.k, ref, o, who + " vs reference (k)", false);
  }
}

}  // namespace
}  // namespace ropekit::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ropekit::fuzz::ByteReader r(data, size);
  try {
    ropekit::fuzz::check_call(r);
  } catch (const std::exception& e) {
    ropekit::fuzz::finding(std::string("unexpected exception: ") + e.what());
  } catch (...) {
    ropekit::fuzz::finding("unexpected non-std exception");
  }
  return 0;
}
