// The statistics `ropekit bench` reports: the median of a case's samples and a distribution-free
// confidence interval for it (docs/benchmarks.md, "Reading a ratio").
#pragma once

#include <vector>

namespace ropekit::cli::bench {

// The median (the mean of the two middle values for an even count). `values` must not be empty.
double median(std::vector<double> values);

// A confidence interval for the median of the distribution the samples came from, from their
// order statistics alone (no assumption on the distribution's shape; the samples independent):
// for n sorted samples x(1) <= ... <= x(n), [x(j), x(n+1-j)] covers the median with probability
//   coverage = 1 - 2·P(B <= j - 1),   B ~ Binomial(n, 1/2),
// and j is the largest rank whose coverage is at least `confidence`. With too few samples for
// any such j (n < 6 at 95%) it is the full range [x(1), x(n)], and `coverage` says how much less
// it covers. `values` must not be empty; `confidence` lies in (0, 1).
struct MedianInterval {
  double low = 0, high = 0;
  double coverage = 0;  // the probability that [low, high] covers the median
};
MedianInterval median_interval(std::vector<double> values, double confidence = 0.95);

}  // namespace ropekit::cli::bench
