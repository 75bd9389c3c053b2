// ropekit/dtype.h, checked exhaustively against an independent round-to-nearest-even.
//
// The reference here knows nothing of the bit tricks in dtype.h: it decodes every 16-bit
// pattern of a format to its value (sign · mantissa · 2^exponent, by ldexp), sorts nothing
// (positive patterns are monotonic in value, which the test also checks) and rounds a double x
// to the format by value comparisons only:
//
//     lo = the largest finite value ≤ |x|, hi = the next one (2^(emax+1) past the largest
//     finite value, standing for the overflow), mid = (lo + hi) / 2 (exact in double);
//     |x| < mid → lo, |x| > mid → hi, |x| == mid → whichever has an even bit pattern.
//
// hi == 2^(emax+1) is the bit pattern of +inf, so overflow (f16: 65520 → inf) and its "ties
// go to inf" rule come out of the same comparison.
//
// Covered: all 2^16 bf16 and f16 values (decode, round trip through f32 and f64, NaN kept NaN
// and quiet); f32 → bf16/f16 at every boundary (each value, each midpoint, ±1 f32 ulp around
// both), subnormals, ±0, ±inf, overflow; random f32 and f64 inputs; f64 → bf16/f16 as ONE
// rounding, on doubles a hair above/below each tie where going through float first would
// round twice (the test checks that such double rounding really happens on those inputs).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "ropekit/dtype.h"

