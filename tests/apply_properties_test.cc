// Property tests of apply_rope on random shapes, for Backend::kReference and Backend::kAuto
// (the SIMD kernels when compiled in, else the reference).
//
// Every random problem draws head_dim ∈ {2, 8, 64, 80, 96, 128, 256}, a full or partial
// rotary width, a pair layout (half, interleaved, interleaved-to-half), q and k head counts
// (odd counts, GQA ratios), token counts (1, odd, …), dtypes in and out (f32/f16/bf16) and an
// attention factor. Results are compared with an oracle written here in long double
// (x87: 64-bit mantissa, so p·inv_freq with |p| < 2^31 and a 24-bit inv_freq is exact, and
// glibc's cosl/sinl reduce the argument exactly), or with each other.
//
// Every tensor lives in a sentinel-filled buffer (signalling-NaN bit patterns no finite
// rotation can produce) with guard regions before, after and between strided elements;
// after every call all slots outside the output views must still hold the sentinel, and input
// buffers must be byte-for-byte unchanged.
//
// Accuracy bounds used below (docs/numerics.md), with mag = A·(|x_a| + |x_b|) of the pair:
//   kReference            every output is the correctly rounded value of the exact result of its
//                         (dtype-rounded) inputs; the only exceptions allowed are results within
//                         1e-14·mag of a rounding tie (the reference computes in double).
//   kAuto, f32 out        |y − exact| ≤ ½ ulp(y) + 4·2^-24·mag
//   kAuto, f16/bf16 out   |y − exact| ≤ 1 ulp(y) of the output dtype + 4·2^-24·mag·[cancellation
//                         term, see kAutoCancellation]
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iterator>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "ropekit/ropekit.h"
#include "test_util.h"

namespace ropekit {
namespace {

using LD = long double;
constexpr double kU32 = 0x1p-24;  // unit roundoff of f32

const DType kDTypes[] = {DType::kF32, DType::kF16, DType::kBF16};
const PairLayout kLayouts[] = {PairLayout::kHalf, PairLayout::kInterleaved,
                               PairLayout::kInterleavedToHalf};
const int kHeadDims[] = {2, 8, 64, 80, 96, 128, 256};

std::string name_of(Backend b) { return b == Backend::kReference ? "reference" : "auto"; }
std::string name_of(PairLayout l) {
  return l == PairLayout::kHalf          ? "half"
         : l == PairLayout::kInterleaved ? "interleaved"
                                         : "interleaved_to_half";
}

std::string hex(std::uint32_t u) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%X", u);
  return buf;
}

std::string hexf(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

// ---- sentinel-guarded strided buffers --------------------------------------------------------

enum class Kind { kContig, kHeadsMajor, kPadded, kDimStride2, kNegToken, kNegDim, kReversed };
const Kind kKinds[] = {Kind::kContig,   Kind::kHeadsMajor, Kind::kPadded,  Kind::kDimStride2,
                       Kind::kNegToken, Kind::kNegDim,     Kind::kReversed};

std::uint32_t sentinel(DType t) {
  switch (t) {
    case DType::kF32:
      return 0x7FBADBADu;  // signalling NaN
    case DType::kF16:
      return 0x7D5Au;  // signalling NaN
    case DType::kBF16:
      return 0x7F9Au;  // signalling NaN
  }
  return 0;
}

// One [tokens, heads, head_dim] view inside a buffer of element slots.
struct Buf {
  DType dt = DType::kF32;
  std::int64_t nt = 0, nh = 0, nd = 0, st = 0, sh = 0, sd = 1;
  std::int64_t base = 0;  // slot of element (0, 0, 0)
  std::int64_t slots = 0;
  std::vector<std::byte> mem;

  Buf() = default;
  Buf(DType t, std::int64_t tokens, std::int64_t heads, std::int64_t hd, Kind kind,
      std::int64_t guard = 9)
      : dt(t), nt(tokens), nh(heads), nd(hd) {
    switch (kind) {
      case Kind::kContig:
        sd = 1;
        sh = nd;
        st = nh * nd;
        break;
      case Kind::kHeadsMajor:
        sd = 1;
        st = nd;
        sh = nt * nd;
        break;
      case Kind::kPadded:
        sd = 1;
        sh = nd + 3;
        st = nh * (nd + 3) + 5;
        break;
      case Kind::kDimStride2:
        sd = 2;
        sh = 2 * nd + 1;
        st = nh * (2 * nd + 1) + 2;
        break;
      case Kind::kNegToken:
        sd = 1;
        sh = nd;
        st = -(nh * nd + 2);
        break;
      case Kind::kNegDim:
        sd = -1;
        sh = nd + 1;
        st = nh * (nd + 1) + 1;
        break;
      case Kind::kReversed:
        sd = -2;
        sh = -(2 * nd + 1);
        st = -(nh * (2 * nd + 1) + 1);
        break;
    }
    std::int64_t lo = 0, hi = 0;
    for (const auto& [n, s] : {std::pair{nt, st}, std::pair{nh, sh}, std::pair{nd, sd}}) {
      const std::int64_t span = (std::max<std::int64_t>(n, 1) - 1) * s;
      (span < 0 ? lo : hi) += span;
    }
    base = guard - lo;
    slots = hi - lo + 1 + 2 * guard;
    mem.resize(static_cast<std::size_t>(slots * dtype_size(dt)));
    for (std::int64_t i = 0; i < slots; ++i) set_bits_at(i, sentinel(dt));
  }
  std::int64_t slot(std::int64_t t, std::int64_t h, std::int64_t d) const {
    return base + t * st + h * sh + d * sd;
  }
  static std::uint32_t bits_of(DType t, double v) {  // v rounded once to t
    switch (t) {
      case DType::kF32:
        return std::bit_cast<std::uint32_t>(static_cast<float>(v));
      case DType::kF16:
        return f64_to_f16(v).bits;
      case DType::kBF16:
        return f64_to_bf16(v).bits;
    }
    return 0;
  }
  static double value_of(DType t, std::uint32_t b) {
    switch (t) {
      case DType::kF32:
        return std::bit_cast<float>(b);
      case DType::kF16:
        return f16_to_f32(F16{static_cast<std::uint16_t>(b)});
      case DType::kBF16:
        return bf16_to_f32(BF16{static_cast<std::uint16_t>(b)});
    }
    return 0;
  }
  std::uint32_t bits_at(std::int64_t i) const {
    std::uint32_t u = 0;
    std::memcpy(&u, mem.data() + i * dtype_size(dt), static_cast<std::size_t>(dtype_size(dt)));
    return u;
  }
  void set_bits_at(std::int64_t i, std::uint32_t u) {
    std::memcpy(mem.data() + i * dtype_size(dt), &u, static_cast<std::size_t>(dtype_size(dt)));
  }
  std::int64_t size() const { return nt * nh * nd; }
  std::int64_t logical(std::int64_t t, std::int64_t h, std::int64_t d) const {
    return (t * nh + h) * nd + d;
  }
  void* data() { return mem.data() + base * dtype_size(dt); }
  const void* data() const { return mem.data() + base * dtype_size(dt); }
  TensorView view() { return TensorView{data(), dt, nt, nh, nd, st, sh, sd}; }
  ConstTensorView cview() const { return ConstTensorView{data(), dt, nt, nh, nd, st, sh, sd}; }

  // logical [t][h][d] access
  void fill(const std::vector<double>& x) {
    for (std::int64_t t = 0; t < nt; ++t)
      for (std::int64_t h = 0; h < nh; ++h)
        for (std::int64_t d = 0; d < nd; ++d)
          store_from_double(dt, mem.data() + slot(t, h, d) * dtype_size(dt),
                            x[static_cast<std::size_t>(logical(t, h, d))]);
  }
  void fill_bits(const std::vector<std::uint32_t>& b) {
    for (std::int64_t t = 0; t < nt; ++t)
      for (std::int64_t h = 0; h < nh; ++h)
        for (std::int64_t d = 0; d < nd; ++d)
          set_bits_at(slot(t, h, d), b[static_cast<std::size_t>(logical(t, h, d))]);
  }
  std::vector<double> values() const {
    std::vector<double> out(static_cast<std::size_t>(size()));
    for (std::int64_t t = 0; t < nt; ++t)
      for (std::int64_t h = 0; h < nh; ++h)
        for (std::int64_t d = 0; d < nd; ++d)
          out[static_cast<std::size_t>(logical(t, h, d))] =
              load_as_double(dt, mem.data() + slot(t, h, d) * dtype_size(dt));
    return out;
  }
  std::vector<std::uint32_t> bits() const {
    std::vector<std::uint32_t> out(static_cast<std::size_t>(size()));
    for (std::int64_t t = 0; t < nt; ++t)
      for (std::int64_t h = 0; h < nh; ++h)
        for (std::int64_t d = 0; d < nd; ++d)
          out[static_cast<std::size_t>(logical(t, h, d))] = bits_at(slot(t, h, d));
    return out;
  }
  // Slots outside the view still hold the sentinel; with `written`, no slot inside does.
  ::testing::AssertionResult guards_intact(bool written) const {
    std::vector<char> in_view(static_cast<std::size_t>(slots), 0);
    for (std::int64_t t = 0; t < nt; ++t)
      for (std::int64_t h = 0; h < nh; ++h)
        for (std::int64_t d = 0; d < nd; ++d) in_view[static_cast<std::size_t>(slot(t, h, d))] = 1;
    for (std::int64_t i = 0; i < slots; ++i) {
      const bool sent = bits_at(i) == sentinel(dt);
      if (!in_view[static_cast<std::size_t>(i)] && !sent)
        return ::testing::AssertionFailure()
               << "slot " << i << " outside the view was written (" << hex(bits_at(i)) << ")";
      if (in_view[static_cast<std::size_t>(i)] && written && sent)
        return ::testing::AssertionFailure() << "slot " << i << " inside the view was not written";
    }
    return ::testing::AssertionSuccess();
  }
};

// ---- random problems -------------------------------------------------------------------------

FrequencyPlan make_plan(int hd, int rot, double theta, PairLayout layout) {
  return build_frequency_plan(test::plain_config(hd, rot, layout, theta, 8192));
}

struct Spec {
  FrequencyPlan plan;
  PairLayout layout = PairLayout::kHalf;
  int qh = 1, kh = 1;
  std::int64_t tokens = 1;
  DType q_in = DType::kF32, q_out = DType::kF32, k_in = DType::kF32, k_out = DType::kF32;
  double amp = 1.0;
  std::string describe() const {
    return "hd=" + std::to_string(plan.head_dim) + " rot=" + std::to_string(plan.rotary_dim) + " " +
           name_of(layout) + " qh=" + std::to_string(qh) + " kh=" + std::to_string(kh) +
           " tokens=" + std::to_string(tokens) + " q " + std::string(dtype_name(q_in)) + "→" +
           std::string(dtype_name(q_out)) + " k " + std::string(dtype_name(k_in)) + "→" +
           std::string(dtype_name(k_out)) + " A=" + std::to_string(amp);
  }
};

template <class T, std::size_t N>
T pick(std::mt19937& rng, const T (&a)[N]) {
  return a[rng() % N];
}

struct SpecOptions {
  bool partial = true;
  bool random_dtypes = true;
  bool random_amp = true;
  std::optional<DType> dtype;  // all four dtypes
};

Spec random_spec(std::mt19937& rng, const SpecOptions& so = {}) {
  Spec s;
  const int hd = pick(rng, kHeadDims);
  int rot = hd;
  if (so.partial && hd > 2 && rng() % 2)
    rot = 2 * (1 + static_cast<int>(rng() % static_cast<unsigned>(hd / 2 - 1)));
  const double thetas[] = {10000.0, 500000.0, 1e6, 1e4 * 3.7};
  s.layout = pick(rng, kLayouts);
  s.plan = make_plan(hd, rot, pick(rng, thetas), s.layout);
  s.kh = 1 + static_cast<int>(rng() % 3);
  s.qh = rng() % 2 ? s.kh * (1 + static_cast<int>(rng() % 3)) : 1 + static_cast<int>(rng() % 5);
  const std::int64_t token_counts[] = {1, 2, 3, 5, 7, 8, 13};
  s.tokens = pick(rng, token_counts);
  if (so.dtype) {
    s.q_in = s.q_out = s.k_in = s.k_out = *so.dtype;
  } else if (so.random_dtypes) {
    s.q_in = pick(rng, kDTypes);
    s.q_out = pick(rng, kDTypes);
    s.k_in = pick(rng, kDTypes);
    s.k_out = pick(rng, kDTypes);
  }
  if (so.random_amp && rng() % 2) s.amp = std::uniform_real_distribution<double>(0.6, 1.6)(rng);
  s.plan.attention_factor = s.amp;
  return s;
}

// Values representable in `t`: uniform in [−1, 1) times 2^[−3, 3] per head.
std::vector<double> random_values(std::mt19937& rng, std::int64_t tokens, int heads, int hd,
                                  DType t) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> x(static_cast<std::size_t>(tokens * heads * hd));
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = round_to_dtype(
        t, std::ldexp(u(rng), static_cast<int>((i / static_cast<std::size_t>(hd)) % 7) - 3));
  }
  return x;
}

