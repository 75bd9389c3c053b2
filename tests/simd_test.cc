// The SIMD backend against the double-precision reference, on every compiled target this CPU
// supports (forced with ropekit::force_target), plus its building blocks: vector dtype
// conversions, the cos/sin table fill, target selection and the thread pool.
//
// Error bound tested (docs/numerics.md, "SIMD kernels"): for every rotated output y of a pair
// (x_a, x_b), with A the amplitude folded into cos/sin and y_ref the reference's output,
//
//     |y − y_ref| <= 1 ulp_out(y_ref) + 4·2^-24·A·(|x_a| + |x_b|)
//
// i.e. f32 outputs within a few f32 ulp relative to the pair's magnitude, and 16-bit outputs
// equal to the reference's single rounding or one ulp away (a rounding boundary between the
// f32 result and the exact one), the f32 term mattering only where y cancels far below |x|.
// Pass-through features are bit-identical to the reference's. Nothing outside an output view
// is written (0xFF sentinels around and between the elements).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernel/angles.h"
#include "ropekit/ropekit.h"
#include "simd/simd_api.h"
#include "test_util.h"

namespace ropekit {
namespace {

constexpr double kF32Factor = 4.0 * 5.9604644775390625e-8;  // 4·2^-24

// Observed error statistics per output dtype (printed at the end, for docs/numerics.md).
struct Stats {
  std::int64_t compared = 0, mismatched = 0;
  double worst = 0;  // max (|y − y_ref| − ulp(y_ref)) / (2^-24·A·(|x_a| + |x_b|))
};
Stats g_stats[3];

// ---- helpers ---------------------------------------------------------------------------------
double load(DType t, const std::uint8_t* p) { return load_as_double(t, p); }

std::vector<std::string> supported_targets() {
  std::vector<std::string> out;
  for (const SimdTarget& t : compiled_targets())
    if (t.supported) out.push_back(t.name);
  return out;
}

// Restores automatic dispatch after each test.
class TargetTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { force_target(GetParam()); }
  void TearDown() override { force_target("auto"); }
};

// A view over a byte buffer with a sentinel-filled surrounding.
struct Buffer {
  std::vector<std::uint8_t> bytes;
  std::int64_t base = 0;  // element index of data within bytes (elements of `dt`)
  DType dt = DType::kF32;
  void* data() { return bytes.data() + base * dtype_size(dt); }
};

struct Strides {
  std::int64_t st = 0, sh = 0, sd = 1;
};

// Layout kinds for one tensor [T, H, D].
enum class Shape { kContiguous, kHeadMajor, kPaddedRows, kStridedDim, kNegativeToken };
constexpr Shape kShapes[] = {Shape::kContiguous, Shape::kHeadMajor, Shape::kPaddedRows,
                             Shape::kStridedDim, Shape::kNegativeToken};
const char* shape_name(Shape s) {
  switch (s) {
    case Shape::kContiguous:
      return "contiguous";
    case Shape::kHeadMajor:
      return "head-major";
    case Shape::kPaddedRows:
      return "padded-rows";
    case Shape::kStridedDim:
      return "stride_dim=2";
    case Shape::kNegativeToken:
      return "negative-token-stride";
  }
  return "?";
}

// Strides and the element extent [lo, hi] relative to data.
Strides strides_for(Shape s, std::int64_t T, std::int64_t H, std::int64_t D, std::int64_t& lo,
                    std::int64_t& hi) {
  Strides r;
  switch (s) {
    case Shape::kContiguous:
      r = {H * D, D, 1};
      break;
    case Shape::kHeadMajor:
      r = {D, T * D, 1};
      break;
    case Shape::kPaddedRows:
      r = {H * (D + 3) + 1, D + 3, 1};
      break;
    case Shape::kStridedDim:
      r = {H * (2 * D + 1) + 5, 2 * D + 1, 2};
      break;
    case Shape::kNegativeToken:
      r = {-H * D, D, 1};
      break;
  }
  lo = hi = 0;
  for (const auto& [n, st] : {std::pair{T, r.st}, std::pair{H, r.sh}, std::pair{D, r.sd}}) {
    if (n == 0) continue;
    if (st < 0)
      lo += (n - 1) * st;
    else
      hi += (n - 1) * st;
  }
  return r;
}

Buffer make_buffer(DType dt, std::int64_t lo, std::int64_t hi) {
  Buffer b;
  b.dt = dt;
  constexpr std::int64_t kGuard = 37;  // elements of sentinel before and after
  b.base = kGuard - lo;
  b.bytes.assign(static_cast<std::size_t>((hi - lo + 1 + 2 * kGuard) * dtype_size(dt)), 0xFF);
  return b;
}

template <class F>
void for_each_element(std::int64_t T, std::int64_t H, std::int64_t D, const Strides& s, F&& f) {
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t d = 0; d < D; ++d) f(t, h, d, t * s.st + h * s.sh + d * s.sd);
}

void fill_random(Buffer& b, std::int64_t T, std::int64_t H, std::int64_t D, const Strides& s,
                 std::mt19937_64& rng, double scale = 1.0) {
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  std::uniform_int_distribution<int> pick(0, 40);
  for_each_element(T, H, D, s, [&](std::int64_t, std::int64_t, std::int64_t, std::int64_t off) {
    double v = u(rng);
    const int k = pick(rng);
    if (k == 0) v = 0.0;
    if (k == 1) v *= 1e-3;
    if (k == 2) v *= 100.0;
    v *= scale;
    store_from_double(b.dt, b.bytes.data() + (b.base + off) * dtype_size(b.dt), v);
  });
}

// ---- one randomized case ----------------------------------------------------------------------
struct Case {
  DType in = DType::kF32, out = DType::kF32;
  PairLayout layout = PairLayout::kHalf;
  int head_dim = 128, rotary_dim = 128;
  std::int64_t tokens = 7, q_heads = 3, k_heads = 1;
  Shape in_shape = Shape::kContiguous, out_shape = Shape::kContiguous;
  bool in_place = false, inverse = false, cache = false, fold = true;
  AngleMode angles = AngleMode::kExact;
  int positions =
      0;  // 0 offset, 1 per_sequence, 2 per_token i32, 3 per_token i64, 4 rows i32, 5 rows i64
  // Position rows of kinds 4 and 5 (1 to 4; 3 is M-RoPE): chosen from the seed so that the
  // random stream of the case lists stays as it was.
  int rows() const { return 1 + static_cast<int>((seed >> 7) % 4); }
  double attention_factor = 1.0;
  double position_scale = 1.0;
  bool fused_qk = false;     // q and k are slices of one qkv buffer (contiguous rows)
  double input_scale = 1.0;  // e.g. 2^-125: bf16/f32 results in the subnormal range
  std::uint64_t seed = 1;

  std::string describe() const {
    std::string s = std::string(dtype_name(in)) + "->" + std::string(dtype_name(out)) +
                    " layout=" + std::to_string(static_cast<int>(layout)) +
                    " hd=" + std::to_string(head_dim) + " rot=" + std::to_string(rotary_dim) +
                    " T=" + std::to_string(tokens) + " Hq=" + std::to_string(q_heads) +
                    " Hk=" + std::to_string(k_heads) + " in=" + shape_name(in_shape) +
                    " out=" + shape_name(out_shape) + (in_place ? " in-place" : "") +
                    (inverse ? " inverse" : "") + (cache ? " cache" : "") +
                    (fold ? "" : " unfolded") + (angles == AngleMode::kHf ? " hf" : " exact") +
                    " pos=" + std::to_string(positions) +
                    (positions >= 4 ? " rows=" + std::to_string(rows()) : std::string()) +
                    " A=" + std::to_string(attention_factor) +
                    " scale=" + std::to_string(position_scale) + (fused_qk ? " fused" : "") +
                    " input_scale=" + std::to_string(input_scale) + " seed=" + std::to_string(seed);
    return s;
  }
};