namespace ropekit {
namespace {

struct Format {
  const char* name;
  int mant_bits;  // explicit fraction bits
  int exp_bits;   // exponent field width
  int bias;
  std::uint16_t inf_bits;  // +inf
  std::uint16_t quiet_bit;
};

constexpr Format kBf16{"bf16", 7, 8, 127, 0x7F80u, 0x0040u};
constexpr Format kF16{"f16", 10, 5, 15, 0x7C00u, 0x0200u};

bool is_nan_bits(const Format& f, std::uint16_t b) { return (b & 0x7FFFu) > f.inf_bits; }

// Value of a finite, non-NaN bit pattern, from the field definitions.
double decode(const Format& f, std::uint16_t b) {
  const bool neg = (b & 0x8000u) != 0;
  const int e = (b >> f.mant_bits) & ((1 << f.exp_bits) - 1);
  const int m = b & ((1 << f.mant_bits) - 1);
  double v = 0;
  if (e == 0) {
    v = std::ldexp(static_cast<double>(m), 1 - f.bias - f.mant_bits);
  } else if (e == (1 << f.exp_bits) - 1) {
    v = std::numeric_limits<double>::infinity();
  } else {
    v = std::ldexp(static_cast<double>((1 << f.mant_bits) + m), e - f.bias - f.mant_bits);
  }
  return neg ? -v : v;
}

// Table of the values of bits 0 .. inf_bits; entry inf_bits holds 2^(emax+1) (the overflow
// stand-in), so "rounds to the entry inf_bits" means "overflows to inf".
struct Table {
  Format fmt;
  std::vector<double> v;
  explicit Table(const Format& f) : fmt(f) {
    for (std::uint32_t b = 0; b < f.inf_bits; ++b)
      v.push_back(decode(f, static_cast<std::uint16_t>(b)));
    const int emax = (1 << f.exp_bits) - 2 - f.bias;
    v.push_back(std::ldexp(1.0, emax + 1));
  }
  // RNE of a non-NaN double, by value comparisons.
  std::uint16_t round(double x) const {
    const std::uint16_t sign = std::signbit(x) ? 0x8000u : 0u;
    const double a = std::fabs(x);
    if (a >= v.back()) return static_cast<std::uint16_t>(sign | fmt.inf_bits);
    const auto it = std::upper_bound(v.begin(), v.end(), a);  // first value > a (exists)
    const auto hi = static_cast<std::size_t>(it - v.begin());
    const std::size_t lo = hi - 1;           // v[0] = 0 <= a
    const double mid = (v[lo] + v[hi]) / 2;  // exact: both have <= 11 significant bits
    std::size_t pick = lo;
    if (a > mid)
      pick = hi;
    else if (a == mid)
      pick = (lo % 2 == 0) ? lo : hi;
    return static_cast<std::uint16_t>(sign | pick);
  }
};

const Table& bf16_table() {
  static const Table t(kBf16);
  return t;
}
const Table& f16_table() {
  static const Table t(kF16);
  return t;
}

std::uint32_t fbits(float f) { return std::bit_cast<std::uint32_t>(f); }

// ---- decode and round trip -------------------------------------------------------------------

TEST(DType, TablesAreMonotonic) {
  for (const Table* t : {&bf16_table(), &f16_table()}) {
    for (std::size_t i = 1; i < t->v.size(); ++i)
      ASSERT_LT(t->v[i - 1], t->v[i]) << t->fmt.name << " " << i;
  }
}

TEST(DType, Bf16DecodeAndRoundTripAll65536) {
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const auto b = static_cast<std::uint16_t>(i);
    const float f = bf16_to_f32(BF16{b});
    SCOPED_TRACE(::testing::Message() << "bf16 0x" << std::hex << i);
    if (is_nan_bits(kBf16, b)) {
      ASSERT_TRUE(std::isnan(f));
      ASSERT_EQ(fbits(f), static_cast<std::uint32_t>(b) << 16);  // payload kept exactly
      // Back to bf16: NaN, quiet, sign and payload kept.
      for (const std::uint16_t r :
           {f32_to_bf16(f).bits, f64_to_bf16(static_cast<double>(f)).bits}) {
        ASSERT_TRUE(is_nan_bits(kBf16, r)) << std::hex << r;
        ASSERT_EQ(r, b | kBf16.quiet_bit) << std::hex << r;
      }
      continue;
    }
    const double want = decode(kBf16, b);
    ASSERT_EQ(static_cast<double>(f), want);
    ASSERT_EQ(std::signbit(f), (b & 0x8000u) != 0);
    ASSERT_EQ(f32_to_bf16(f).bits, b);
    ASSERT_EQ(f64_to_bf16(static_cast<double>(f)).bits, b);
    ASSERT_EQ(bf16_table().round(want), b);  // the reference agrees on representable values
    // generic helpers
    ASSERT_EQ(load_as_double(DType::kBF16, &b), want);
    std::uint16_t stored = 0;
    store_from_double(DType::kBF16, &stored, want);
    ASSERT_EQ(stored, b);
    ASSERT_EQ(round_to_dtype(DType::kBF16, want), want);
  }
}

TEST(DType, F16DecodeAndRoundTripAll65536) {
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const auto b = static_cast<std::uint16_t>(i);
    const float f = f16_to_f32(F16{b});
    SCOPED_TRACE(::testing::Message() << "f16 0x" << std::hex << i);
    if (is_nan_bits(kF16, b)) {
      ASSERT_TRUE(std::isnan(f));
      ASSERT_EQ(std::signbit(f), (b & 0x8000u) != 0);
      for (const std::uint16_t r : {f32_to_f16(f).bits, f64_to_f16(static_cast<double>(f)).bits}) {
        ASSERT_TRUE(is_nan_bits(kF16, r)) << std::hex << r;
        ASSERT_EQ(r, b | kF16.quiet_bit) << std::hex << r;  // quiet; sign and payload kept
      }
      continue;
    }
    const double want = decode(kF16, b);
    ASSERT_EQ(static_cast<double>(f), want);
    ASSERT_EQ(std::signbit(f), (b & 0x8000u) != 0);
    ASSERT_EQ(f32_to_f16(f).bits, b);
    ASSERT_EQ(f64_to_f16(static_cast<double>(f)).bits, b);
    ASSERT_EQ(f16_table().round(want), b);
    ASSERT_EQ(load_as_double(DType::kF16, &b), want);
    std::uint16_t stored = 0;
    store_from_double(DType::kF16, &stored, want);
    ASSERT_EQ(stored, b);
    ASSERT_EQ(round_to_dtype(DType::kF16, want), want);
  }
}

// ---- f32 → 16 bits at every boundary ---------------------------------------------------------

// Each value, each midpoint to the next value, and ±1 f32 ulp around both, both signs.
std::vector<float> boundary_floats(const Table& t) {
  std::vector<float> out;
  const float inf = std::numeric_limits<float>::infinity();
  for (std::size_t b = 0; b + 1 < t.v.size(); ++b) {
    const auto lo = static_cast<float>(t.v[b]);
    // the midpoint has one bit more than the format: exact in float (also 2^128 − 2^119 for
    // bf16, the overflow threshold, is a finite float)
    const double mid_d = (t.v[b] + t.v[b + 1]) / 2;
    const auto mid = static_cast<float>(mid_d);
    EXPECT_EQ(static_cast<double>(mid), mid_d);
    for (const float x : {lo, std::nextafter(lo, inf), std::nextafter(lo, -inf), mid,
                          std::nextafter(mid, inf), std::nextafter(mid, -inf)}) {
      out.push_back(x);
      out.push_back(-x);
    }
  }
  return out;
}

