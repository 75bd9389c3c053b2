// Test helper: rotates q with apply_rope and compares it with the rotation written out here in
// float64, from frequencies the test computed itself (a re-implementation of the reference
// model code's formula) and per-pair position rows.
//
//   exact angles: θ = p · inv (inv the test's float32 value, the product in double), cos/sin in
//                 double; the output must match to a few float32 ulp (tolerance 1e-5).
//   hf angles:    θ = float32(float32(p) · inv) as torch computes it; tolerance 2e-5.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "ropekit/apply.h"

namespace ropekit::test {

struct RotationCase {
  int head_dim = 0;
  PairLayout layout = PairLayout::kHalf;
  std::vector<float> inv_freq;     // the test's own frequencies, one per rotated pair
  std::vector<int> pair_row;       // position row of each pair (empty: row 0)
  std::vector<std::int64_t> rows;  // [n_rows][tokens]
  std::int64_t tokens = 0;
  double amplitude = 1.0;
  std::vector<double> q_scale;  // per token multiplier of q (empty: none)
};

inline void pair_index(PairLayout layout, int pairs, int i, int& a, int& b) {
  if (layout == PairLayout::kHalf) {
    a = i;
    b = i + pairs;
  } else {
    a = 2 * i;
    b = 2 * i + 1;
  }
}

// Expected q after the rotation, [tokens][heads][head_dim], in double.
inline std::vector<double> expected_rotation(const RotationCase& c, const std::vector<float>& q,
                                             int heads, AngleMode angles) {
  const int pairs = static_cast<int>(c.inv_freq.size());
  std::vector<double> out(q.begin(), q.end());
  for (std::int64_t t = 0; t < c.tokens; ++t) {
    const double qs = c.q_scale.empty() ? 1.0 : c.q_scale[static_cast<std::size_t>(t)];
    for (int i = 0; i < pairs; ++i) {
      const int row = c.pair_row.empty() ? 0 : c.pair_row[static_cast<std::size_t>(i)];
      const std::int64_t p = c.rows[static_cast<std::size_t>(row * c.tokens + t)];
      const float inv = c.inv_freq[static_cast<std::size_t>(i)];
      const double theta = angles == AngleMode::kExact
                               ? static_cast<double>(p) * static_cast<double>(inv)
                               : static_cast<double>(static_cast<float>(p) * inv);
      const double cs = c.amplitude * std::cos(theta), sn = c.amplitude * std::sin(theta);
      int a = 0, b = 0;
      pair_index(c.layout, pairs, i, a, b);
      for (int h = 0; h < heads; ++h) {
        const std::size_t base = static_cast<std::size_t>((t * heads + h) * c.head_dim);
        const double xa = q[base + static_cast<std::size_t>(a)];
        const double xb = q[base + static_cast<std::size_t>(b)];
        out[base + static_cast<std::size_t>(a)] = xa * cs - xb * sn;
        out[base + static_cast<std::size_t>(b)] = xb * cs + xa * sn;
      }
    }
    if (qs != 1.0)
      for (int h = 0; h < heads; ++h)
        for (int d = 0; d < c.head_dim; ++d)
          out[static_cast<std::size_t>((t * heads + h) * c.head_dim + d)] *= qs;
  }
  return out;
}

inline std::vector<float> random_q(std::int64_t tokens, int heads, int head_dim, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> q(static_cast<std::size_t>(tokens * heads * head_dim));
  for (float& v : q) v = u(rng);
  return q;
}

// Applies `apply` (which rotates a contiguous f32 q of shape [tokens, heads, head_dim] in
// place) under both angle modes and both backends, and compares with expected_rotation.
template <typename ApplyFn>
void check_rotation(const RotationCase& c, ApplyFn apply, int heads = 2) {
  const std::vector<float> q0 = random_q(c.tokens, heads, c.head_dim, 1234u);
  for (const AngleMode angles : {AngleMode::kExact, AngleMode::kHf}) {
    const std::vector<double> want = expected_rotation(c, q0, heads, angles);
    const double tol = angles == AngleMode::kExact ? 1e-5 : 2e-5;
    for (const Backend backend : {Backend::kReference, Backend::kAuto}) {
      SCOPED_TRACE(testing::Message() << "angles " << (angles == AngleMode::kExact ? "exact" : "hf")
                                      << ", backend " << static_cast<int>(backend));
      std::vector<float> q = q0;
      ApplyOptions o;
      o.angles = angles;
      o.backend = backend;
      apply(TensorView::contiguous(q.data(), DType::kF32, c.tokens, heads, c.head_dim), o);
      double worst = 0;
      for (std::size_t i = 0; i < q.size(); ++i)
        worst = std::max(worst, std::abs(static_cast<double>(q[i]) - want[i]));
      EXPECT_LE(worst, tol);
    }
  }
}

// float32 distance in ulps of a from b.
inline double ulps(float a, float b) {
  if (a == b) return 0;
  return std::abs(static_cast<double>(a) - b) /
         static_cast<double>(std::nextafter(std::abs(b), INFINITY) - std::abs(b));
}

}  // namespace ropekit::test