std::vector<std::int64_t> random_positions(std::mt19937& rng, std::int64_t tokens,
                                           std::int64_t max_abs = 1 << 20) {
  std::uniform_int_distribution<std::int64_t> u(-max_abs, max_abs);
  std::vector<std::int64_t> p(static_cast<std::size_t>(tokens));
  for (auto& v : p)
    v = rng() % 4 == 0 ? u(rng) : std::uniform_int_distribution<std::int64_t>(0, 5000)(rng);
  return p;
}

// ---- running apply_rope ----------------------------------------------------------------------

struct Side {
  int heads = 0;
  DType in = DType::kF32, out = DType::kF32;
  std::vector<double> x;  // logical [tokens][heads][hd], representable in `in`
};

struct Outcome {
  std::vector<double> q, k;           // logical outputs as values
  std::vector<std::uint32_t> qb, kb;  // and bits
  ApplyResult result;
};

Side q_side(const Spec& s, std::mt19937& rng) {
  return Side{s.qh, s.q_in, s.q_out, random_values(rng, s.tokens, s.qh, s.plan.head_dim, s.q_in)};
}
Side k_side(const Spec& s, std::mt19937& rng) {
  return Side{s.kh, s.k_in, s.k_out, random_values(rng, s.tokens, s.kh, s.plan.head_dim, s.k_in)};
}

// Out of place from `in_kind` buffers into `out_kind` buffers. Checks guards of all four.
Outcome run_oop(const FrequencyPlan& plan, const Side& q, const Side& k, std::int64_t tokens,
                const Positions& pos, const ApplyOptions& o, Kind in_kind = Kind::kContig,
                Kind out_kind = Kind::kContig) {
  const int hd = plan.head_dim;
  Buf qi(q.in, tokens, q.heads, hd, in_kind), ki(k.in, tokens, k.heads, hd, in_kind);
  Buf qo(q.out, tokens, q.heads, hd, out_kind), ko(k.out, tokens, k.heads, hd, out_kind);
  qi.fill(q.x);
  ki.fill(k.x);
  const auto qi_mem = qi.mem, ki_mem = ki.mem;
  Outcome r;
  const TensorView kov = k.heads ? ko.view() : TensorView{};
  const ConstTensorView kiv = k.heads ? ki.cview() : ConstTensorView{};
  r.result = apply_rope(plan, qi.cview(), qo.view(), kiv, kov, pos, o);
  EXPECT_TRUE(qi.mem == qi_mem) << "q input buffer modified";
  EXPECT_TRUE(ki.mem == ki_mem) << "k input buffer modified";
  EXPECT_TRUE(qo.guards_intact(true)) << "q_out";
  EXPECT_TRUE(ko.guards_intact(k.heads > 0)) << "k_out";
  r.q = qo.values();
  r.k = ko.values();
  r.qb = qo.bits();
  r.kb = ko.bits();
  return r;
}

// In place (input dtype = output dtype = side.in).
Outcome run_ip(const FrequencyPlan& plan, const Side& q, const Side& k, std::int64_t tokens,
               const Positions& pos, const ApplyOptions& o, Kind kind = Kind::kContig) {
  const int hd = plan.head_dim;
  Buf qb(q.in, tokens, q.heads, hd, kind), kb(k.in, tokens, k.heads, hd, kind);
  qb.fill(q.x);
  kb.fill(k.x);
  Outcome r;
  r.result = apply_rope(plan, qb.view(), k.heads ? kb.view() : TensorView{}, pos, o);
  EXPECT_TRUE(qb.guards_intact(true)) << "q";
  EXPECT_TRUE(kb.guards_intact(k.heads > 0)) << "k";
  r.q = qb.values();
  r.k = kb.values();
  r.qb = qb.bits();
  r.kb = kb.bits();
  return r;
}

// Bit equality of two logical tensors, naming the first differing element.
::testing::AssertionResult same_bits(const std::vector<std::uint32_t>& got,
                                     const std::vector<std::uint32_t>& want) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "sizes " << got.size() << " and " << want.size();
  for (std::size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i]) {
      std::size_t n = 0;
      for (std::size_t j = i; j < got.size(); ++j) n += got[j] != want[j];
      return ::testing::AssertionFailure()
             << n << " of " << got.size() << " elements differ, the first at logical index " << i
             << ": " << hex(got[i]) << " vs " << hex(want[i]);
    }
  return ::testing::AssertionSuccess();
}

// ---- the oracle ------------------------------------------------------------------------------

struct Want {
  std::vector<LD> y;
  std::vector<double> mag;  // A·(|x_a| + |x_b|) of the element's pair; −1 for pass-through
};

using PosFn = std::function<std::int64_t(std::int64_t t, int axis)>;

LD angle(AngleMode mode, std::int64_t p, float inv) {
  if (mode == AngleMode::kExact) return static_cast<LD>(p) * static_cast<LD>(inv);
  return static_cast<LD>(static_cast<float>(p) * inv);  // float32(float32(p) · inv)
}

Want oracle(const FrequencyPlan& plan, PairLayout layout, double amp, AngleMode mode, bool inverse,
            const std::vector<double>& x, int heads, std::int64_t tokens, const PosFn& pos,
            const std::vector<int>& axes = {}) {
  const int hd = plan.head_dim, n = plan.rotary_dim / 2;
  Want w;
  w.y.assign(x.begin(), x.end());
  w.mag.assign(x.size(), -1.0);
  std::vector<LD> c(static_cast<std::size_t>(n)), s(static_cast<std::size_t>(n));
  for (std::int64_t t = 0; t < tokens; ++t) {
    for (int i = 0; i < n; ++i) {
      const int axis = axes.empty() ? 0 : axes[static_cast<std::size_t>(i)];
      const LD th = angle(mode, pos(t, axis), plan.inv_freq[static_cast<std::size_t>(i)]);
      c[static_cast<std::size_t>(i)] = static_cast<LD>(amp) * std::cos(th);
      s[static_cast<std::size_t>(i)] = static_cast<LD>(amp) * std::sin(th) * (inverse ? -1 : 1);
    }
    for (int h = 0; h < heads; ++h) {
      const std::size_t row = static_cast<std::size_t>((t * heads + h) * hd);
      for (int i = 0; i < n; ++i) {
        int ia = i, ib = i + n, oa = i, ob = i + n;
        if (layout != PairLayout::kHalf) {
          ia = 2 * i;
          ib = 2 * i + 1;
        }
        if (layout == PairLayout::kInterleaved) {
          oa = ia;
          ob = ib;
        }
        const LD a = x[row + static_cast<std::size_t>(ia)],
                 b = x[row + static_cast<std::size_t>(ib)];
        const auto ci = c[static_cast<std::size_t>(i)], si = s[static_cast<std::size_t>(i)];
        w.y[row + static_cast<std::size_t>(oa)] = a * ci - b * si;
        w.y[row + static_cast<std::size_t>(ob)] = b * ci + a * si;
        const double m =
            amp * (std::fabs(static_cast<double>(a)) + std::fabs(static_cast<double>(b)));
        w.mag[row + static_cast<std::size_t>(oa)] = w.mag[row + static_cast<std::size_t>(ob)] = m;
      }
    }
  }
  return w;
}

PosFn per_token_fn(const std::vector<std::int64_t>& p) {
  return [&p](std::int64_t t, int) { return p[static_cast<std::size_t>(t)]; };
}

// ---- comparing with the oracle ---------------------------------------------------------------