// Plain RoPE with base theta: inv_freq[i] = theta^(-2i / rotary_dim).
FrequencyPlan power_plan(int head_dim, int rotary_dim, PairLayout layout, double theta) {
  FrequencyPlan plan;
  plan.head_dim = head_dim;
  plan.rotary_dim = rotary_dim;
  plan.layout = layout;
  for (int i = 0; i < rotary_dim / 2; ++i)
    plan.inv_freq.push_back(static_cast<float>(std::pow(theta, -2.0 * i / rotary_dim)));
  return plan;
}

// The plan of a default (plain) config read the usual way, head_dim = rotary_dim = 128.
FrequencyPlan config_plan_128(double theta, std::int64_t max_position_embeddings) {
  return build_frequency_plan(
      test::plain_config(128, 128, PairLayout::kHalf, theta, max_position_embeddings));
}

FrequencyPlan make_plan(const Case& c, std::mt19937_64& rng) {
  const double thetas[] = {10000.0, 500000.0, 1e6, 160.0};
  FrequencyPlan plan =
      power_plan(c.head_dim, c.rotary_dim,
                 c.layout == PairLayout::kInterleavedToHalf ? PairLayout::kInterleaved : c.layout,
                 thetas[rng() % 4]);
  plan.info.rope_type = "test";
  plan.attention_factor = c.attention_factor;
  if (c.positions >= 4) {
    MRopeSpec spec;
    spec.section = {c.rotary_dim / 6, c.rotary_dim / 6, c.rotary_dim / 2 - 2 * (c.rotary_dim / 6)};
    plan.info.mrope = spec;
    for (int i = 0; i < c.rotary_dim / 2; ++i)
      plan.pair_axis.push_back(static_cast<std::uint8_t>(rng() % static_cast<unsigned>(c.rows())));
    plan.position_rows = c.rows();
  }
  return plan;
}

struct PositionData {
  std::vector<std::int64_t> indptr, offsets, ids64;
  std::vector<std::int32_t> ids32;
  Positions get(int kind, std::int64_t T, std::int64_t start, int rows) const {
    switch (kind) {
      case 0:
        return Positions::offset(start);
      case 1:
        return Positions::per_sequence(indptr, offsets);
      case 2:
        return Positions::per_token(std::span<const std::int32_t>(ids32));
      case 3:
        return Positions::per_token(std::span<const std::int64_t>(ids64));
      case 4:
        return Positions::rows(std::span<const std::int32_t>(ids32), T, rows);
      default:
        return Positions::rows(std::span<const std::int64_t>(ids64), T, rows);
    }
  }
};

std::int64_t random_position(std::mt19937_64& rng) {
  switch (rng() % 6) {
    case 0:
      return static_cast<std::int64_t>(rng() % 64);
    case 1:
      return static_cast<std::int64_t>(rng() % 5000);
    case 2:
      return static_cast<std::int64_t>(rng() % 200000);
    case 3:
      return -static_cast<std::int64_t>(rng() % 3000);
    case 4:
      return kMaxAbsPosition - static_cast<std::int64_t>(rng() % 1000);
    default:
      return -kMaxAbsPosition + static_cast<std::int64_t>(rng() % 1000);
  }
}

struct TensorBufs {
  Buffer in, out_ref, out_simd;
  Strides sin, sout;
};