void check_f32(const Table& t, float x) {
  const std::uint16_t want = t.round(static_cast<double>(x));
  const bool bf = t.fmt.mant_bits == 7;
  const std::uint16_t got = bf ? f32_to_bf16(x).bits : f32_to_f16(x).bits;
  const std::uint16_t got64 =
      bf ? f64_to_bf16(static_cast<double>(x)).bits : f64_to_f16(static_cast<double>(x)).bits;
  ASSERT_EQ(got, want) << t.fmt.name << " from f32 " << std::hexfloat << x << " (0x" << std::hex
                       << fbits(x) << ")";
  ASSERT_EQ(got64, want) << t.fmt.name << " from f64 " << std::hexfloat << x;
}

TEST(DType, F32ToBf16RneAtEveryBoundary) {
  const auto xs = boundary_floats(bf16_table());
  EXPECT_GT(xs.size(), 32640u * 12 - 1);
  for (const float x : xs) check_f32(bf16_table(), x);
}

TEST(DType, F32ToF16RneAtEveryBoundary) {
  const auto xs = boundary_floats(f16_table());
  EXPECT_GT(xs.size(), 31744u * 12 - 1);
  for (const float x : xs) check_f32(f16_table(), x);
}

TEST(DType, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const float fmax = std::numeric_limits<float>::max();
  const float denorm_min = std::numeric_limits<float>::denorm_min();
  // zeros keep their sign
  EXPECT_EQ(f32_to_bf16(0.0f).bits, 0x0000u);
  EXPECT_EQ(f32_to_bf16(-0.0f).bits, 0x8000u);
  EXPECT_EQ(f32_to_f16(0.0f).bits, 0x0000u);
  EXPECT_EQ(f32_to_f16(-0.0f).bits, 0x8000u);
  EXPECT_EQ(f64_to_f16(-0.0).bits, 0x8000u);
  EXPECT_EQ(f64_to_bf16(-0.0).bits, 0x8000u);
  // infinities
  EXPECT_EQ(f32_to_bf16(inf).bits, 0x7F80u);
  EXPECT_EQ(f32_to_bf16(-inf).bits, 0xFF80u);
  EXPECT_EQ(f32_to_f16(inf).bits, 0x7C00u);
  EXPECT_EQ(f32_to_f16(-inf).bits, 0xFC00u);
  EXPECT_EQ(f64_to_bf16(-HUGE_VAL).bits, 0xFF80u);
  EXPECT_EQ(f64_to_f16(HUGE_VAL).bits, 0x7C00u);
  // overflow
  EXPECT_EQ(f32_to_bf16(fmax).bits, 0x7F80u);  // above bf16's threshold (2^128 − 2^119)
  EXPECT_EQ(f32_to_bf16(-fmax).bits, 0xFF80u);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x7F7F7FFFu)).bits, 0x7F7Fu);  // just below: max
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x7F7F8000u)).bits, 0x7F80u);  // the tie: inf
  EXPECT_EQ(f64_to_bf16(1e300).bits, 0x7F80u);
  EXPECT_EQ(f32_to_f16(65504.0f).bits, 0x7BFFu);
  EXPECT_EQ(f32_to_f16(65519.99f).bits, 0x7BFFu);
  EXPECT_EQ(f32_to_f16(std::nextafter(65520.0f, 0.0f)).bits, 0x7BFFu);
  EXPECT_EQ(f32_to_f16(65520.0f).bits, 0x7C00u);
  EXPECT_EQ(f32_to_f16(-65520.0f).bits, 0xFC00u);
  EXPECT_EQ(f64_to_f16(65520.0).bits, 0x7C00u);
  EXPECT_EQ(f64_to_f16(std::nextafter(65520.0, 0.0)).bits, 0x7BFFu);
  EXPECT_EQ(f32_to_f16(1e5f).bits, 0x7C00u);
  EXPECT_EQ(f32_to_f16(fmax).bits, 0x7C00u);
  EXPECT_EQ(f64_to_f16(1e300).bits, 0x7C00u);
  // f16 subnormals: quantum 2^-24
  EXPECT_EQ(f32_to_f16(0x1p-24f).bits, 0x0001u);
  EXPECT_EQ(f32_to_f16(0x1p-25f).bits, 0x0000u);  // tie → even (0)
  EXPECT_EQ(f32_to_f16(-0x1p-25f).bits, 0x8000u);
  EXPECT_EQ(f32_to_f16(std::nextafter(0x1p-25f, 1.0f)).bits, 0x0001u);
  EXPECT_EQ(f32_to_f16(0x3p-25f).bits, 0x0002u);             // tie between 1 and 2 quanta → 2
  EXPECT_EQ(f32_to_f16(0x5p-25f).bits, 0x0002u);             // tie between 2 and 3 → 2
  EXPECT_EQ(f32_to_f16(0x1p-14f).bits, 0x0400u);             // smallest normal
  EXPECT_EQ(f32_to_f16(0x1p-14f - 0x1p-25f).bits, 0x0400u);  // tie 0x3FF/0x400 → even 0x400
  EXPECT_EQ(f32_to_f16(0x1p-14f - 0x3p-25f).bits, 0x03FEu);  // tie 0x3FE/0x3FF → 0x3FE
  EXPECT_EQ(f32_to_f16(denorm_min).bits, 0x0000u);           // f32 subnormals → ±0
  EXPECT_EQ(f32_to_f16(-denorm_min).bits, 0x8000u);
  EXPECT_EQ(f64_to_f16(1e-300).bits, 0x0000u);
  EXPECT_EQ(f64_to_f16(0x1.0000000000001p-25).bits, 0x0001u);  // a hair above the tie
  // bf16 subnormals (bf16 shares f32's exponent range): quantum 2^-133
  EXPECT_EQ(f32_to_bf16(denorm_min).bits, 0x0000u);
  EXPECT_EQ(f32_to_bf16(0x1p-133f).bits, 0x0001u);
  EXPECT_EQ(f32_to_bf16(0x1p-134f).bits, 0x0000u);  // tie → 0
  EXPECT_EQ(f32_to_bf16(0x3p-134f).bits, 0x0002u);  // tie → even
  EXPECT_EQ(f32_to_bf16(std::nextafter(0x1p-134f, 1.0f)).bits, 0x0001u);
  EXPECT_EQ(f64_to_bf16(0x1p-200).bits, 0x0000u);
  // plain ties
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f).bits, 0x3F80u);  // 1 + half ulp → 1 (even)
  EXPECT_EQ(f32_to_bf16(1.0f + 0x3p-8f).bits, 0x3F82u);  // → 1 + 2 ulp (even)
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f).bits, 0x3C00u);
  EXPECT_EQ(f32_to_f16(1.0f + 0x3p-11f).bits, 0x3C02u);
}

