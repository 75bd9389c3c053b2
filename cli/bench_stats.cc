// Order statistics for `ropekit bench` (cli/bench_stats.h).
#include "bench_stats.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace ropekit::cli::bench {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

MedianInterval median_interval(std::vector<double> values, double confidence) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  // tail[k] = P(B <= k) for B ~ Binomial(n, 1/2), summed from the pmf in logs: n can exceed the
  // range where 2^-n or the binomial coefficients stay finite in a double.
  const double log_half_n = static_cast<double>(n) * std::log(0.5);
  double tail = 0;
  MedianInterval best{values.front(), values.back(), 1.0 - 2.0 * std::exp(log_half_n)};
  for (std::size_t j = 1; 2 * j <= n; ++j) {
    // P(B <= j - 1) after adding the pmf at j - 1.
    const double k = static_cast<double>(j - 1);
    tail += std::exp(std::lgamma(static_cast<double>(n) + 1) - std::lgamma(k + 1) -
                     std::lgamma(static_cast<double>(n) - k + 1) + log_half_n);
    const double coverage = 1.0 - 2.0 * tail;
    if (coverage < confidence) break;
    best = {values[j - 1], values[n - j], coverage};
  }
  return best;
}

}  // namespace ropekit::cli::bench