void run_case(const Case& c) {
  SCOPED_TRACE(c.describe());
  std::mt19937_64 rng(c.seed);
  const FrequencyPlan plan = make_plan(c, rng);
  const std::int64_t T = c.tokens, D = c.head_dim;

  // positions
  PositionData pd;
  std::int64_t start = 0;
  if (c.positions == 0) {
    const std::int64_t starts[] = {0, 3, 4093, 131071, -40, kMaxAbsPosition - T + 1};
    start = starts[rng() % 6];
  } else if (c.positions == 1) {
    pd.indptr.push_back(0);
    std::int64_t at = 0;
    while (at < T) {
      const std::int64_t len =
          std::min<std::int64_t>(T - at, static_cast<std::int64_t>(rng() % 5));  // 0: empty
      at += len;
      pd.indptr.push_back(at);
      pd.offsets.push_back(static_cast<std::int64_t>(rng() % 40000));
    }
  } else {
    const std::int64_t n = c.positions >= 4 ? c.rows() * T : T;
    for (std::int64_t i = 0; i < n; ++i) {
      std::int64_t p = random_position(rng);
      if (c.cache && rng() % 2) p = static_cast<std::int64_t>(rng() % 2048);  // mostly inside
      pd.ids64.push_back(p);
      pd.ids32.push_back(static_cast<std::int32_t>(p));
    }
  }
  const Positions pos = pd.get(c.positions, T, start, c.rows());

  // tensors
  auto setup = [&](std::int64_t H, TensorBufs& tb) {
    std::int64_t lo = 0, hi = 0;
    tb.sin = strides_for(c.in_shape, T, H, D, lo, hi);
    tb.in = make_buffer(c.in, lo, hi);
    fill_random(tb.in, T, H, D, tb.sin, rng, c.input_scale);
    if (c.in_place) {
      tb.sout = tb.sin;
      tb.out_ref = tb.in;
      tb.out_simd = tb.in;
    } else {
      tb.sout = strides_for(c.out_shape, T, H, D, lo, hi);
      tb.out_ref = make_buffer(c.out, lo, hi);
      tb.out_simd = make_buffer(c.out, lo, hi);
    }
  };
  TensorBufs q, k;
  const bool fused = c.fused_qk && !c.in_place;
  if (!fused) {
    setup(c.q_heads, q);
    if (c.k_heads > 0) setup(c.k_heads, k);
  } else {
    // One qkv buffer [T][(Hq + Hk + Hk)·D + 7]: q at 0, k at Hq·D; the same for the outputs.
    const std::int64_t row = (c.q_heads + 2 * c.k_heads) * D + 7;
    q.sin = q.sout = {row, D, 1};
    k.sin = k.sout = {row, D, 1};
    q.in = make_buffer(c.in, 0, T * row);
    fill_random(q.in, T, c.q_heads + 2 * c.k_heads, D, {row, D, 1}, rng, c.input_scale);
    q.out_ref = make_buffer(c.out, 0, T * row);
    q.out_simd = make_buffer(c.out, 0, T * row);
  }

  auto views = [&](TensorBufs& tb, Buffer& out, std::int64_t H, std::int64_t elem_off,
                   ConstTensorView& iv, TensorView& ov, Buffer* in_buf) {
    Buffer& inb = in_buf ? *in_buf : tb.in;
    iv = ConstTensorView(static_cast<std::uint8_t*>(inb.data()) + elem_off * dtype_size(c.in), c.in,
                         T, H, D, tb.sin.st, tb.sin.sh, tb.sin.sd);
    ov = TensorView{static_cast<std::uint8_t*>(out.data()) + elem_off * dtype_size(c.out),
                    c.out,
                    T,
                    H,
                    D,
                    tb.sout.st,
                    tb.sout.sh,
                    tb.sout.sd};
  };

  ApplyOptions o;
  o.angles = c.angles;
  o.direction = c.inverse ? Direction::kInverse : Direction::kForward;
  o.fold_attention_factor = c.fold;
  o.position_scale = c.position_scale;
  if (c.layout == PairLayout::kInterleavedToHalf) o.layout = PairLayout::kInterleavedToHalf;
  std::unique_ptr<CosSinCache> cache;
  if (c.cache) {
    cache = std::make_unique<CosSinCache>(plan, c.angles, c.fold, 1500);
    o.cache = cache.get();
  }

  for (const bool simd : {false, true}) {
    ApplyOptions oo = o;
    oo.backend = simd ? Backend::kSimd : Backend::kReference;
    ConstTensorView qi, ki;
    TensorView qo, ko;
    if (!fused) {
      views(q, simd ? q.out_simd : q.out_ref, c.q_heads, 0, qi, qo,
            c.in_place ? (simd ? &q.out_simd : &q.out_ref) : nullptr);
      if (c.k_heads > 0)
        views(k, simd ? k.out_simd : k.out_ref, c.k_heads, 0, ki, ko,
              c.in_place ? (simd ? &k.out_simd : &k.out_ref) : nullptr);
    } else {
      Buffer& out = simd ? q.out_simd : q.out_ref;
      views(q, out, c.q_heads, 0, qi, qo, nullptr);
      views(q, out, c.k_heads, c.q_heads * D, ki, ko, nullptr);
    }
    if (c.in_place) {
      apply_rope(plan, qo, ko, pos, oo);
    } else {
      apply_rope(plan, qi, qo, ki, ko, pos, oo);
    }
  }

  // Compare.
  const double amp = c.fold ? c.attention_factor : 1.0;
  const int pairs = c.rotary_dim / 2;
  std::int64_t compared = 0, mismatched = 0;
  auto compare = [&](TensorBufs& tb, std::int64_t H, std::int64_t elem_off, const Buffer& in_orig,
                     Buffer& ref, Buffer& got, std::vector<char>& covered) {
    const int es = dtype_size(c.out);
    const int ies = dtype_size(c.in);
    double& worst = g_stats[static_cast<int>(c.out)].worst;
    std::int64_t failures = 0;
    for (std::int64_t t = 0; t < T && failures < 5; ++t) {
      for (std::int64_t h = 0; h < H && failures < 5; ++h) {
        auto in_at = [&](std::int64_t d) {
          return load(c.in, in_orig.bytes.data() + (in_orig.base + elem_off + t * tb.sin.st +
                                                    h * tb.sin.sh + d * tb.sin.sd) *
                                                       ies);
        };
        auto out_off = [&](std::int64_t d) {
          return ref.base + elem_off + t * tb.sout.st + h * tb.sout.sh + d * tb.sout.sd;
        };
        for (int i = 0; i < pairs; ++i) {
          int ia = 0, ib = 0, oa = 0, ob = 0;
          detail::pair_features(c.layout, pairs, i, ia, ib, oa, ob);
          const double mag = std::fabs(in_at(ia)) + std::fabs(in_at(ib));
          for (const int od : {oa, ob}) {
            const std::int64_t off = out_off(od);
            covered[static_cast<std::size_t>(off)] = 1;
            const double r = load(c.out, ref.bytes.data() + off * es);
            const double g = load(c.out, got.bytes.data() + off * es);
            const double tol = test::ulp_of(c.out, r) + kF32Factor * amp * mag;
            const double err = std::fabs(g - r);
            if (!(err <= tol)) {
              ++failures;
              ADD_FAILURE() << "t=" << t << " h=" << h << " pair " << i << " feature " << od
                            << ": simd " << g << " ref " << r << " err " << err << " tol " << tol;
            }
            if (mag > 0)
              worst = std::max(
                  worst, (err - test::ulp_of(c.out, r)) / (amp * mag * 5.9604644775390625e-8));
            ++compared;
            if (g != r) ++mismatched;
          }
        }
        for (int d = c.rotary_dim; d < c.head_dim; ++d) {
          const std::int64_t off = out_off(d);
          covered[static_cast<std::size_t>(off)] = 1;
          if (std::memcmp(ref.bytes.data() + off * es, got.bytes.data() + off * es,
                          static_cast<std::size_t>(es)) != 0) {
            ++failures;
            ADD_FAILURE() << "pass-through t=" << t << " h=" << h << " d=" << d << " differs";
          }
        }
      }
    }
  };
  auto check_outside = [&](const Buffer& ref, const Buffer& got, const std::vector<char>& covered) {
    const int es = dtype_size(c.out);
    std::int64_t bad = 0;
    for (std::size_t e = 0; e < covered.size(); ++e) {
      if (covered[e]) continue;
      if (std::memcmp(ref.bytes.data() + e * static_cast<std::size_t>(es),
                      got.bytes.data() + e * static_cast<std::size_t>(es),
                      static_cast<std::size_t>(es)) != 0)
        ++bad;
    }
    EXPECT_EQ(bad, 0) << "elements outside the output views were written";
  };
  if (!fused) {
    for (auto [tb, H] : {std::pair{&q, c.q_heads}, std::pair{&k, c.k_heads}}) {
      if (H == 0) continue;
      std::vector<char> covered(
          tb->out_ref.bytes.size() / static_cast<std::size_t>(dtype_size(c.out)), 0);
      compare(*tb, H, 0, tb->in, tb->out_ref, tb->out_simd, covered);
      check_outside(tb->out_ref, tb->out_simd, covered);
    }
  } else {
    std::vector<char> covered(q.out_ref.bytes.size() / static_cast<std::size_t>(dtype_size(c.out)),
                              0);
    compare(q, c.q_heads, 0, q.in, q.out_ref, q.out_simd, covered);
    compare(q, c.k_heads, c.q_heads * D, q.in, q.out_ref, q.out_simd, covered);
    check_outside(q.out_ref, q.out_simd, covered);
  }
  // 16-bit outputs: the f32 result differs from the exact one by ~2^-22 relative, so it lands on
  // the other side of a rounding boundary of the output type rarely (a truncating demote, also
  // within 1 ulp, would differ half of the time).
  if (c.out != DType::kF32 && compared >= 200) {
    EXPECT_LE(static_cast<double>(mismatched), 0.02 * static_cast<double>(compared))
        << mismatched << " of " << compared << " 16-bit outputs differ from the reference";
  }
  g_stats[static_cast<int>(c.out)].compared += compared;
  g_stats[static_cast<int>(c.out)].mismatched += mismatched;
}

constexpr DType kTypes[] = {DType::kF32, DType::kF16, DType::kBF16};
constexpr PairLayout kLayouts[] = {PairLayout::kHalf, PairLayout::kInterleaved,
                                   PairLayout::kInterleavedToHalf};

