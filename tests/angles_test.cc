// The exact-angle helpers of src/kernel/angles.h that the SIMD on-the-fly cos/sin rely on,
// against binary128 (__float128, 113-bit significand) arithmetic:
//   * turns_q64: T = frac((m + m_lo)/(2π))·2^64 rounded to nearest, so that the wrapping
//     product low64(p·T) is the angle p·(m + m_lo) in units of 2^-64 turn, within |p|·2^-65 turn.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernel/angles.h"

namespace ropekit {
namespace {

using F128 = __float128;

// 1/(2π) from the hexadecimal digits of 2/π (0.A2F9836E 4E441529 FC2757D1 F534DDC0 DB629599
// 3C439041 ..., the table of Payne–Hanek reductions), divided by 4. 192 bits, rounded to 113.
F128 inv_two_pi() {
  const F128 two64 = static_cast<F128>(18446744073709551616.0);
  F128 c = static_cast<F128>(0xA2F9836E4E441529ULL) / two64;
  c += static_cast<F128>(0xFC2757D1F534DDC0ULL) / two64 / two64;
  c += static_cast<F128>(0xDB6295993C439041ULL) / two64 / two64 / two64;
  return c / 4;
}

// frac(x) in [0, 1).
F128 frac(F128 x) {
  // |x| < 2^52 here: the integer part fits an int64.
  F128 whole = static_cast<F128>(static_cast<std::int64_t>(x));
  if (whole > x) whole -= 1;
  return x - whole;
}

// (a − b) mod 2^64 as a signed distance.
std::int64_t wrap_diff(std::uint64_t a, std::uint64_t b) {
  return static_cast<std::int64_t>(a - b);
}

TEST(ExactAngles, DoubleDoubleInverseTwoPiMatchesBinary128) {
  const F128 c = inv_two_pi();
  const F128 dd = static_cast<F128>(detail::kInvTwoPiHi) + static_cast<F128>(detail::kInvTwoPiLo);
  const double rel = static_cast<double>((dd - c) / c);
  EXPECT_LT(std::fabs(rel), 0x1p-104) << "hi + lo is not 1/(2π) to double-double precision";
  EXPECT_EQ(detail::kInvTwoPiHi, static_cast<double>(c));  // hi is the double nearest 1/(2π)
}

TEST(ExactAngles, TurnsAreTheRoundedFractionOfATurn) {
  const F128 c = inv_two_pi();
  const F128 two64 = static_cast<F128>(18446744073709551616.0);
  std::vector<std::pair<double, double>> ms;
  // Llama-3-style inverse frequencies (θ = 500000, 64 pairs), as floats.
  for (int i = 0; i < 64; ++i)
    ms.emplace_back(static_cast<float>(std::pow(500000.0, -i / 64.0)), 0.0);
  // Edge values: 1, the first float above 2π·k, tiny, negative, above one turn per position,
  // and multipliers with a low part (inv_freq · position scale as m + m_lo).
  for (const double m :
       {1.0, 6.2831854820251465, 6.283185307179586, 1e-9, 3e-38, -0.75, 123.456, 6.5e6})
    ms.emplace_back(m, 0.0);
  ms.emplace_back(1.0 / 3.0, 1.850371707708594e-17);
  ms.emplace_back(0.0123, -4.4e-19);
  std::mt19937_64 rng(11);
  for (int i = 0; i < 2000; ++i) {
    const double m = std::ldexp(std::uniform_real_distribution<double>(0.5, 1.0)(rng),
                                static_cast<int>(rng() % 60) - 50);
    ms.emplace_back(rng() % 2 ? m : -m, 0.0);
  }
  for (const auto& [m, m_lo] : ms) {
    std::uint64_t t = 0;
    ASSERT_TRUE(detail::turns_q64(m, m_lo, t)) << m;
    const F128 exact = frac((static_cast<F128>(m) + static_cast<F128>(m_lo)) * c) * two64;
    // The rounded value (ties do not occur at this precision).
    const F128 rounded = exact + static_cast<F128>(0.5);
    const std::uint64_t want = rounded >= two64 ? 0 : static_cast<std::uint64_t>(rounded);
    ASSERT_LE(std::llabs(wrap_diff(t, want)), 1) << "m = " << m << " + " << m_lo;

    // Positions up to ±(2^31 − 1): low64(p·T) is within |p|·2^-65 turn (+1 unit) of p·m/(2π).
    for (const std::int64_t p :
         {std::int64_t{1}, std::int64_t{-1}, std::int64_t{4093}, std::int64_t{131071},
          std::int64_t{2147483647}, std::int64_t{-2147483647}}) {
      const std::uint64_t v = static_cast<std::uint64_t>(p) * t;
      const F128 angle =
          frac(static_cast<F128>(p) * ((static_cast<F128>(m) + static_cast<F128>(m_lo)) * c)) *
          two64;
      const std::uint64_t ref = angle + static_cast<F128>(0.5) >= two64
                                    ? 0
                                    : static_cast<std::uint64_t>(angle + static_cast<F128>(0.5));
      const std::int64_t bound = std::llabs(p) / 2 + 2;
      ASSERT_LE(std::llabs(wrap_diff(v, ref)), bound) << "m = " << m << ", p = " << p;
    }
  }
}

TEST(ExactAngles, TurnsRefuseOutOfRangeMultipliers) {
  std::uint64_t t = 0;
  EXPECT_FALSE(detail::turns_q64(7e6, 0.0, t));  // 1.1e6 turns per position
  EXPECT_FALSE(detail::turns_q64(-7e6, 0.0, t));
  EXPECT_FALSE(detail::turns_q64(INFINITY, 0.0, t));
  EXPECT_FALSE(detail::turns_q64(NAN, 0.0, t));
  EXPECT_TRUE(detail::turns_q64(6e6, 0.0, t));  // 0.95e6
}

}  // namespace
}  // namespace ropekit