TEST(DType, NaNStaysQuietNaN) {
  std::mt19937 rng(7);
  std::vector<std::uint32_t> nans = {0x7F800001u, 0xFF800001u, 0x7FC00000u, 0xFFC00000u,
                                     0x7FBFFFFFu, 0x7F810000u, 0x7F80FFFFu, 0x7FFFFFFFu,
                                     0xFFFFFFFFu, 0x7FA00000u};
  for (int i = 0; i < 100000; ++i) {
    std::uint32_t u = (rng() & 0x807FFFFFu) | 0x7F800000u;
    if ((u & 0x7FFFFFu) == 0) u |= 1;
    nans.push_back(u);
  }
  for (const std::uint32_t u : nans) {
    const float f = std::bit_cast<float>(u);
    ASSERT_TRUE(std::isnan(f));
    const bool neg = (u >> 31) != 0;
    const std::uint16_t b = f32_to_bf16(f).bits;
    ASSERT_TRUE(is_nan_bits(kBf16, b)) << std::hex << u << " → " << b;
    ASSERT_TRUE((b & kBf16.quiet_bit) != 0) << std::hex << u;
    ASSERT_EQ((b & 0x8000u) != 0, neg);
    ASSERT_EQ(b & 0x3Fu, (u >> 16) & 0x3Fu) << std::hex << u;  // top payload bits kept
    const std::uint16_t b64 = f64_to_bf16(static_cast<double>(f)).bits;
    ASSERT_TRUE(is_nan_bits(kBf16, b64) && (b64 & kBf16.quiet_bit) != 0) << std::hex << u;
    const std::uint16_t h = f32_to_f16(f).bits;
    ASSERT_TRUE(is_nan_bits(kF16, h)) << std::hex << u << " → " << h;
    ASSERT_TRUE((h & kF16.quiet_bit) != 0) << std::hex << u;
    ASSERT_EQ((h & 0x8000u) != 0, neg);
    ASSERT_EQ(h & 0x1FFu, (u >> 13) & 0x1FFu) << std::hex << u;
    double q = std::numeric_limits<double>::quiet_NaN();
    if (neg) q = -q;
    ASSERT_TRUE(is_nan_bits(kF16, f64_to_f16(q).bits));
    ASSERT_EQ((f64_to_f16(q).bits & 0x8000u) != 0, neg);
    ASSERT_TRUE(std::isnan(round_to_dtype(DType::kF16, q)));
    ASSERT_TRUE(std::isnan(round_to_dtype(DType::kBF16, q)));
  }
}

// ---- random inputs ---------------------------------------------------------------------------