// Largest error seen, in ulps of the output dtype at the exact value, and in units of
// 2^-24·mag (the "pair magnitude" scale of f32 cos/sin errors).
struct Tally {
  double max_ulps = 0, max_mag_units = 0;
  std::int64_t elements = 0, beyond_one_ulp = 0, near_ties = 0;
};

// Each `got` element against the exact `want`, by backend (see the top of the file).
// For kAuto with 16-bit outputs, `cancellation` adds 4·2^-24·mag to the 1-ulp bound.
::testing::AssertionResult matches_oracle(const std::vector<double>& got, const Want& w, DType out,
                                          Backend backend, Tally& tally, bool cancellation = true) {
  for (std::size_t j = 0; j < got.size(); ++j) {
    const LD o = w.y[j];
    const double od = static_cast<double>(o);
    const double g = got[j];
    ++tally.elements;
    if (w.mag[j] < 0) {  // pass-through: one RNE conversion of the input
      if (!(g == round_to_dtype(out, od)) && !(std::isnan(g) && std::isnan(od)))
        return ::testing::AssertionFailure()
               << "pass-through element " << j << ": got " << g << ", want " << od;
      continue;
    }
    const double ulp = test::ulp_of(out, od);
    const double err = static_cast<double>(std::fabs(static_cast<LD>(g) - o));
    tally.max_ulps = std::max(tally.max_ulps, err / ulp);
    if (w.mag[j] > 0) tally.max_mag_units = std::max(tally.max_mag_units, err / (kU32 * w.mag[j]));
    if (err > ulp) ++tally.beyond_one_ulp;
    if (backend == Backend::kReference) {
      const double rounded = round_to_dtype(out, od);
      if (g == rounded) continue;
      // allowed only next to a tie, within the double reference's own error
      const double mid = (g + rounded) / 2;
      const bool adjacent = std::fabs(g - rounded) <= ulp * 1.0000001;
      if (adjacent &&
          std::fabs(static_cast<double>(o - static_cast<LD>(mid))) <= 1e-14 * w.mag[j]) {
        ++tally.near_ties;
        continue;
      }
      return ::testing::AssertionFailure()
             << "element " << j << " (" << dtype_name(out) << "): got " << hexf(g)
             << ", the correctly rounded value is " << hexf(rounded) << " (exact " << hexf(od)
             << ")";
    }
    double bound = 0;
    if (out == DType::kF32)
      bound = 0.5 * ulp + 4 * kU32 * w.mag[j];
    else
      bound = ulp + (cancellation ? 4 * kU32 * w.mag[j] : 0.0);
    if (!(err <= bound))
      return ::testing::AssertionFailure()
             << "element " << j << " (" << dtype_name(out) << "): got " << g << ", exact " << od
             << ", error " << err / ulp << " ulp (mag " << w.mag[j] << ") exceeds the bound "
             << bound / ulp << " ulp";
  }
  return ::testing::AssertionSuccess();
}

// ---- the test suite, per backend -------------------------------------------------------------

class ApplyProperties : public ::testing::TestWithParam<Backend> {
 protected:
  ApplyOptions opts(AngleMode mode = AngleMode::kExact) const {
    ApplyOptions o;
    o.backend = GetParam();
    o.angles = mode;
    return o;
  }
};

// Every dtype in and out, every layout, partial rotary, GQA: against the long-double oracle.
// kReference: correctly rounded; kAuto: within the bounds at the top of the file.
TEST_P(ApplyProperties, MatchesLongDoubleOracleEveryDtype) {
  std::mt19937 rng(1001);
  Tally tally[3];
  for (int it = 0; it < 200; ++it) {
    const Spec s = random_spec(rng);
    const AngleMode mode = it % 3 == 2 ? AngleMode::kHf : AngleMode::kExact;
    const bool inverse = it % 5 == 4;
    SCOPED_TRACE(s.describe() + (mode == AngleMode::kHf ? " hf" : " exact") +
                 (inverse ? " inverse" : ""));
    const Side q = q_side(s, rng), k = k_side(s, rng);
    const auto pos = random_positions(rng, s.tokens, it % 2 ? 2147483647 : 1 << 17);
    ApplyOptions o = opts(mode);
    o.direction = inverse ? Direction::kInverse : Direction::kForward;
    const Outcome r = run_oop(s.plan, q, k, s.tokens,
                              Positions::per_token(std::span<const std::int64_t>(pos)), o);
    const Want wq =
        oracle(s.plan, s.layout, s.amp, mode, inverse, q.x, s.qh, s.tokens, per_token_fn(pos));
    const Want wk =
        oracle(s.plan, s.layout, s.amp, mode, inverse, k.x, s.kh, s.tokens, per_token_fn(pos));
    ASSERT_TRUE(matches_oracle(r.q, wq, s.q_out, GetParam(), tally[static_cast<int>(s.q_out)]))
        << "q";
    ASSERT_TRUE(matches_oracle(r.k, wk, s.k_out, GetParam(), tally[static_cast<int>(s.k_out)]))
        << "k";
  }
  for (const DType t : kDTypes) {
    const Tally& ta = tally[static_cast<int>(t)];
    std::printf(
        "[ %s ] %-4s out: %lld elements, max %.3f ulp (%.3f × 2^-24·mag), %lld beyond 1 ulp, %lld "
        "near ties\n",
        name_of(GetParam()).c_str(), std::string(dtype_name(t)).c_str(),
        static_cast<long long>(ta.elements), ta.max_ulps, ta.max_mag_units,
        static_cast<long long>(ta.beyond_one_ulp), static_cast<long long>(ta.near_ties));
  }
}

// f16/bf16 outputs: within 1 ulp of the output dtype of the exact result from the
// dtype-rounded inputs when nothing cancels (|y| ≥ mag/64), for every backend; kReference is
// correctly rounded everywhere (checked above and here).
TEST_P(ApplyProperties, SixteenBitOutputsWithinOneUlp) {
  std::mt19937 rng(1002);
  Tally tally;
  for (int it = 0; it < 100; ++it) {
    SpecOptions so;
    so.dtype = it % 2 ? DType::kBF16 : DType::kF16;
    Spec s = random_spec(rng, so);
    if (it % 4 >= 2) s.q_in = s.k_in = DType::kF32;  // f32 in, 16-bit out
    SCOPED_TRACE(s.describe());
    const Side q = q_side(s, rng), k = k_side(s, rng);
    const auto pos = random_positions(rng, s.tokens);
    const Outcome r = run_oop(s.plan, q, k, s.tokens,
                              Positions::per_token(std::span<const std::int64_t>(pos)), opts());
    const Want wq = oracle(s.plan, s.layout, s.amp, AngleMode::kExact, false, q.x, s.qh, s.tokens,
                           per_token_fn(pos));
    // only elements without heavy cancellation (|y| >= mag/64) for the strict 1-ulp bound
    Want strict;
    std::vector<double> got;
    for (std::size_t j = 0; j < wq.y.size(); ++j) {
      if (wq.mag[j] > 0 && std::fabs(static_cast<double>(wq.y[j])) < wq.mag[j] / 64) continue;
      strict.y.push_back(wq.y[j]);
      strict.mag.push_back(wq.mag[j]);
      got.push_back(r.q[j]);
    }
    ASSERT_TRUE(matches_oracle(got, strict, s.q_out, GetParam(), tally, /*cancellation=*/false));
  }
  EXPECT_EQ(tally.beyond_one_ulp, 0);
}

// Attention factor 1: the rotation keeps every pair's norm (and so every head's).
TEST_P(ApplyProperties, NormPreserved) {
  std::mt19937 rng(1003);
  for (int it = 0; it < 60; ++it) {
    SpecOptions so;
    so.random_amp = false;
    so.dtype = it % 4 == 3 ? (it % 8 == 3 ? DType::kBF16 : DType::kF16) : DType::kF32;
    const Spec s = random_spec(rng, so);
    const AngleMode mode = it % 2 ? AngleMode::kHf : AngleMode::kExact;
    SCOPED_TRACE(s.describe());
    const Side q = q_side(s, rng), k = k_side(s, rng);
    const auto pos = random_positions(rng, s.tokens, 2147483647);
    const Outcome r = run_oop(s.plan, q, k, s.tokens,
                              Positions::per_token(std::span<const std::int64_t>(pos)), opts(mode));
    const double rel = s.q_out == DType::kF32   ? 4 * kU32
                       : s.q_out == DType::kF16 ? 0x1p-10
                                                : 0x1p-7;
    const int hd = s.plan.head_dim;
    for (const auto& [x, y] : {std::pair{&q.x, &r.q}, std::pair{&k.x, &r.k}}) {
      for (std::size_t row = 0; row < x->size(); row += static_cast<std::size_t>(hd)) {
        double nx = 0, ny = 0;
        for (int d = 0; d < hd; ++d) {
          nx += (*x)[row + static_cast<std::size_t>(d)] * (*x)[row + static_cast<std::size_t>(d)];
          ny += (*y)[row + static_cast<std::size_t>(d)] * (*y)[row + static_cast<std::size_t>(d)];
        }
        nx = std::sqrt(nx);
        ny = std::sqrt(ny);
        ASSERT_LE(std::fabs(nx - ny), rel * nx) << "row " << row / static_cast<std::size_t>(hd);
      }
    }
  }
}

