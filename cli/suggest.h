// Internal to the ropekit command: "did you mean" suggestions for mistyped names.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ropekit::cli {

// Levenshtein distance (insertions, deletions, substitutions each cost 1), case-insensitive.
std::size_t edit_distance(std::string_view a, std::string_view b);

// Up to `count` candidates closest to `query`, best first. A candidate that contains the query
// (or that the query contains) ranks as if one edit away, so "llama-3.1" finds
// "llama-3.1-8b-instruct" although a dozen characters differ. Ties keep the candidates' order.
std::vector<std::string> closest_names(std::string_view query,
                                       const std::vector<std::string>& candidates,
                                       std::size_t count = 3);

}  // namespace ropekit::cli
