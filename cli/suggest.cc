#include "suggest.h"

#include <algorithm>
#include <cctype>
#include <numeric>

namespace ropekit::cli {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::size_t edit_distance(std::string_view a_in, std::string_view b_in) {
  const std::string a = lower(a_in), b = lower(b_in);
  // One row of the dynamic-programming table: row[j] = distance(a[0..i), b[0..j)).
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];  // distance(a[0..i-1), b[0..j-1))
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::vector<std::string> closest_names(std::string_view query,
                                       const std::vector<std::string>& candidates,
                                       std::size_t count) {
  const std::string q = lower(query);
  std::vector<std::pair<std::size_t, std::size_t>> scored;  // (score, index)
  scored.reserve(candidates.size());
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const std::string c = lower(candidates[i]);
    std::size_t score = edit_distance(q, c);
    if (!q.empty() && (c.find(q) != std::string::npos || q.find(c) != std::string::npos)) {
      score = std::min<std::size_t>(score, 1);
    }
    scored.emplace_back(score, i);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (std::size_t k = 0; k < scored.size() && k < count; ++k) {
    out.push_back(candidates[scored[k].second]);
  }
  return out;
}

}  // namespace ropekit::cli