// inverse(forward(x)) = A²·x (f32), in both angle modes.
TEST_P(ApplyProperties, InverseUndoesForward) {
  std::mt19937 rng(1004);
  for (int it = 0; it < 50; ++it) {
    SpecOptions so;
    so.dtype = DType::kF32;
    const Spec s = random_spec(rng, so);
    const AngleMode mode = it % 2 ? AngleMode::kHf : AngleMode::kExact;
    SCOPED_TRACE(s.describe());
    const Side q = q_side(s, rng), k = k_side(s, rng);
    const auto pos = random_positions(rng, s.tokens, 2147483647);
    const Positions P = Positions::per_token(std::span<const std::int64_t>(pos));
    ApplyOptions o = opts(mode);
    const Outcome fwd = run_oop(s.plan, q, k, s.tokens, P, o);
    o.direction = Direction::kInverse;
    // the inverse reads the forward's output; for the interleave-to-half layout the forward
    // wrote the pairs de-interleaved, so the inverse that undoes it reads them as half pairs
    FrequencyPlan inv_plan = s.plan;
    if (s.layout == PairLayout::kInterleavedToHalf) o.layout = PairLayout::kHalf;
    const Outcome back = run_oop(inv_plan, Side{s.qh, DType::kF32, DType::kF32, fwd.q},
                                 Side{s.kh, DType::kF32, DType::kF32, fwd.k}, s.tokens, P, o);
    const int hd = s.plan.head_dim, n = s.plan.rotary_dim / 2;
    const double a2 = s.amp * s.amp;
    for (const auto& [x, z] : {std::pair{&q.x, &back.q}, std::pair{&k.x, &back.k}}) {
      for (std::size_t row = 0; row < x->size(); row += static_cast<std::size_t>(hd)) {
        for (int i = 0; i < n; ++i) {
          // where the pair's two features are in x, and where the round trip put them
          int xa = i, xb = i + n, za = i, zb = i + n;
          if (s.layout != PairLayout::kHalf) {
            xa = 2 * i;
            xb = 2 * i + 1;
          }
          if (s.layout == PairLayout::kInterleaved) {
            za = xa;
            zb = xb;
          }
          const double a = (*x)[row + static_cast<std::size_t>(xa)],
                       b = (*x)[row + static_cast<std::size_t>(xb)];
          const double tol = 8 * kU32 * a2 * (std::fabs(a) + std::fabs(b));
          ASSERT_NEAR((*z)[row + static_cast<std::size_t>(za)], a2 * a, tol) << "pair " << i;
          ASSERT_NEAR((*z)[row + static_cast<std::size_t>(zb)], a2 * b, tol) << "pair " << i;
        }
        for (int d = 2 * n; d < hd; ++d)  // pass-through survives both ways
          ASSERT_EQ((*z)[row + static_cast<std::size_t>(d)],
                    (*x)[row + static_cast<std::size_t>(d)]);
      }
    }
  }
}

// q·k after rotation depends only on m − n (exact mode), even with both shifted by ~2^30;
// hf mode, by contrast, loses the relative position at such offsets.
TEST_P(ApplyProperties, DotProductDependsOnlyOnRelativePosition) {
  std::mt19937 rng(1005);
  double worst_exact = 0, worst_hf = 0;
  for (int it = 0; it < 40; ++it) {
    SpecOptions so;
    so.dtype = DType::kF32;
    so.random_amp = false;
    Spec s = random_spec(rng, so);
    s.tokens = 2;  // token 0 carries q's position m, token 1 k's position n
    SCOPED_TRACE(s.describe());
    const Side q = q_side(s, rng), k = k_side(s, rng);
    const std::int64_t m = std::uniform_int_distribution<std::int64_t>(0, 4096)(rng);
    const std::int64_t n = std::uniform_int_distribution<std::int64_t>(0, 4096)(rng);
    const std::int64_t shifts[] = {std::uniform_int_distribution<std::int64_t>(1, 1 << 30)(rng),
                                   1 << 30, -(std::int64_t{1} << 30), 2147483647 - 4096,
                                   -2147483647 + 4096};
    const int hd = s.plan.head_dim;
    auto dots = [&](AngleMode mode, std::int64_t shift) {
      const std::vector<std::int64_t> pos = {m + shift, n + shift};
      const Outcome r = run_oop(
          s.plan, q, k, 2, Positions::per_token(std::span<const std::int64_t>(pos)), opts(mode));
      std::vector<double> out;  // q head h (token 0) · k head h % kh (token 1)
      for (int h = 0; h < s.qh; ++h) {
        double dot = 0;
        for (int d = 0; d < hd; ++d)
          dot += r.q[static_cast<std::size_t>(h * hd + d)] *
                 r.k[static_cast<std::size_t>((s.kh + h % s.kh) * hd + d)];
        out.push_back(dot);
      }
      return out;
    };
    std::vector<double> scale;  // ‖q_h‖·‖k_h'‖
    for (int h = 0; h < s.qh; ++h) {
      double nq = 0, nk = 0;
      for (int d = 0; d < hd; ++d) {
        nq += std::pow(q.x[static_cast<std::size_t>(h * hd + d)], 2);
        nk += std::pow(k.x[static_cast<std::size_t>((s.kh + h % s.kh) * hd + d)], 2);
      }
      scale.push_back(std::sqrt(nq * nk));
    }
    for (const AngleMode mode : {AngleMode::kExact, AngleMode::kHf}) {
      const auto base = dots(mode, 0);
      for (const std::int64_t shift : shifts) {
        const auto moved = dots(mode, shift);
        for (int h = 0; h < s.qh; ++h) {
          const double rel =
              std::fabs(moved[static_cast<std::size_t>(h)] - base[static_cast<std::size_t>(h)]) /
              scale[static_cast<std::size_t>(h)];
          if (mode == AngleMode::kExact) {
            worst_exact = std::max(worst_exact, rel);
            ASSERT_LE(rel, 48 * kU32) << "shift " << shift << " head " << h;
          } else {
            worst_hf = std::max(worst_hf, rel);
          }
        }
      }
    }
  }
  std::printf("[ %s ] |Δ(q·k)|/(‖q‖‖k‖) under a shift up to 2^31: exact %.3g, hf %.3g\n",
              name_of(GetParam()).c_str(), worst_exact, worst_hf);
  EXPECT_GT(worst_hf, 1e-2);  // the test can tell: float32 angles do not keep m − n
}

// In place gives the same bits as out of place, for every dtype and view kind.
TEST_P(ApplyProperties, InPlaceEqualsOutOfPlace) {
  std::mt19937 rng(1006);
  for (int it = 0; it < 45; ++it) {
    SpecOptions so;
    so.dtype = kDTypes[it % 3];
    const Spec s = random_spec(rng, so);
    const Kind kind = kKinds[static_cast<std::size_t>(it) % std::size(kKinds)];
    SCOPED_TRACE(s.describe() + " kind " + std::to_string(static_cast<int>(kind)));
    const Side q = q_side(s, rng), k = k_side(s, rng);
    const auto pos = random_positions(rng, s.tokens);
    const Positions P = Positions::per_token(std::span<const std::int64_t>(pos));
    const AngleMode mode = it % 2 ? AngleMode::kHf : AngleMode::kExact;
    const Outcome a = run_oop(s.plan, q, k, s.tokens, P, opts(mode), kind, kind);
    const Outcome b = run_ip(s.plan, q, k, s.tokens, P, opts(mode), kind);
    ASSERT_TRUE(same_bits(a.qb, b.qb));
    ASSERT_TRUE(same_bits(a.kb, b.kb));
    // Out of place with the output given as exactly the input view is in place too.
    Buf qb(s.q_in, s.tokens, s.qh, s.plan.head_dim, kind),
        kb(s.k_in, s.tokens, s.kh, s.plan.head_dim, kind);
    qb.fill(q.x);
    kb.fill(k.x);
    apply_rope(s.plan, qb.cview(), qb.view(), kb.cview(), kb.view(), P, opts(mode));
    ASSERT_TRUE(same_bits(qb.bits(), a.qb));
    ASSERT_TRUE(same_bits(kb.bits(), a.kb));
    ASSERT_TRUE(qb.guards_intact(true));
    ASSERT_TRUE(kb.guards_intact(true));
  }
}

// Strided views ([heads, tokens, hd], padded rows, stride_dim 2, negative strides) give the
// same bits as contiguous ones, in and out, and never write outside the view.
TEST_P(ApplyProperties, StridedViewsMatchContiguous) {
  std::mt19937 rng(1007);
  for (int it = 0; it < 25; ++it) {
    const Spec s = random_spec(rng);
    SCOPED_TRACE(s.describe());
    const Side q = q_side(s, rng), k = k_side(s, rng);
    const auto pos = random_positions(rng, s.tokens);
    const Positions P = Positions::per_token(std::span<const std::int64_t>(pos));
    const Outcome want = run_oop(s.plan, q, k, s.tokens, P, opts());
    for (const Kind in_kind : kKinds) {
      const Kind out_kind = kKinds[rng() % std::size(kKinds)];
      SCOPED_TRACE("kinds " + std::to_string(static_cast<int>(in_kind)) + " → " +
                   std::to_string(static_cast<int>(out_kind)));
      const Outcome got = run_oop(s.plan, q, k, s.tokens, P, opts(), in_kind, out_kind);
      ASSERT_TRUE(same_bits(got.qb, want.qb));
      ASSERT_TRUE(same_bits(got.kb, want.kb));
    }
  }
}