// Every (in, out, layout) on this target, with the other factors drawn per case so that each
// value of each factor appears many times.
TEST_P(TargetTest, MatchesReferenceOnRandomShapes) {
  std::mt19937_64 rng(0xC0FFEE ^ std::hash<std::string>{}(GetParam()));
  const int head_dims[] = {64, 80, 96, 128, 256, 10};
  int n = 0;
  for (const DType in : kTypes) {
    for (const DType out : kTypes) {
      for (const PairLayout layout : kLayouts) {
        for (int rep = 0; rep < 10; ++rep, ++n) {
          Case c;
          c.in = in;
          c.out = out;
          c.layout = layout;
          c.head_dim = head_dims[(n + rep) % 6];
          c.rotary_dim = c.head_dim;
          if (rep % 3 == 1) c.rotary_dim = std::max(2, (c.head_dim / 2) & ~1);  // half
          if (rep % 3 == 2)
            c.rotary_dim = std::max(2, (c.head_dim / 4) & ~1);  // a quarter (e.g. 20, 24)
          if (rep == 5) c.rotary_dim = c.head_dim - 2;
          c.tokens = 1 + static_cast<std::int64_t>(rng() % 13);
          c.q_heads = 1 + static_cast<std::int64_t>(rng() % 5);
          c.k_heads = static_cast<std::int64_t>(rng() % 4);
          c.in_place = in == out && rng() % 3 == 0;
          c.in_shape = kShapes[rng() % 5];
          c.out_shape = kShapes[rng() % 5];
          c.inverse = rng() % 2;
          c.angles = rng() % 2 ? AngleMode::kHf : AngleMode::kExact;
          c.positions = static_cast<int>(rng() % 6);
          c.fold = rng() % 4 != 0;
          c.attention_factor = rng() % 2 ? 1.0 : 1.2345;
          c.cache = rng() % 3 == 0;
          if (!c.cache && rng() % 4 == 0) c.position_scale = rng() % 2 ? 1.0 / 3.0 : 2.5;
          c.fused_qk = !c.in_place && c.k_heads > 0 && rng() % 5 == 0;
          c.seed = rng();
          run_case(c);
          if (HasFailure()) return;
        }
      }
    }
  }
}

// Every head_dim of the list with partial rotary, the long-context positions, both angle modes,
// the cache and on-the-fly, many tokens (more than one thread chunk).
TEST_P(TargetTest, ModelShapesAndLargePositions) {
  std::mt19937_64 rng(7);
  for (const int hd : {64, 80, 96, 128, 256}) {
    for (const int rot : {hd, hd / 2, hd / 4 + (hd / 4) % 2}) {
      for (const AngleMode angles : {AngleMode::kExact, AngleMode::kHf}) {
        for (const bool cache : {false, true}) {
          Case c;
          c.in = c.out = hd == 96 ? DType::kBF16 : (hd == 80 ? DType::kF16 : DType::kF32);
          c.layout = hd % 128 == 0 ? PairLayout::kHalf : PairLayout::kInterleaved;
          c.head_dim = hd;
          c.rotary_dim = rot;
          c.tokens = 301;
          c.q_heads = 5;
          c.k_heads = 3;
          c.angles = angles;
          c.cache = cache;
          c.positions = 3;
          c.attention_factor = 1.1;
          c.seed = rng();
          run_case(c);
          if (HasFailure()) return;
        }
      }
    }
  }
}

// The on-the-fly constants are derived once per thread and reused while the frequencies, angle
// mode and position scale stay the same (rope-inl.h, AngleConstantsFor): a plan whose
// frequencies change in place (same vector, same address), then the scale, then the angle
// mode, must each be rotated with the new values (the SIMD result stays within 2 f32 ulp of
// the double-precision reference; a stale constant would be off by far more).
TEST_P(TargetTest, OnTheFlyConstantsFollowChangedFrequencies) {
  FrequencyPlan plan = config_plan_128(10000.0, 4096);
  const std::int64_t T = 3, H = 2, D = 128;
  std::vector<float> in(static_cast<std::size_t>(T * H * D));
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = std::sin(0.37f * static_cast<float>(i));
  std::vector<float> simd(in.size()), ref(in.size());
  const Positions pos = Positions::offset(100000);
  auto run_both = [&](const ApplyOptions& base, const char* what) {
    for (const Backend b : {Backend::kSimd, Backend::kReference}) {
      ApplyOptions o = base;
      o.backend = b;
      std::vector<float>& out = b == Backend::kSimd ? simd : ref;
      apply_rope(plan, ConstTensorView::contiguous(in.data(), DType::kF32, T, H, D),
                 TensorView::contiguous(out.data(), DType::kF32, T, H, D), ConstTensorView{},
                 TensorView{}, pos, o);
    }
    for (std::size_t i = 0; i < in.size(); ++i)
      ASSERT_NEAR(simd[i], ref[i], 2.5e-7 * std::max(1.0f, std::fabs(ref[i])))
          << what << ", element " << i;
  };
  ApplyOptions o;
  o.angles = AngleMode::kExact;
  run_both(o, "first call");
  const float* const address = plan.inv_freq.data();
  for (float& f : plan.inv_freq) f *= 0.75f;
  ASSERT_EQ(plan.inv_freq.data(), address);
  run_both(o, "frequencies changed in place");
  plan.inv_freq[17] *= 1.5f;  // one frequency only
  run_both(o, "one frequency changed");
  o.position_scale = 0.25;
  run_both(o, "position scale");
  o.position_scale = 1.0;
  o.angles = AngleMode::kHf;
  run_both(o, "hf angles");
  o.angles = AngleMode::kExact;
  run_both(o, "exact angles again");
}

// A one-token call on the fly reuses its thread's last row when the position and settings are
// the same (rope-inl.h, AngleConstants): every one-token call here must equal, bit for bit, the
// first token of a two-token call at the same position (computed without that row), through a
// sequence that returns to earlier positions and changes one setting at a time (direction,
// folded attention factor, angle mode, frequencies in place, position scale). A row kept across
// any of these changes differs from the two-token call in many elements.
TEST_P(TargetTest, OneTokenRowFollowsPositionAndSettings) {
  FrequencyPlan plan = config_plan_128(500000.0, 131072);
  plan.attention_factor = 1.25;
  const std::int64_t H = 3, D = 128;
  std::vector<float> in(static_cast<std::size_t>(2 * H * D));
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = std::cos(0.29f * static_cast<float>(i));
  std::vector<float> one(static_cast<std::size_t>(H * D)), two(in.size());
  auto check = [&](std::int64_t p, const ApplyOptions& base, const std::string& what) {
    ApplyOptions o = base;
    o.backend = Backend::kSimd;
    apply_rope(plan, ConstTensorView::contiguous(in.data(), DType::kF32, 1, H, D),
               TensorView::contiguous(one.data(), DType::kF32, 1, H, D), ConstTensorView{},
               TensorView{}, Positions::offset(p), o);
    apply_rope(plan, ConstTensorView::contiguous(in.data(), DType::kF32, 2, H, D),
               TensorView::contiguous(two.data(), DType::kF32, 2, H, D), ConstTensorView{},
               TensorView{}, Positions::offset(p), o);
    int differ = 0;
    for (std::size_t i = 0; i < one.size(); ++i)
      differ += std::bit_cast<std::uint32_t>(one[i]) != std::bit_cast<std::uint32_t>(two[i]);
    EXPECT_EQ(differ, 0) << what << " at position " << p;
  };
  for (const AngleMode angles : {AngleMode::kExact, AngleMode::kHf}) {
    ApplyOptions o;
    o.angles = angles;
    const std::string mode = angles == AngleMode::kExact ? "exact: " : "hf: ";
    for (const std::int64_t p : {std::int64_t{12345}, std::int64_t{12345}, std::int64_t{12346},
                                 std::int64_t{12345}, std::int64_t{-7}, std::int64_t{0}})
      check(p, o, mode + "positions");
    o.direction = Direction::kInverse;
    check(12345, o, mode + "inverse");
    o.direction = Direction::kForward;
    check(12345, o, mode + "forward again");
    o.fold_attention_factor = false;
    check(12345, o, mode + "attention factor not folded");
    o.fold_attention_factor = true;
    check(12345, o, mode + "attention factor folded");
    o.position_scale = 0.5;
    check(12345, o, mode + "position scale 0.5");
    o.position_scale = 1.0;
    check(12345, o, mode + "position scale 1");
    for (float& f : plan.inv_freq) f *= 0.5f;
    check(12345, o, mode + "frequencies halved in place");
    for (float& f : plan.inv_freq) f *= 2.0f;
    check(12345, o, mode + "frequencies restored");
  }
}