TEST(DType, RandomF32) {
  std::mt19937 rng(1234);
  for (int i = 0; i < (1 << 20); ++i) {
    // any non-NaN bit pattern (for bf16: the full f32 range matters)
    std::uint32_t u = rng();
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) u &= 0xFF7FFFFFu;
    check_f32(bf16_table(), std::bit_cast<float>(u));
    // f16's range: exponent within [-27, 17], random sign and mantissa
    const std::uint32_t e = 127 - 27 + rng() % 45;
    const std::uint32_t v = (u & 0x807FFFFFu) | (e << 23);
    check_f32(f16_table(), std::bit_cast<float>(v));
  }
}

TEST(DType, RandomF64IsOneRounding) {
  std::mt19937_64 rng(99);
  for (int i = 0; i < (1 << 20); ++i) {
    const std::uint64_t u = rng();
    // exponent within [-140, 130] (bf16) / [-27, 17] (f16), random sign and 52-bit mantissa
    const std::uint64_t man = u & 0x800FFFFFFFFFFFFFull;
    const double xb = std::bit_cast<double>(man | ((1023 - 140 + (u >> 20) % 271) << 52));
    const double xh = std::bit_cast<double>(man | ((1023 - 27 + (u >> 32) % 45) << 52));
    ASSERT_EQ(f64_to_bf16(xb).bits, bf16_table().round(xb)) << std::hexfloat << xb;
    ASSERT_EQ(f64_to_f16(xh).bits, f16_table().round(xh)) << std::hexfloat << xh;
    ASSERT_EQ(round_to_dtype(DType::kF16, xh), decode(kF16, f16_table().round(xh)));
  }
}

// ---- f64 → 16 bits is ONE rounding -----------------------------------------------------------
// For each tie m between two adjacent 16-bit values, doubles m·(1 ± δ) and m ± {¼, ½} f32 ulp
// round to m in float (the ½-ulp one by ties-to-even: m's f32 pattern ends in 0), so
// float → 16 bits would then see an exact tie and go to the even side; the true value lies
// strictly on one side.
template <class Direct, class ViaFloat>
void check_single_rounding(const Table& t, Direct direct, ViaFloat via_float) {
  std::int64_t checked = 0, double_round_differs = 0;
  for (std::size_t b = 0; b + 1 < t.v.size(); ++b) {
    const double m = (t.v[b] + t.v[b + 1]) / 2;
    const double ulp32 = static_cast<double>(std::nextafter(static_cast<float>(m), INFINITY)) - m;
    const double deltas[] = {m * 0x1p-40, std::ldexp(1.0, std::ilogb(m) - 52), ulp32 / 4,
                             ulp32 / 2};
    for (const double dlt : deltas) {
      for (const double x0 : {m + dlt, m - dlt}) {
        if (x0 == m) continue;
        for (const double x : {x0, -x0}) {
          const std::uint16_t want = t.round(x);
          ASSERT_EQ(direct(x), want)
              << t.fmt.name << " " << std::hexfloat << x << " (tie " << m << ")";
          ++checked;
          double_round_differs += via_float(static_cast<float>(x)) != want;
        }
      }
    }
  }
  EXPECT_GT(checked, 100000);
  // going through float really does round twice on these inputs, about half the time
  EXPECT_GT(double_round_differs, checked / 4) << t.fmt.name;
}

TEST(DType, F64ToBf16IsSingleRounding) {
  check_single_rounding(
      bf16_table(), [](double x) { return f64_to_bf16(x).bits; },
      [](float f) { return f32_to_bf16(f).bits; });
}

TEST(DType, F64ToF16IsSingleRounding) {
  check_single_rounding(
      f16_table(), [](double x) { return f64_to_f16(x).bits; },
      [](float f) { return f32_to_f16(f).bits; });
}

TEST(DType, NamesAndSizes) {
  EXPECT_EQ(dtype_name(DType::kF32), "f32");
  EXPECT_EQ(dtype_name(DType::kF16), "f16");
  EXPECT_EQ(dtype_name(DType::kBF16), "bf16");
  EXPECT_EQ(dtype_size(DType::kF32), 4);
  EXPECT_EQ(dtype_size(DType::kF16), 2);
  EXPECT_EQ(dtype_size(DType::kBF16), 2);
  static_assert(sizeof(F16) == 2 && sizeof(BF16) == 2);
  static_assert(bf16_to_f32(BF16{0x3F80u}) == 1.0f);  // constexpr
  static_assert(f32_to_bf16(1.0f + 0x1p-7f).bits == 0x3F81u);
}

}  // namespace
}  // namespace ropekit