// q and k as slices of one fused [tokens, (qh + 2·kh)·hd] qkv buffer: rotated in place, or
// read from it into separate outputs, or written into it from separate inputs. v untouched.
TEST_P(ApplyProperties, FusedQkvBuffer) {
  std::mt19937 rng(1008);
  for (int it = 0; it < 30; ++it) {
    SpecOptions so;
    so.dtype = kDTypes[it % 3];
    const Spec s = random_spec(rng, so);
    SCOPED_TRACE(s.describe());
    const int hd = s.plan.head_dim;
    const Side q = q_side(s, rng), k = k_side(s, rng);
    const auto pos = random_positions(rng, s.tokens);
    const Positions P = Positions::per_token(std::span<const std::int64_t>(pos));
    const Outcome want = run_oop(s.plan, q, k, s.tokens, P, opts());
    const std::int64_t row =
        static_cast<std::int64_t>(s.qh + 2 * s.kh) * hd + 1;  // +1: a gap per token
    // the fused buffer: one Buf of [tokens, 1, row] holding q | k | v | gap
    auto make_fused = [&](Buf& fused) {
      fused = Buf(s.q_in, s.tokens, 1, row, Kind::kContig);
      std::vector<std::uint32_t> b(static_cast<std::size_t>(s.tokens * row), sentinel(s.q_in));
      return b;
    };
    auto fused_views = [&](Buf& fused, TensorView& qv, TensorView& kv) {
      auto* base = static_cast<std::byte*>(fused.data());
      const std::int64_t es = dtype_size(s.q_in);
      qv = TensorView{base, s.q_in, s.tokens, s.qh, hd, row, hd, 1};
      kv = TensorView{
          base + static_cast<std::int64_t>(s.qh) * hd * es, s.q_in, s.tokens, s.kh, hd, row, hd, 1};
    };
    std::uniform_real_distribution<double> u(-1, 1);
    // 1) in place
    Buf fused;
    std::vector<std::uint32_t> init = make_fused(fused);
    std::vector<std::uint32_t> v_bits;
    for (std::int64_t t = 0; t < s.tokens; ++t) {
      for (int h = 0; h < s.qh; ++h)
        for (int d = 0; d < hd; ++d)
          init[static_cast<std::size_t>(t * row + h * hd + d)] =
              Buf::bits_of(s.q_in, q.x[static_cast<std::size_t>((t * s.qh + h) * hd + d)]);
      for (int h = 0; h < s.kh; ++h)
        for (int d = 0; d < hd; ++d)
          init[static_cast<std::size_t>(t * row + (s.qh + h) * hd + d)] =
              Buf::bits_of(s.q_in, k.x[static_cast<std::size_t>((t * s.kh + h) * hd + d)]);
      for (int j = 0; j < s.kh * hd; ++j)
        init[static_cast<std::size_t>(t * row + (s.qh + s.kh) * hd + j)] =
            Buf::bits_of(s.q_in, u(rng));
    }
    fused.fill_bits(init);
    TensorView qv, kv;
    fused_views(fused, qv, kv);
    apply_rope(s.plan, qv, kv, P, opts());
    ASSERT_TRUE(fused.guards_intact(false));
    const auto after = fused.bits();
    for (std::int64_t t = 0; t < s.tokens; ++t) {
      for (int j = 0; j < s.qh * hd; ++j)
        ASSERT_EQ(after[static_cast<std::size_t>(t * row + j)],
                  want.qb[static_cast<std::size_t>(t * s.qh * hd + j)]);
      for (int j = 0; j < s.kh * hd; ++j)
        ASSERT_EQ(after[static_cast<std::size_t>(t * row + s.qh * hd + j)],
                  want.kb[static_cast<std::size_t>(t * s.kh * hd + j)]);
      for (std::int64_t j = (s.qh + s.kh) * hd; j < row; ++j)  // v and the gap untouched
        ASSERT_EQ(after[static_cast<std::size_t>(t * row + j)],
                  init[static_cast<std::size_t>(t * row + j)]);
    }
    // 2) from the fused buffer into separate contiguous outputs
    fused.fill_bits(init);
    fused_views(fused, qv, kv);
    Buf qo(s.q_in, s.tokens, s.qh, hd, Kind::kContig),
        ko(s.q_in, s.tokens, s.kh, hd, Kind::kContig);
    apply_rope(s.plan, ConstTensorView(qv), qo.view(), ConstTensorView(kv), ko.view(), P, opts());
    ASSERT_TRUE(same_bits(fused.bits(), init));
    ASSERT_TRUE(same_bits(qo.bits(), want.qb));
    ASSERT_TRUE(same_bits(ko.bits(), want.kb));
    ASSERT_TRUE(qo.guards_intact(true));
    ASSERT_TRUE(ko.guards_intact(true));
    // 3) from separate inputs into a sentinel-filled fused buffer: only q and k slots written
    Buf target;
    make_fused(target);
    fused_views(target, qv, kv);
    Buf qi(s.q_in, s.tokens, s.qh, hd, Kind::kContig),
        ki(s.q_in, s.tokens, s.kh, hd, Kind::kContig);
    qi.fill(q.x);
    ki.fill(k.x);
    apply_rope(s.plan, qi.cview(), qv, ki.cview(), kv, P, opts());
    const auto tb = target.bits();
    for (std::int64_t t = 0; t < s.tokens; ++t) {
      for (int j = 0; j < s.qh * hd; ++j)
        ASSERT_EQ(tb[static_cast<std::size_t>(t * row + j)],
                  want.qb[static_cast<std::size_t>(t * s.qh * hd + j)]);
      for (std::int64_t j = (s.qh + s.kh) * hd; j < row; ++j)
        ASSERT_EQ(tb[static_cast<std::size_t>(t * row + j)], sentinel(s.q_in))
            << "v/gap slot written";
    }
    ASSERT_TRUE(target.guards_intact(false));
  }
}

// Partial rotary: features past rotary_dim are the input's bits (any bit pattern: NaNs with
// payloads, −0, subnormals, inf), copied out of place and untouched in place; with a
// different output dtype they are converted once (RNE).
TEST_P(ApplyProperties, PartialRotaryTailIsBitIdentical) {
  std::mt19937 rng(1009);
  int cases = 0;
  for (int it = 0; cases < 40; ++it) {
    Spec s = random_spec(rng);
    if (s.plan.rotary_dim == s.plan.head_dim) continue;
    ++cases;
    SCOPED_TRACE(s.describe());
    const int hd = s.plan.head_dim, rot = s.plan.rotary_dim;
    auto special = [&](DType t) -> std::vector<std::uint32_t> {
      if (t == DType::kF32)
        return {0x7F800001u, 0xFFBFFFFFu, 0x7FC01234u, 0x80000000u, 0x00000001u,
                0x807FFFFFu, 0x7F800000u, 0xFF7FFFFFu, 0x3F800001u};
      if (t == DType::kF16)
        return {0x7C01u, 0xFD55u, 0x7E01u, 0x8000u, 0x0001u, 0x83FFu, 0x7C00u, 0xFBFFu, 0x3C01u};
      return {0x7F81u, 0xFFA5u, 0x7FC1u, 0x8000u, 0x0001u, 0x807Fu, 0x7F80u, 0xFF7Fu, 0x3F81u};
    };
    for (const bool in_place : {false, true}) {
      if (in_place) {
        s.q_out = s.q_in;
        s.k_out = s.k_in;
      }
      const Side q = q_side(s, rng), k = k_side(s, rng);
      Buf qb(s.q_in, s.tokens, s.qh, hd, Kind::kPadded),
          kb(s.k_in, s.tokens, s.kh, hd, Kind::kContig);
      std::vector<std::uint32_t> qbits(q.x.size()), kbits(k.x.size());
      for (std::size_t j = 0; j < q.x.size(); ++j) {
        const int d = static_cast<int>(j % static_cast<std::size_t>(hd));
        const auto sp = special(s.q_in);
        qbits[j] = d >= rot && rng() % 2 ? sp[rng() % sp.size()] : Buf::bits_of(s.q_in, q.x[j]);
      }
      for (std::size_t j = 0; j < k.x.size(); ++j) {
        const int d = static_cast<int>(j % static_cast<std::size_t>(hd));
        const auto sp = special(s.k_in);
        kbits[j] = d >= rot && rng() % 2 ? sp[rng() % sp.size()] : Buf::bits_of(s.k_in, k.x[j]);
      }
      qb.fill_bits(qbits);
      kb.fill_bits(kbits);
      const auto pos = random_positions(rng, s.tokens);
      const Positions P = Positions::per_token(std::span<const std::int64_t>(pos));
      std::vector<std::uint32_t> qr, kr;
      if (in_place) {
        apply_rope(s.plan, qb.view(), kb.view(), P, opts());
        qr = qb.bits();
        kr = kb.bits();
      } else {
        Buf qo(s.q_out, s.tokens, s.qh, hd, Kind::kDimStride2),
            ko(s.k_out, s.tokens, s.kh, hd, Kind::kNegToken);
        apply_rope(s.plan, qb.cview(), qo.view(), kb.cview(), ko.view(), P, opts());
        ASSERT_TRUE(qo.guards_intact(true));
        ASSERT_TRUE(ko.guards_intact(true));
        qr = qo.bits();
        kr = ko.bits();
      }
      for (const auto& [in_bits, out_bits, tin, tout] :
           {std::tuple{&qbits, &qr, s.q_in, s.q_out}, std::tuple{&kbits, &kr, s.k_in, s.k_out}}) {
        for (std::size_t j = 0; j < in_bits->size(); ++j) {
          if (static_cast<int>(j % static_cast<std::size_t>(hd)) < rot) continue;
          const std::uint32_t ib = (*in_bits)[j], ob = (*out_bits)[j];
          if (tin == tout) {
            ASSERT_EQ(ob, ib) << "tail element " << j << (in_place ? " (in place)" : " (copied)");
            continue;
          }
          const double v = Buf::value_of(tin, ib), got = Buf::value_of(tout, ob);
          if (std::isnan(v)) {
            ASSERT_TRUE(std::isnan(got)) << j;
          } else {
            ASSERT_EQ(Buf::bits_of(tout, v), ob) << "tail element " << j << " converted "
                                                 << dtype_name(tin) << "→" << dtype_name(tout);
          }
        }
      }
    }
  }
}

// ---- M-RoPE ----------------------------------------------------------------------------------

struct MRopeModel {
  const char* name;
  std::string json;  // config.json text
  PairLayout layout;
  MRopeAssignment assignment;
  int head_dim, rotary_dim;
};

std::vector<MRopeModel> mrope_models() {
  return {
      {"qwen2_vl", test::read_file("models/qwen2-vl-7b-instruct.json"), PairLayout::kHalf,
       MRopeAssignment::kSections, 128, 128},
      {"qwen3_vl", test::read_file("models/qwen3-vl-8b-instruct.json"), PairLayout::kHalf,
       MRopeAssignment::kInterleavedThw, 128, 128},
      {"qwen3_5",
       R"({"model_type":"qwen3_5","text_config":{"model_type":"qwen3_5_text",
          "head_dim":256,"hidden_size":4096,"num_attention_heads":16,"max_position_embeddings":262144,
          "rope_parameters":{"rope_type":"default","rope_theta":10000000,"partial_rotary_factor":0.25,
          "mrope_section":[11,11,10],"mrope_interleaved":true}}})",
       PairLayout::kHalf, MRopeAssignment::kInterleavedThw, 256, 64},
      {"glm4v",
       R"({"model_type":"glm4v","text_config":{"model_type":"glm4v_text",
          "hidden_size":4096,"num_attention_heads":32,"max_position_embeddings":65536,"rope_theta":10000,
          "partial_rotary_factor":0.5,"rope_scaling":{"type":"default","mrope_section":[8,12,12]}}})",
       PairLayout::kInterleaved, MRopeAssignment::kSections, 128, 64},
      {"ernie4_5_vl",
       R"({"model_type":"ernie4_5_vl_moe","hidden_size":2560,"num_attention_heads":20,
          "head_dim":128,"max_position_embeddings":131072,"rope_theta":500000,
          "rope_scaling":{"type":"default","mrope_section":[22,22,20]}})",
       PairLayout::kInterleaved, MRopeAssignment::kErnieHw, 128, 128},
  };
}