// The on-the-fly cos/sin themselves, read through the rotation of unit pairs (x_a = 1, x_b = 0
// gives y_a = c and y_b = s exactly in f32): within 1e-7 (measured: 6e-8) of the true cos/sin
// of the exact angle p·inv_freq at positions up to ±(2^31 − 1), for plain and scaled
// multipliers. Truth: the angle in turns from binary128 (1/(2π) to 192 bits), cos/sin in long
// double. An error of 2^-56 turn in the per-frequency turns T (dropping one term of its
// double-double product) fails it.
TEST_P(TargetTest, OnTheFlyCosSinAtExtremePositions) {
  using F128 = __float128;
  const F128 two64 = static_cast<F128>(18446744073709551616.0);
  const F128 inv_two_pi = (static_cast<F128>(0xA2F9836E4E441529ULL) / two64 +
                           static_cast<F128>(0xFC2757D1F534DDC0ULL) / two64 / two64 +
                           static_cast<F128>(0xDB6295993C439041ULL) / two64 / two64 / two64) /
                          4;
  const FrequencyPlan plan = config_plan_128(500000.0, 131072);
  const int pairs = 64;
  const std::vector<std::int64_t> ids = {0,
                                         1,
                                         -1,
                                         4093,
                                         131071,
                                         16777217,
                                         1073741823 + 12345,
                                         2147483647,
                                         -2147483647,
                                         2147483647 - 4096};
  const auto tokens = static_cast<std::int64_t>(ids.size());
  std::vector<float> x(static_cast<std::size_t>(tokens * 128), 0.0f), y(x.size());
  for (std::int64_t t = 0; t < tokens; ++t)
    for (int i = 0; i < pairs; ++i)
      x[static_cast<std::size_t>(t * 128 + i)] = 1.0f;  // (a, b) = (1, 0)
  for (const double scale : {1.0, 0.25, 1.0 / 3.0}) {
    ApplyOptions o;
    o.backend = Backend::kSimd;
    o.position_scale = scale;
    o.fold_attention_factor = false;
    apply_rope(plan, ConstTensorView::contiguous(x.data(), DType::kF32, tokens, 1, 128),
               TensorView::contiguous(y.data(), DType::kF32, tokens, 1, 128), ConstTensorView(),
               TensorView(), Positions::per_token(std::span<const std::int64_t>(ids)), o);
    double worst = 0;
    for (std::int64_t t = 0; t < tokens; ++t) {
      for (int i = 0; i < pairs; ++i) {
        double m = 0, m_lo = 0;
        detail::exact_multiplier(plan.inv_freq[static_cast<std::size_t>(i)], scale, m, m_lo);
        F128 turns = static_cast<F128>(ids[static_cast<std::size_t>(t)]) *
                     ((static_cast<F128>(m) + static_cast<F128>(m_lo)) * inv_two_pi);
        turns -=
            static_cast<F128>(static_cast<std::int64_t>(turns));  // |turns| < 2^31: frac in (−1, 1)
        const long double angle =
            static_cast<long double>(turns) * 6.283185307179586476925286766559L;
        const double c = static_cast<double>(std::cos(angle)),
                     sn = static_cast<double>(std::sin(angle));
        const double ec = std::fabs(y[static_cast<std::size_t>(t * 128 + i)] - c);
        const double es = std::fabs(y[static_cast<std::size_t>(t * 128 + pairs + i)] - sn);
        worst = std::max({worst, ec, es});
        ASSERT_LE(std::max(ec, es), 1e-7)
            << "p = " << ids[static_cast<std::size_t>(t)] << ", pair " << i << ", scale " << scale;
      }
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", worst);
    RecordProperty("worst_cos_sin_error_scale_" + std::to_string(scale), buf);
  }
}

// Prints the observed error statistics once all tests ran.
// OutputStores::kNonTemporal writes out-of-place results with non-temporal stores where the row
// kernel has that form and every output row is 64-byte aligned (rope-inl.h: ShapeMayStream). Each
// call here must equal, bit for bit, the same call with kRegular: every dtype and layout,
// whole-token widths and partial rotary, cos/sin from a table and on the fly, q and k together,
// rows that the bf16 hardware kernel redoes after streaming them (a row of zeros), outputs that are
// not aligned (regular stores), and calls large enough to split over two threads (each fences its
// own stores).
TEST_P(TargetTest, NonTemporalOutputIsBitIdenticalToRegularStores) {
  const int threads_before = default_pool().size();
  set_default_threads(2);
  std::mt19937 rng(41);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  // A 64-byte aligned span of `bytes` inside `storage`, shifted by `skew` bytes.
  auto aligned = [](std::vector<std::uint8_t>& storage, std::size_t bytes, std::size_t skew) {
    storage.assign(bytes + 128, 0);
    const auto addr = reinterpret_cast<std::uintptr_t>(storage.data());
    return storage.data() + ((64 - addr % 64) % 64) + skew;
  };
  const std::int64_t KH = 2;
  // bf16 with the AVX512_BF16 kernels and with the software rounding (AVX3 only differs).
  for (const auto& [dt, bf16_hardware] :
       {std::pair{DType::kF32, true}, std::pair{DType::kBF16, true}, std::pair{DType::kBF16, false},
        std::pair{DType::kF16, true}}) {
    detail::set_avx512_bf16_enabled(bf16_hardware);
    const std::size_t es = dtype_size(dt);
    for (const PairLayout layout :
         {PairLayout::kHalf, PairLayout::kInterleaved, PairLayout::kInterleavedToHalf}) {
      for (const auto& [D, R] : {std::pair{128, 128}, std::pair{64, 64}, std::pair{32, 32},
                                 std::pair{256, 256}, std::pair{160, 128}}) {
        const FrequencyPlan plan = power_plan(D, R, layout, 500000.0);
        const CosSinCache cache(plan, AngleMode::kExact, true, 4096);
        // 1100 tokens of 3 q heads: 0.4-3.4 MB, over the size that splits work over threads.
        for (const std::int64_t T : {std::int64_t{5}, std::int64_t{1100}}) {
          const std::int64_t H = 3;
          const auto q_elems = static_cast<std::size_t>(T * H * D);
          const auto k_elems = static_cast<std::size_t>(T * KH * D);
          std::vector<std::uint8_t> q_in(q_elems * es), k_in(k_elems * es);
          for (std::size_t e = 0; e < q_elems + k_elems; ++e) {
            // Token 3, q head 1: zeros (the bf16 hardware kernel redoes that token exactly).
            const bool zero = e < q_elems && e / static_cast<std::size_t>(D) == 3 * 3 + 1;
            const float v = zero ? 0.0f : u(rng);
            std::uint8_t* dst =
                e < q_elems ? q_in.data() + e * es : k_in.data() + (e - q_elems) * es;
            const std::uint16_t half =
                dt == DType::kBF16 ? f32_to_bf16(v).bits : f32_to_f16(v).bits;
            std::memcpy(dst, dt == DType::kF32 ? static_cast<const void*>(&v) : &half, es);
          }
          for (const bool from_cache : {true, false}) {
            for (const std::size_t skew : {std::size_t{0}, es}) {
              std::vector<std::uint8_t> storage[2][2];
              std::vector<std::uint8_t> result[2][2];
              for (const bool stream : {false, true}) {
                std::uint8_t* q_out = aligned(storage[stream][0], q_in.size(), skew);
                std::uint8_t* k_out = aligned(storage[stream][1], k_in.size(), skew);
                ApplyOptions o;
                o.backend = Backend::kSimd;
                o.cache = from_cache ? &cache : nullptr;
                o.output_stores = stream ? OutputStores::kNonTemporal : OutputStores::kRegular;
                apply_rope(plan, ConstTensorView::contiguous(q_in.data(), dt, T, H, D),
                           TensorView::contiguous(q_out, dt, T, H, D),
                           ConstTensorView::contiguous(k_in.data(), dt, T, KH, D),
                           TensorView::contiguous(k_out, dt, T, KH, D), Positions::offset(7), o);
                result[stream][0].assign(q_out, q_out + q_in.size());
                result[stream][1].assign(k_out, k_out + k_in.size());
              }
              for (int t = 0; t < 2; ++t) {
                EXPECT_TRUE(result[0][t] == result[1][t])
                    << (t == 0 ? "q" : "k") << ": dtype " << dtype_name(dt) << ", layout "
                    << static_cast<int>(layout) << ", D=" << D << " R=" << R << ", T=" << T
                    << (bf16_hardware ? "" : " (software rounding)")
                    << (from_cache ? ", table" : ", on the fly") << ", output skew " << skew;
              }
            }
          }
        }
      }
    }
  }
  detail::set_avx512_bf16_enabled(true);
  set_default_threads(threads_before);
}

class StatsPrinter : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const DType t : kTypes) {
      const Stats& st = g_stats[static_cast<int>(t)];
      if (st.compared == 0) continue;
      std::printf(
          "[ stats ] out %s: %lld outputs compared, %lld differ from the reference, worst "
          "|err| = 1 ulp + %.3f x 2^-24*A*(|xa|+|xb|)\n",
          std::string(dtype_name(t)).c_str(), static_cast<long long>(st.compared),
          static_cast<long long>(st.mismatched), st.worst);
    }
  }
};
[[maybe_unused]] ::testing::Environment* const g_stats_env =
    ::testing::AddGlobalTestEnvironment(new StatsPrinter);