// The position row (0 = T, 1 = H, 2 = W) of pair k, written from the model descriptions in
// reference-semantics.md (not from the library).
int scalar_axis(MRopeAssignment a, const std::array<int, 3>& sec, int k) {
  switch (a) {
    case MRopeAssignment::kSections:  // [t, h, w] contiguous
      return k < sec[0] ? 0 : k < sec[0] + sec[1] ? 1 : 2;
    case MRopeAssignment::kInterleavedThw:  // T H W T H W …, H/W only below 3·h / 3·w
      if (k % 3 == 1 && k < 3 * sec[1]) return 1;
      if (k % 3 == 2 && k < 3 * sec[2]) return 2;
      return 0;
    case MRopeAssignment::kErnieHw:  // [h, w, t]: H W H W … then the last t pairs T
      if (k < sec[0] + sec[1]) return k % 2 == 0 ? 1 : 2;
      return 0;
  }
  return 0;
}

FrequencyPlan plain_copy(const FrequencyPlan& p) {
  FrequencyPlan q = p;
  q.info.mrope.reset();
  q.pair_axis.clear();
  return q;
}

TEST_P(ApplyProperties, MRopeEqualRowsEqualPlainRope) {
  std::mt19937 rng(1010);
  for (const auto& m : mrope_models()) {
    SCOPED_TRACE(m.name);
    const ModelRope model = parse_hf_config(m.json);
    const RopeConfig& c = model.layers.at(0);
    ASSERT_TRUE(c.mrope);
    ASSERT_EQ(c.mrope->assignment, m.assignment);
    ASSERT_EQ(c.layout, m.layout);
    ASSERT_EQ(c.head_dim, m.head_dim);
    ASSERT_EQ(c.rotary_dim, m.rotary_dim);
    const FrequencyPlan plan = build_frequency_plan(c);
    const FrequencyPlan plain = plain_copy(plan);
    for (int it = 0; it < 8; ++it) {
      Spec s;
      s.plan = plan;
      s.layout = plan.layout;
      s.kh = 1 + it % 3;
      s.qh = s.kh * (1 + it % 2) + it % 2;
      s.tokens = 1 + 2 * (it % 4);
      s.q_in = s.q_out = s.k_in = s.k_out = kDTypes[it % 3];
      const Side q = q_side(s, rng), k = k_side(s, rng);
      const auto ids = random_positions(rng, s.tokens, 2147483647);
      std::vector<std::int64_t> rows;
      for (int r = 0; r < 3; ++r) rows.insert(rows.end(), ids.begin(), ids.end());
      std::vector<std::int32_t> rows32(rows.begin(), rows.end());
      for (const AngleMode mode : {AngleMode::kExact, AngleMode::kHf}) {
        const Outcome a =
            run_oop(plan, q, k, s.tokens,
                    Positions::mrope(std::span<const std::int64_t>(rows), s.tokens), opts(mode));
        const Outcome a32 =
            run_oop(plan, q, k, s.tokens,
                    Positions::mrope(std::span<const std::int32_t>(rows32), s.tokens), opts(mode));
        const Outcome b =
            run_oop(plain, q, k, s.tokens, Positions::per_token(std::span<const std::int64_t>(ids)),
                    opts(mode));
        ASSERT_TRUE(same_bits(a.qb, b.qb));
        ASSERT_TRUE(same_bits(a.kb, b.kb));
        ASSERT_TRUE(same_bits(a32.qb, b.qb));
        ASSERT_TRUE(same_bits(a32.kb, b.kb));
      }
    }
  }
}

TEST_P(ApplyProperties, MRopeAssignmentsMatchScalarFormula) {
  std::mt19937 rng(1011);
  Tally tally;
  for (const auto& m : mrope_models()) {
    SCOPED_TRACE(m.name);
    const RopeConfig c = parse_hf_config(m.json).layers.at(0);
    FrequencyPlan plan = build_frequency_plan(c);
    const int n = plan.rotary_dim / 2;
    std::vector<int> axes(static_cast<std::size_t>(n));
    int used[3] = {0, 0, 0};
    for (int i = 0; i < n; ++i) {
      axes[static_cast<std::size_t>(i)] = scalar_axis(c.mrope->assignment, c.mrope->section, i);
      ++used[axes[static_cast<std::size_t>(i)]];
      ASSERT_EQ(plan.pair_axis[static_cast<std::size_t>(i)], axes[static_cast<std::size_t>(i)])
          << "pair " << i;
    }
    ASSERT_GT(used[0] * used[1] * used[2], 0);  // every row is used
    for (int it = 0; it < 6; ++it) {
      Spec s;
      s.plan = plan;
      s.layout = plan.layout;
      s.kh = 1 + it % 2;
      s.qh = 3;
      s.tokens = 1 + 3 * (it % 3);
      s.q_in = s.k_in = it % 2 ? DType::kBF16 : DType::kF32;
      s.q_out = s.k_out = kDTypes[it % 3];
      const Side q = q_side(s, rng), k = k_side(s, rng);
      // T rows like a text prefix, H and W like an image grid; some far apart
      std::vector<std::int64_t> rows(static_cast<std::size_t>(3 * s.tokens));
      for (auto& p : rows)
        p = std::uniform_int_distribution<std::int64_t>(-1000, it < 3 ? 5000 : 2000000000)(rng);
      const PosFn pf = [&](std::int64_t t, int axis) {
        return rows[static_cast<std::size_t>(axis * s.tokens + t)];
      };
      for (const AngleMode mode : {AngleMode::kExact, AngleMode::kHf}) {
        const Outcome r =
            run_oop(plan, q, k, s.tokens,
                    Positions::mrope(std::span<const std::int64_t>(rows), s.tokens), opts(mode));
        const Want wq = oracle(plan, plan.layout, plan.attention_factor, mode, false, q.x, s.qh,
                               s.tokens, pf, axes);
        const Want wk = oracle(plan, plan.layout, plan.attention_factor, mode, false, k.x, s.kh,
                               s.tokens, pf, axes);
        ASSERT_TRUE(matches_oracle(r.q, wq, s.q_out, GetParam(), tally)) << "q";
        ASSERT_TRUE(matches_oracle(r.k, wk, s.k_out, GetParam(), tally)) << "k";
      }
    }
  }
}

// ---- position conventions --------------------------------------------------------------------

TEST_P(ApplyProperties, PositionConventionsAgree) {
  std::mt19937 rng(1012);
  for (int it = 0; it < 30; ++it) {
    const Spec s = random_spec(rng);
    SCOPED_TRACE(s.describe());
    const Side q = q_side(s, rng), k = k_side(s, rng);
    const std::int64_t p0 =
        it % 3 == 0 ? std::uniform_int_distribution<std::int64_t>(-2147483647, 2147483647 - 20)(rng)
                    : std::uniform_int_distribution<std::int64_t>(-100, 100000)(rng);
    const AngleMode mode = it % 2 ? AngleMode::kHf : AngleMode::kExact;
    std::vector<std::int64_t> ids64(static_cast<std::size_t>(s.tokens));
    for (std::int64_t t = 0; t < s.tokens; ++t) ids64[static_cast<std::size_t>(t)] = p0 + t;
    std::vector<std::int32_t> ids32(ids64.begin(), ids64.end());
    const std::vector<std::int64_t> indptr = {0, s.tokens}, offsets = {p0};
    const Outcome a = run_oop(s.plan, q, k, s.tokens, Positions::offset(p0), opts(mode));
    const Outcome b =
        run_oop(s.plan, q, k, s.tokens, Positions::per_token(std::span<const std::int64_t>(ids64)),
                opts(mode));
    const Outcome c =
        run_oop(s.plan, q, k, s.tokens, Positions::per_token(std::span<const std::int32_t>(ids32)),
                opts(mode));
    const Outcome d =
        run_oop(s.plan, q, k, s.tokens, Positions::per_sequence(indptr, offsets), opts(mode));
    for (const Outcome* r : {&b, &c, &d}) {
      ASSERT_TRUE(same_bits(r->qb, a.qb));
      ASSERT_TRUE(same_bits(r->kb, a.kb));
    }
  }
}

// A ragged batch (FlashInfer indptr/offsets, empty sequences included) equals per-token ids.
TEST_P(ApplyProperties, RaggedBatchEqualsPerTokenIds) {
  std::mt19937 rng(1013);
  for (int it = 0; it < 30; ++it) {
    const Spec s0 = random_spec(rng);
    Spec s = s0;
    // sequences of random lengths (0 allowed) summing to the token count
    const int n_seq = 1 + static_cast<int>(rng() % 6);
    std::vector<std::int64_t> cuts;
    s.tokens = std::uniform_int_distribution<std::int64_t>(1, 17)(rng);
    for (int i = 0; i < n_seq - 1; ++i)
      cuts.push_back(std::uniform_int_distribution<std::int64_t>(0, s.tokens)(rng));
    if (it % 3 == 0) cuts.push_back(0);         // an empty first sequence
    if (it % 3 == 1) cuts.push_back(s.tokens);  // an empty last sequence
    std::sort(cuts.begin(), cuts.end());
    std::vector<std::int64_t> indptr = {0};
    indptr.insert(indptr.end(), cuts.begin(), cuts.end());
    indptr.push_back(s.tokens);
    std::vector<std::int64_t> offsets, ids;
    for (std::size_t q = 0; q + 1 < indptr.size(); ++q) {
      const std::int64_t len = indptr[q + 1] - indptr[q];
      const std::int64_t off =
          rng() % 4 == 0
              ? std::uniform_int_distribution<std::int64_t>(-2147483647, 2147483647 - len)(rng)
              : std::uniform_int_distribution<std::int64_t>(-50, 9000)(rng);
      offsets.push_back(off);
      for (std::int64_t t = 0; t < len; ++t) ids.push_back(off + t);
    }
    ASSERT_EQ(static_cast<std::int64_t>(ids.size()), s.tokens);
    SCOPED_TRACE(s.describe() + " " + std::to_string(offsets.size()) + " sequences");
    const Side q = q_side(s, rng), k = k_side(s, rng);
    const AngleMode mode = it % 2 ? AngleMode::kHf : AngleMode::kExact;
    const Outcome a =
        run_oop(s.plan, q, k, s.tokens, Positions::per_sequence(indptr, offsets), opts(mode));
    const Outcome b = run_oop(s.plan, q, k, s.tokens,
                              Positions::per_token(std::span<const std::int64_t>(ids)), opts(mode));
    ASSERT_TRUE(same_bits(a.qb, b.qb));
    ASSERT_TRUE(same_bits(a.kb, b.kb));
    // in place, on [heads, tokens, hd] views, too
    if (s.q_in == s.q_out && s.k_in == s.k_out) {
      const Outcome c = run_ip(s.plan, q, k, s.tokens, Positions::per_sequence(indptr, offsets),
                               opts(mode), Kind::kHeadsMajor);
      ASSERT_TRUE(same_bits(c.qb, b.qb));
      ASSERT_TRUE(same_bits(c.kb, b.kb));
    }
  }
}