INSTANTIATE_TEST_SUITE_P(Targets, TargetTest, ::testing::ValuesIn(supported_targets()),
                         [](const auto& param_info) { return param_info.param; });

// ---- conversions ------------------------------------------------------------------------------
std::vector<float> conversion_inputs() {
  std::vector<float> v;
  for (std::uint32_t h = 0; h < 65536; ++h) {  // every f16 value, its neighbours and midpoints
    const float f = f16_to_f32(F16{static_cast<std::uint16_t>(h)});
    v.push_back(f);
    v.push_back(std::nextafter(f, 1e30f));
    v.push_back(std::nextafter(f, -1e30f));
    const float g = f16_to_f32(F16{static_cast<std::uint16_t>(h + 1)});
    if (std::isfinite(f) && std::isfinite(g))
      v.push_back(static_cast<float>((static_cast<double>(f) + g) / 2));
  }
  for (std::uint32_t h = 0; h < 65536; ++h) {  // every bf16 value and its ties
    const std::uint32_t u = h << 16;
    for (const std::uint32_t low : {0u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu})
      v.push_back(std::bit_cast<float>(u | low));
  }
  std::mt19937 rng(3);
  for (int i = 0; i < 200000; ++i)
    v.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(rng())));
  for (const float f :
       {65504.0f, 65519.99f, 65520.0f, 65536.0f, 1e-8f, 2.98e-8f, 2.9802322e-8f,
        std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
        std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min()})
    v.push_back(f);
  return v;
}

TEST_P(TargetTest, VectorConversionsAreRneAndMatchScalar) {
  const std::vector<float> in = conversion_inputs();
  std::vector<std::uint16_t> bf(in.size()), hf(in.size());
  detail::simd_f32_to_bf16(in.data(), bf.data(), in.size());
  detail::simd_f32_to_f16(in.data(), hf.data(), in.size());
  std::size_t bad_bf = 0, bad_hf = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (bf[i] != f32_to_bf16(in[i]).bits && bad_bf++ < 5)
      ADD_FAILURE() << "bf16 of " << std::hex << std::bit_cast<std::uint32_t>(in[i]) << ": "
                    << bf[i] << " vs " << f32_to_bf16(in[i]).bits;
    const std::uint16_t want = f32_to_f16(in[i]).bits;
    // NaN: both quiet NaN with the same sign (payload bits may differ between F16C and dtype.h).
    const bool nan = std::isnan(in[i]);
    const bool ok = nan ? ((hf[i] & 0x7E00u) == 0x7E00u && (hf[i] & 0x8000u) == (want & 0x8000u))
                        : hf[i] == want;
    if (!ok && bad_hf++ < 5)
      ADD_FAILURE() << "f16 of " << std::hex << std::bit_cast<std::uint32_t>(in[i]) << ": " << hf[i]
                    << " vs " << want;
  }
  EXPECT_EQ(bad_bf, 0u);
  EXPECT_EQ(bad_hf, 0u);

  std::vector<std::uint16_t> all(65536);
  std::iota(all.begin(), all.end(), std::uint16_t{0});
  std::vector<float> back(all.size());
  detail::simd_f16_to_f32(all.data(), back.data(), all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    const float want = f16_to_f32(F16{all[i]});
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(back[i])) << i;
    } else {
      EXPECT_EQ(std::bit_cast<std::uint32_t>(back[i]), std::bit_cast<std::uint32_t>(want)) << i;
    }
  }
}

// ---- cos/sin table -----------------------------------------------------------------------------
TEST_P(TargetTest, CosSinTableIsCorrectlyRoundedAlmostEverywhere) {
  std::vector<float> inv;
  for (int i = 0; i < 37; ++i) inv.push_back(static_cast<float>(std::pow(10000.0, -2.0 * i / 74)));
  for (const AngleMode mode : {AngleMode::kExact, AngleMode::kHf}) {
    // n < 64 takes the direct evaluation, longer runs the exact angle-addition path (exact
    // mode), starting on and off its 32-position blocks.
    for (const auto& [p0, n] : {std::pair{std::int64_t{0}, std::int64_t{50}},
                                std::pair{std::int64_t{0}, std::int64_t{300}},
                                std::pair{std::int64_t{5}, std::int64_t{150}},
                                std::pair{std::int64_t{131007}, std::int64_t{99}},
                                std::pair{kMaxAbsPosition - 199, std::int64_t{200}}}) {
      const std::int64_t stride = 40;
      std::vector<float> c(static_cast<std::size_t>(n * stride), -7.0f), s(c.size(), -7.0f);
      detail::simd_fill_cos_sin(inv.data(), 37, mode, 1.25, p0, n, c.data(), s.data(), stride);
      std::int64_t off_by_one = 0;
      for (std::int64_t j = 0; j < n; ++j) {
        for (int i = 0; i < 37; ++i) {
          double cd = 0, sd = 0;
          const std::int64_t p = p0 + j;
          if (mode == AngleMode::kHf) {
            const double th =
                static_cast<float>(static_cast<float>(p) * inv[static_cast<std::size_t>(i)]);
            cd = std::cos(th);
            sd = std::sin(th);
          } else {
            // exact p·inv via FMA two-product, as the reference does
            const double hi = static_cast<double>(p) * inv[static_cast<std::size_t>(i)];
            const double lo =
                std::fma(static_cast<double>(p), inv[static_cast<std::size_t>(i)], -hi);
            cd = std::cos(hi) - lo * std::sin(hi);
            sd = std::sin(hi) + lo * std::cos(hi);
          }
          const float wc = static_cast<float>(1.25 * cd), ws = static_cast<float>(1.25 * sd);
          const float gc = c[static_cast<std::size_t>(j * stride + i)],
                      gs = s[static_cast<std::size_t>(j * stride + i)];
          for (const auto& [g, w] : {std::pair{gc, wc}, std::pair{gs, ws}}) {
            const double ulps =
                std::fabs(static_cast<double>(g) - w) / test::ulp_of(DType::kF32, w);
            EXPECT_LE(ulps, 1.0) << "p=" << p << " i=" << i;
            if (g != w) ++off_by_one;
          }
        }
        for (std::int64_t i = 37; i < stride; ++i) {  // row padding untouched
          ASSERT_EQ(c[static_cast<std::size_t>(j * stride + i)], -7.0f);
          ASSERT_EQ(s[static_cast<std::size_t>(j * stride + i)], -7.0f);
        }
      }
      EXPECT_LE(off_by_one, 2) << "values not correctly rounded (p0=" << p0 << ", n=" << n << ")";
    }
  }
}

// ---- targets ------------------------------------------------------------------------------------
TEST(SimdTargets, ForceAndRestore) {
  const auto targets = supported_targets();
  ASSERT_FALSE(targets.empty());
  force_target("auto");  // whatever ROPEKIT_TARGET the environment of the test run sets
  const std::string best = active_target();
  EXPECT_EQ(best, targets.front());
  for (const std::string& t : targets) {
    force_target(t);
    EXPECT_EQ(active_target(), t);
    std::string lower = t;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    force_target(lower);  // case-insensitive
    EXPECT_EQ(active_target(), t);
  }
  force_target("auto");
  EXPECT_EQ(active_target(), best);
  EXPECT_THROW(force_target("NEON9000"), ArgumentError);
  for (const SimdTarget& t : compiled_targets())
    if (!t.supported) {
      EXPECT_THROW(force_target(t.name), ArgumentError);
    }
  force_target("");
  EXPECT_EQ(active_target(), best);
}

// bf16 -> bf16 with the software rounding on every target (on AVX3 with AVX512_BF16 the
// hardware conversion is used otherwise), and with subnormal results, where the hardware
// conversion flushes to zero and the kernels must fall back to the software rounding.
TEST_P(TargetTest, Bf16SoftwareRoundingAndSubnormalResults) {
  std::mt19937_64 rng(11);
  for (const bool hardware : {true, false}) {
    detail::set_avx512_bf16_enabled(hardware);
    for (const PairLayout layout : {PairLayout::kHalf, PairLayout::kInterleaved}) {
      for (const double scale : {1.0, std::ldexp(1.0, -125), std::ldexp(1.0, -133)}) {
        Case c;
        c.in = c.out = DType::kBF16;
        c.layout = layout;
        c.head_dim = 256;
        c.rotary_dim = 192;
        c.tokens = 17;
        c.q_heads = 3;
        c.k_heads = 2;
        c.positions = 3;
        c.input_scale = scale;
        c.in_place = scale < 1e-39;
        c.seed = rng();
        run_case(c);
      }
    }
  }
  detail::set_avx512_bf16_enabled(true);
}

// The AVX512_BF16 kernels (hardware RNE conversion, which flushes subnormal results) against
// the software rounding of the same target, bit for bit: tokens of ordinary values, tokens with
// a row of zeros or a single zero (the ±0 test that sends a row or token to the exact pass), rows
// whose results are subnormal (flushed by the hardware, so that pass must round them in
// software), in place and out of place, both layouts, with and without tails. On CPUs or
// targets without the extension both runs take the software path and agree trivially.
TEST_P(TargetTest, Bf16HardwareConversionIsBitIdenticalToSoftware) {
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  const std::int64_t T = 7, H = 5;
  for (const PairLayout layout : {PairLayout::kHalf, PairLayout::kInterleaved}) {
    // 64, 128, 256 (and 160 with 128 rotated) take the whole-token kernel out of place; 192/160
    // the row-by-row one.
    for (const auto& [D, R] : {std::pair{128, 128}, std::pair{192, 160}, std::pair{64, 64},
                               std::pair{256, 256}, std::pair{160, 128}}) {
      const FrequencyPlan plan = power_plan(D, R, layout, 10000.0);
      std::vector<std::uint16_t> x(static_cast<std::size_t>(T * H * D));
      for (std::int64_t row = 0; row < T * H; ++row) {
        // Tokens 2, 3 ordinary (the whole-token kernel keeps its fast result). In tokens 4, 5, 6
        // head 2 is a row of zeros, a row with one zero, a row of tiny values (subnormal
        // results) respectively, so that token is redone exactly. Tokens 0 and 1 are at
        // position 0 (cos 1, sin 0, y = x): token 0 has subnormal results in the second half
        // only (half-split: x_b tiny) or in the second 32-element block only (interleaved),
        // token 1 in the first half / block only: each of the kernel's two ±0 test chains must
        // catch its own.
        const std::int64_t t = row / H, h = row % H;
        const int kind = h != 2   ? 0
                         : t <= 1 ? static_cast<int>(5 + t)
                         : t >= 4 ? static_cast<int>(t - 2)
                                  : 0;
        for (std::int64_t d = 0; d < D; ++d) {
          float v = u(rng);
          if (kind == 2) v = 0.0f;
          if (kind == 3 && d == 7) v = -0.0f;
          if (kind == 4) v = std::ldexp(v, -128);
          const bool second = layout == PairLayout::kHalf ? d >= R / 2 && d < R : d >= 32 && d < 64;
          const bool first = layout == PairLayout::kHalf ? d < R / 2 : d < 32;
          if ((kind == 5 && second) || (kind == 6 && first)) v = std::ldexp(v, -128);
          x[static_cast<std::size_t>(row * D + d)] = f32_to_bf16(v).bits;
        }
      }
      const std::vector<std::int64_t> ids = {0, 0, 1, 2, 3, 1000, 1001};
      const Positions pos = Positions::per_token(std::span<const std::int64_t>(ids));
      for (const bool in_place : {false, true}) {
        std::vector<std::uint16_t> got[2];
        for (const bool hardware : {false, true}) {
          detail::set_avx512_bf16_enabled(hardware);
          std::vector<std::uint16_t> in = x, out(x.size(), 0xFFFF);
          std::vector<std::uint16_t>& dst = in_place ? in : out;
          ApplyOptions o;
          o.backend = Backend::kSimd;
          apply_rope(plan, ConstTensorView::contiguous(in.data(), DType::kBF16, T, H, D),
                     TensorView::contiguous(dst.data(), DType::kBF16, T, H, D), ConstTensorView{},
                     TensorView{}, pos, o);
          got[hardware ? 1 : 0] = dst;
        }
        detail::set_avx512_bf16_enabled(true);
        std::int64_t differ = 0, flushable = 0;
        for (std::size_t e = 0; e < x.size(); ++e) {
          differ += got[0][e] != got[1][e];
          flushable += (got[0][e] & 0x7F80) == 0 && (got[0][e] & 0x7F) != 0;  // subnormal bf16
        }
        EXPECT_EQ(differ, 0) << "D=" << D << " R=" << R << " layout " << static_cast<int>(layout)
                             << (in_place ? " in place" : " out of place");
        EXPECT_GT(flushable, 0) << "the case must produce subnormal results";
      }
    }
  }
}