// R(−p) = R(p)ᵀ: the forward rotation at −p is the inverse rotation at p.
TEST_P(ApplyProperties, NegativePositionIsTranspose) {
  std::mt19937 rng(1014);
  for (int it = 0; it < 30; ++it) {
    SpecOptions so;
    so.dtype = DType::kF32;
    const Spec s = random_spec(rng, so);
    SCOPED_TRACE(s.describe());
    const Side q = q_side(s, rng), k = k_side(s, rng);
    auto pos = random_positions(rng, s.tokens, 2147483647);
    std::vector<std::int64_t> neg(pos.size());
    for (std::size_t i = 0; i < pos.size(); ++i) neg[i] = -pos[i];
    for (const AngleMode mode : {AngleMode::kExact, AngleMode::kHf}) {
      ApplyOptions o = opts(mode);
      const Outcome fwd_neg = run_oop(s.plan, q, k, s.tokens,
                                      Positions::per_token(std::span<const std::int64_t>(neg)), o);
      o.direction = Direction::kInverse;
      const Outcome inv_pos = run_oop(s.plan, q, k, s.tokens,
                                      Positions::per_token(std::span<const std::int64_t>(pos)), o);
      const Want wq =
          oracle(s.plan, s.layout, s.amp, mode, true, q.x, s.qh, s.tokens, per_token_fn(pos));
      const Want wk =
          oracle(s.plan, s.layout, s.amp, mode, true, k.x, s.kh, s.tokens, per_token_fn(pos));
      Tally tally;
      // both are R(p)ᵀx within the f32 bound (bit equality is not promised: the SIMD reduction
      // splits positions asymmetrically)
      ASSERT_TRUE(matches_oracle(fwd_neg.q, wq, DType::kF32, Backend::kAuto, tally));
      ASSERT_TRUE(matches_oracle(fwd_neg.k, wk, DType::kF32, Backend::kAuto, tally));
      ASSERT_TRUE(matches_oracle(inv_pos.q, wq, DType::kF32, GetParam(), tally));
      ASSERT_TRUE(matches_oracle(inv_pos.k, wk, DType::kF32, GetParam(), tally));
      // and the forward at −p against the oracle's own forward at −p
      const Want wq_neg =
          oracle(s.plan, s.layout, s.amp, mode, false, q.x, s.qh, s.tokens, per_token_fn(neg));
      ASSERT_TRUE(matches_oracle(fwd_neg.q, wq_neg, DType::kF32, GetParam(), tally));
    }
  }
}

// ---- the cos/sin cache -----------------------------------------------------------------------

TEST_P(ApplyProperties, CacheMatchesNoCache) {
  std::mt19937 rng(1015);
  for (int it = 0; it < 30; ++it) {
    SpecOptions so;
    so.dtype = it % 3 == 0 ? DType::kBF16 : DType::kF32;
    const Spec s = random_spec(rng, so);
    const AngleMode mode = it % 2 ? AngleMode::kHf : AngleMode::kExact;
    const bool fold = it % 4 != 3;
    SCOPED_TRACE(s.describe() + (fold ? " folded" : " unfolded"));
    const Side q = q_side(s, rng), k = k_side(s, rng);
    // positions inside the cache, past its end and negative (both computed on the fly)
    std::vector<std::int64_t> pos(static_cast<std::size_t>(s.tokens));
    for (auto& p : pos) p = std::uniform_int_distribution<std::int64_t>(-3000, 6000)(rng);
    const CosSinCache cache(s.plan, mode, fold, 4000);
    ApplyOptions o = opts(mode);
    o.fold_attention_factor = fold;
    const Positions P = Positions::per_token(std::span<const std::int64_t>(pos));
    const Outcome plain = run_oop(s.plan, q, k, s.tokens, P, o);
    o.cache = &cache;
    const Outcome cached = run_oop(s.plan, q, k, s.tokens, P, o);
    const double a = fold ? s.amp : 1.0;
    const Want wq =
        oracle(s.plan, s.layout, a, mode, false, q.x, s.qh, s.tokens, per_token_fn(pos));
    const Want wk =
        oracle(s.plan, s.layout, a, mode, false, k.x, s.kh, s.tokens, per_token_fn(pos));
    Tally tally;
    // with a cache, cos/sin are floats (½ ulp): the kAuto bound, whatever the backend
    ASSERT_TRUE(matches_oracle(cached.q, wq, s.q_out, Backend::kAuto, tally));
    ASSERT_TRUE(matches_oracle(cached.k, wk, s.k_out, Backend::kAuto, tally));
    ASSERT_TRUE(matches_oracle(plain.q, wq, s.q_out, GetParam(), tally));
    ASSERT_EQ(cached.result.unapplied_attention_factor, plain.result.unapplied_attention_factor);
  }
  // M-RoPE reads the cache per pair row
  for (const auto& m : mrope_models()) {
    SCOPED_TRACE(m.name);
    FrequencyPlan plan = build_frequency_plan(parse_hf_config(m.json).layers.at(0));
    std::vector<int> axes(plan.pair_axis.begin(), plan.pair_axis.end());
    const CosSinCache cache(plan, AngleMode::kExact, true, 3000);
    Spec s;
    s.plan = plan;
    s.tokens = 5;
    s.qh = 3;
    s.kh = 1;
    const Side q = q_side(s, rng), k = k_side(s, rng);
    std::vector<std::int64_t> rows(15);
    for (auto& p : rows) p = std::uniform_int_distribution<std::int64_t>(-10, 4000)(rng);
    ApplyOptions o = opts();
    o.cache = &cache;
    const Outcome r =
        run_oop(plan, q, k, 5, Positions::mrope(std::span<const std::int64_t>(rows), 5), o);
    const PosFn pf = [&](std::int64_t t, int axis) {
      return rows[static_cast<std::size_t>(axis * 5 + t)];
    };
    Tally tally;
    ASSERT_TRUE(matches_oracle(r.q,
                               oracle(plan, plan.layout, plan.attention_factor, AngleMode::kExact,
                                      false, q.x, 3, 5, pf, axes),
                               DType::kF32, Backend::kAuto, tally));
  }
}

// The cache's rows: float(A·cos θ), float(A·sin θ) of the exact/hf angle; it grows on demand;
// rows never move.
TEST(CosSinCacheProperties, GrowsOnDemandAndRowsAreCorrect) {
  for (const AngleMode mode : {AngleMode::kExact, AngleMode::kHf}) {
    FrequencyPlan plan = make_plan(128, 96, 500000.0, PairLayout::kHalf);
    plan.attention_factor = 1.25;
    CosSinCache cache(plan, mode, true);
    EXPECT_EQ(cache.size(), 0);
    EXPECT_EQ(cache.pairs(), 48);
    EXPECT_EQ(cache.angles(), mode);
    EXPECT_TRUE(cache.folds_attention_factor());
    EXPECT_EQ(cache.inv_freq(), plan.inv_freq);
    EXPECT_EQ(cache.attention_factor(), 1.25);
    double max_abs = 0;
    for (const float f : plan.inv_freq) max_abs = std::max(max_abs, std::fabs(double{f}));
    EXPECT_EQ(cache.max_abs_inv_freq(), max_abs);
    EXPECT_EQ(max_abs, 1.0);  // inv_freq[0] = theta^0
    EXPECT_TRUE(cache.matches(plan, mode, true));
    EXPECT_FALSE(cache.matches(plan, mode, false));
    EXPECT_FALSE(
        cache.matches(plan, mode == AngleMode::kExact ? AngleMode::kHf : AngleMode::kExact, true));
    cache.reserve(1);
    ASSERT_GE(cache.size(), 1);
    const float* row0 = cache.cos_row(0);
    const std::vector<float> row0_values(row0, row0 + 48);
    cache.reserve(70000);
    ASSERT_GE(cache.size(), 70000);
    EXPECT_EQ(cache.cos_row(0), row0);  // never moved
    EXPECT_EQ(std::vector<float>(row0, row0 + 48), row0_values);
    const std::int64_t size = cache.size();
    cache.reserve(10);  // never shrinks
    EXPECT_EQ(cache.size(), size);
    std::int64_t checked = 0, exact = 0;
    for (std::int64_t p = 0; p < 70000; p += p < 100 ? 1 : 97) {
      for (int i = 0; i < 48; ++i) {
        const LD th = angle(mode, p, plan.inv_freq[static_cast<std::size_t>(i)]);
        const LD c = 1.25L * std::cos(th), s = 1.25L * std::sin(th);
        for (const auto& [got, want] :
             {std::pair{cache.cos_row(p)[i], c}, std::pair{cache.sin_row(p)[i], s}}) {
          const auto w = static_cast<float>(want);
          ++checked;
          exact += got == w;
          ASSERT_LE(std::fabs(static_cast<double>(got) - static_cast<double>(want)),
                    test::ulp_of(DType::kF32, static_cast<double>(want)))
              << "p " << p << " pair " << i;
        }
      }
    }
    EXPECT_GE(exact, checked - checked / 1000) << "rows are correctly rounded almost everywhere";
    EXPECT_THROW(cache.reserve(-1), ArgumentError);
    EXPECT_THROW(cache.reserve(kMaxAbsPosition + 2), ArgumentError);
  }
}