// q and k of different input dtypes (each through its own dtype's kernel), k only, q only.
TEST_P(TargetTest, MixedInputDtypesAndSingleTensors) {
  FrequencyPlan plan = power_plan(96, 64, PairLayout::kHalf, 10000.0);
  plan.attention_factor = 1.5;
  const std::int64_t T = 9, Hq = 3, Hk = 2, D = 96;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> q(static_cast<std::size_t>(T * Hq * D));
  std::vector<std::uint16_t> k(static_cast<std::size_t>(T * Hk * D));
  for (float& v : q) v = u(rng);
  for (std::uint16_t& v : k) v = f32_to_bf16(u(rng)).bits;
  const std::vector<std::int64_t> ids = {5, -3, 100000, 7, 0, 2147483647, -2147483647, 12, 4096};
  const Positions pos = Positions::per_token(std::span<const std::int64_t>(ids));
  for (const int which : {0, 1, 2}) {  // 0: q and k, 1: q only, 2: k only
    std::vector<std::uint16_t> q_ref(q.size()), q_simd(q.size());  // q out as f16
    std::vector<float> k_ref(k.size()), k_simd(k.size());          // k out as f32
    for (const bool simd : {false, true}) {
      ApplyOptions o;
      o.backend = simd ? Backend::kSimd : Backend::kReference;
      const ConstTensorView qi = which == 2
                                     ? ConstTensorView{}
                                     : ConstTensorView::contiguous(q.data(), DType::kF32, T, Hq, D);
      const TensorView qo = which == 2 ? TensorView{}
                                       : TensorView::contiguous((simd ? q_simd : q_ref).data(),
                                                                DType::kF16, T, Hq, D);
      const ConstTensorView ki =
          which == 1 ? ConstTensorView{}
                     : ConstTensorView::contiguous(k.data(), DType::kBF16, T, Hk, D);
      const TensorView ko = which == 1 ? TensorView{}
                                       : TensorView::contiguous((simd ? k_simd : k_ref).data(),
                                                                DType::kF32, T, Hk, D);
      if (which == 2) {
        // k only: q is an empty view with the token count (the API takes tokens from q)
        apply_rope(plan, ConstTensorView(nullptr, DType::kF32, T, 0, D, 0, 0, 1),
                   TensorView{nullptr, DType::kF32, T, 0, D, 0, 0, 1}, ki, ko, pos, o);
      } else {
        apply_rope(plan, qi, qo, ki, ko, pos, o);
      }
    }
    for (std::size_t i = 0; i < q.size() && which != 2; ++i) {
      const double r = f16_to_f32(F16{q_ref[i]}), g = f16_to_f32(F16{q_simd[i]});
      ASSERT_LE(std::fabs(g - r), test::ulp_of(DType::kF16, r) + kF32Factor * 1.5 * 2.0) << i;
    }
    for (std::size_t i = 0; i < k.size() && which != 1; ++i) {
      ASSERT_LE(std::fabs(static_cast<double>(k_simd[i]) - k_ref[i]),
                test::ulp_of(DType::kF32, k_ref[i]) + kF32Factor * 1.5 * 2.0)
          << i;
    }
  }
}

// ---- declined jobs ----------------------------------------------------------------------------
TEST(SimdBackend, DeclinesTransformersRoundingAndHugeHeads) {
  FrequencyPlan plan;
  plan.head_dim = plan.rotary_dim = 8;
  plan.inv_freq = {1.0f, 0.1f, 0.01f, 0.001f};
  std::vector<std::uint16_t> x(8, 0x3F80);
  const TensorView q = TensorView::contiguous(x.data(), DType::kBF16, 1, 1, 8);
  ApplyOptions o;
  o.backend = Backend::kSimd;
  o.rounding = Rounding::kTransformers;
  EXPECT_THROW(apply_rope(plan, q, TensorView{}, Positions::offset(0), o), ArgumentError);
  o.backend = Backend::kAuto;  // falls back to the reference
  EXPECT_NO_THROW(apply_rope(plan, q, TensorView{}, Positions::offset(0), o));

  FrequencyPlan big;
  big.head_dim = big.rotary_dim = 2 * (detail::kMaxPairs + 1);
  big.inv_freq.assign(static_cast<std::size_t>(detail::kMaxPairs + 1), 0.5f);
  std::vector<float> y(static_cast<std::size_t>(big.head_dim), 1.0f);
  const TensorView qb = TensorView::contiguous(y.data(), DType::kF32, 1, 1, big.head_dim);
  ApplyOptions ob;
  EXPECT_NO_THROW(apply_rope(big, qb, TensorView{}, Positions::offset(3), ob));
  ob.backend = Backend::kSimd;
  EXPECT_THROW(apply_rope(big, qb, TensorView{}, Positions::offset(3), ob), ArgumentError);
}

// ---- thread pool --------------------------------------------------------------------------------
TEST(ThreadPool, RunsEveryChunkOnceAndRethrows) {
  for (const int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (const std::int64_t chunks :
         {std::int64_t{0}, std::int64_t{1}, std::int64_t{2}, std::int64_t{7}, std::int64_t{1000}}) {
      for (int rep = 0; rep < 20; ++rep) {
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(chunks));
        pool.parallel_for(
            chunks, [&](std::int64_t c) { hits[static_cast<std::size_t>(c)].fetch_add(1); },
            rep % 3);
        for (std::int64_t c = 0; c < chunks; ++c)
          ASSERT_EQ(hits[static_cast<std::size_t>(c)].load(), 1);
      }
    }
    EXPECT_THROW(pool.parallel_for(50,
                                   [](std::int64_t c) {
                                     if (c == 17) throw std::runtime_error("chunk 17");
                                   }),
                 std::runtime_error);
    // still usable afterwards, and nested calls run inline
    std::atomic<int> total{0};
    pool.parallel_for(
        4, [&](std::int64_t) { pool.parallel_for(3, [&](std::int64_t) { total.fetch_add(1); }); });
    EXPECT_EQ(total.load(), 12);
  }
  EXPECT_THROW(ThreadPool(0), ArgumentError);
}

TEST(ThreadPool, DefaultPoolResizes) {
  set_default_threads(3);
  EXPECT_EQ(default_pool().size(), 3);
  set_default_threads(1);
  EXPECT_EQ(default_pool().size(), 1);
  EXPECT_THROW(set_default_threads(0), ArgumentError);
}

}  // namespace
}  // namespace ropekit