// apply_rope takes max |inv_freq| from a cache built for the plan instead of scanning the
// frequencies: a frequency above the SIMD kernels' bound (4) must still send the call to the
// reference (the same call with Backend::kReference).
TEST(CosSinCacheProperties, CacheMaximumKeepsTheSimdRangeTest) {
  FrequencyPlan plan = make_plan(64, 64, 10000.0, PairLayout::kHalf);
  plan.inv_freq[3] = -8.0f;
  const CosSinCache cache(plan, AngleMode::kExact, true, 64);
  EXPECT_EQ(cache.max_abs_inv_freq(), 8.0);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  std::vector<float> in(3 * 2 * 64);
  for (float& x : in) x = value(rng);
  auto run = [&](Backend backend, const CosSinCache* c) {
    std::vector<float> out(in.size());
    ApplyOptions o;
    o.backend = backend;
    o.cache = c;
    apply_rope(plan, ConstTensorView::contiguous(in.data(), DType::kF32, 3, 2, 64),
               TensorView::contiguous(out.data(), DType::kF32, 3, 2, 64), ConstTensorView{},
               TensorView{}, Positions::offset(5), o);
    return out;
  };
  EXPECT_EQ(run(Backend::kAuto, &cache), run(Backend::kReference, &cache));
  EXPECT_THROW(run(Backend::kSimd, &cache), ArgumentError);  // the SIMD range test declines
  plan.inv_freq[3] = 0.5f;  // within the bound: the SIMD kernels take it
  const CosSinCache small(plan, AngleMode::kExact, true, 64);
  EXPECT_EQ(small.max_abs_inv_freq(), 1.0);
  EXPECT_NO_THROW(run(Backend::kSimd, &small));
}

// Readers on several threads (row reads and apply_rope with the cache) while another thread
// grows it: every row read equals the same row of a cache built up front.
TEST_P(ApplyProperties, CacheConcurrentReadersDuringGrowth) {
  const FrequencyPlan plan = make_plan(128, 128, 1e6, PairLayout::kHalf);
  constexpr std::int64_t kRows = 1 << 16;
  const CosSinCache full(plan, AngleMode::kExact, true, kRows);
  CosSinCache growing(plan, AngleMode::kExact, true, 0);
  std::atomic<bool> done{false};
  std::atomic<std::int64_t> mismatches{0}, reads{0}, applies{0};
  const int pairs = 64;
  std::thread writer([&] {
    for (std::int64_t n = 1; n <= kRows; n = n * 5 / 4 + 100) growing.reserve(std::min(n, kRows));
    growing.reserve(kRows);
    done.store(true);
  });
  auto reader = [&](unsigned seed, bool use_apply) {
    std::mt19937 rng(seed);
    const Backend backend = GetParam();
    while (!done.load() || reads.load() < 1000) {
      const std::int64_t size = growing.size();
      if (size == 0) continue;
      if (!use_apply) {
        const std::int64_t p = std::uniform_int_distribution<std::int64_t>(0, size - 1)(rng);
        if (std::memcmp(growing.cos_row(p), full.cos_row(p), pairs * sizeof(float)) != 0 ||
            std::memcmp(growing.sin_row(p), full.sin_row(p), pairs * sizeof(float)) != 0)
          ++mismatches;
        ++reads;
        continue;
      }
      // apply with positions below the size seen: all rows come from the cache, so the result
      // equals the one with the full cache bit for bit
      std::vector<std::int64_t> pos(4);
      for (auto& p : pos) p = std::uniform_int_distribution<std::int64_t>(0, size - 1)(rng);
      std::vector<float> x(4 * 2 * 128), y1(x.size()), y2(x.size());
      for (auto& v : x) v = std::uniform_real_distribution<float>(-1, 1)(rng);
      ApplyOptions o;
      o.backend = backend;
      o.cache = &growing;
      const auto in = ConstTensorView::contiguous(x.data(), DType::kF32, 4, 2, 128);
      apply_rope(plan, in, TensorView::contiguous(y1.data(), DType::kF32, 4, 2, 128), {}, {},
                 Positions::per_token(std::span<const std::int64_t>(pos)), o);
      o.cache = &full;
      apply_rope(plan, in, TensorView::contiguous(y2.data(), DType::kF32, 4, 2, 128), {}, {},
                 Positions::per_token(std::span<const std::int64_t>(pos)), o);
      if (std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)) != 0) ++mismatches;
      ++applies;
      ++reads;
    }
  };
  std::thread r1(reader, 1u, false), r2(reader, 2u, false), r3(reader, 3u, true);
  writer.join();
  r1.join();
  r2.join();
  r3.join();
  EXPECT_EQ(growing.size(), full.size());
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GT(applies.load(), 0);
  for (std::int64_t p = 0; p < kRows; p += 331)
    ASSERT_EQ(std::memcmp(growing.cos_row(p), full.cos_row(p), pairs * sizeof(float)), 0) << p;
}

// ---- attention factor ------------------------------------------------------------------------

TEST_P(ApplyProperties, UnfoldedAttentionFactorIsReturnedAndRotationIsPure) {
  std::mt19937 rng(1016);
  const RopeConfig yarn =
      parse_hf_config(test::read_file("models/qwen2.5-7b-instruct-yarn.json")).layers.at(0);
  const FrequencyPlan yplan = build_frequency_plan(yarn);
  ASSERT_NEAR(yplan.attention_factor, 0.1 * std::log(4.0) + 1, 1e-12);
  for (int it = 0; it < 20; ++it) {
    Spec s = random_spec(rng);
    if (it < 5) {  // the YaRN model's own plan
      s.plan = yplan;
      s.layout = yplan.layout;
      s.amp = yplan.attention_factor;
    } else if (s.amp == 1.0) {
      s.amp = 1.37;
      s.plan.attention_factor = s.amp;
    }
    SCOPED_TRACE(s.describe());
    const Side q = q_side(s, rng), k = k_side(s, rng);
    const auto pos = random_positions(rng, s.tokens);
    const Positions P = Positions::per_token(std::span<const std::int64_t>(pos));
    ApplyOptions o = opts();
    o.fold_attention_factor = false;
    const Outcome unfolded = run_oop(s.plan, q, k, s.tokens, P, o);
    EXPECT_EQ(unfolded.result.unapplied_attention_factor, s.plan.attention_factor);
    FrequencyPlan pure = s.plan;
    pure.attention_factor = 1.0;
    const Outcome pure_run = run_oop(pure, q, k, s.tokens, P, opts());
    EXPECT_EQ(pure_run.result.unapplied_attention_factor, 1.0);
    ASSERT_TRUE(same_bits(unfolded.qb, pure_run.qb));  // exactly the A = 1 rotation
    ASSERT_TRUE(same_bits(unfolded.kb, pure_run.kb));
    const Outcome folded = run_oop(s.plan, q, k, s.tokens, P, opts());
    EXPECT_EQ(folded.result.unapplied_attention_factor, 1.0);
    Tally tally;
    ASSERT_TRUE(matches_oracle(folded.q,
                               oracle(s.plan, s.layout, s.amp, AngleMode::kExact, false, q.x, s.qh,
                                      s.tokens, per_token_fn(pos)),
                               s.q_out, GetParam(), tally));
    ASSERT_TRUE(matches_oracle(unfolded.q,
                               oracle(s.plan, s.layout, 1.0, AngleMode::kExact, false, q.x, s.qh,
                                      s.tokens, per_token_fn(pos)),
                               s.q_out, GetParam(), tally));
  }
}

// Work large enough to be split over threads (chunks may start inside a ragged sequence)
// gives the same bits as one thread.
TEST_P(ApplyProperties, ThreadedEqualsSingleThread) {
  std::mt19937 rng(1018);
  ThreadPool pool(4);
  for (int it = 0; it < 4; ++it) {
    SpecOptions so;
    so.dtype = kDTypes[it % 3];
    Spec s = random_spec(rng, so);
    s.tokens = 300 + it;
    s.qh = 8;
    s.kh = 3;
    SCOPED_TRACE(s.describe());
    const Side q = q_side(s, rng), k = k_side(s, rng);
    const std::vector<std::int64_t> indptr = {0, 5, 5, 150, 151, s.tokens};
    const std::vector<std::int64_t> offsets = {7, 0, 123456, -3, 2000000000};
    const Positions P = Positions::per_sequence(indptr, offsets);
    ApplyOptions o = opts(it % 2 ? AngleMode::kHf : AngleMode::kExact);
    o.pool = &pool;
    const Outcome many = run_oop(s.plan, q, k, s.tokens, P, o, Kind::kHeadsMajor, Kind::kPadded);
    o.max_threads = 1;
    const Outcome one = run_oop(s.plan, q, k, s.tokens, P, o, Kind::kHeadsMajor, Kind::kPadded);
    ASSERT_TRUE(same_bits(many.qb, one.qb));
    ASSERT_TRUE(same_bits(many.kb, one.kb));
    o.max_threads = 0;
    const Outcome ip = run_ip(s.plan, q, k, s.tokens, P, o, Kind::kContig);
    ASSERT_TRUE(same_bits(ip.qb, one.qb));
    ASSERT_TRUE(same_bits(ip.kb, one.kb));
  }
}

// k may be absent; zero tokens is a no-op that writes nothing.
TEST_P(ApplyProperties, AbsentKAndEmptyCalls) {
  std::mt19937 rng(1017);
  for (int it = 0; it < 10; ++it) {
    const Spec s = random_spec(rng);
    const Side q = q_side(s, rng), k = k_side(s, rng);
    const auto pos = random_positions(rng, s.tokens);
    const Positions P = Positions::per_token(std::span<const std::int64_t>(pos));
    const Outcome both = run_oop(s.plan, q, k, s.tokens, P, opts());
    const Outcome only_q = run_oop(s.plan, q, Side{0, s.k_in, s.k_out, {}}, s.tokens, P, opts());
    ASSERT_TRUE(same_bits(only_q.qb, both.qb));
    Buf qo(s.q_out, 0, s.qh, s.plan.head_dim, Kind::kContig);
    Buf qi(s.q_in, 0, s.qh, s.plan.head_dim, Kind::kContig);
    apply_rope(s.plan, qi.cview(), qo.view(), {}, {}, Positions::offset(0), opts());
    ASSERT_TRUE(qo.guards_intact(false));
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, ApplyProperties,
                         ::testing::Values(Backend::kReference, Backend::kAuto),
                         [](const ::testing::TestParamInfo<Backend>& i) {
                           return i.param == Backend::kReference ? std::string("Reference")
                                                                 : std::string("Auto");
                         });

}  // namespace
}  // namespace ropekit
