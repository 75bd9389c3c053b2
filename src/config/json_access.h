// Internal: typed, path-aware access to nlohmann::json values for config parsing.
// Every failure throws ConfigError naming the JSON path, the expectation and the value found.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ropekit/error.h"

namespace ropekit::detail {

using Json = nlohmann::json;

// Parses JSON text: nesting deeper than max_depth, malformed text and numbers too large for a
// double are ConfigErrors (the last naming the JSON path of the number). `what` names the
// document in messages ("config", "scaling_config", ...).
Json parse_json_document(std::string_view text, int max_depth, const std::string& base_path = "");

// "a.b", "a[3]", or "b" when base is empty.
std::string join_path(const std::string& base, std::string_view key);
std::string join_index(const std::string& base, std::size_t index);
// A short, single-line rendering of a value for messages (truncated).
std::string describe(const Json& value);
// User text (a rope type, a key, a layer name) for a message: at most 60 bytes of it, cut at a
// UTF-8 boundary, then "..." and its length; control characters as \xNN.
std::string excerpt(std::string_view text);

[[noreturn]] void fail(const std::string& path, const std::string& expected, const Json& found);
[[noreturn]] void fail_missing(const std::string& path, const std::string& expected);

// Field readers: absent or null → nullopt; wrong type → ConfigError.
const Json* find(const Json& object, std::string_view key);  // nullptr when absent or null
std::optional<double> get_number(const Json& object, std::string_view key, const std::string& base);
std::optional<std::int64_t> get_integer(const Json& object, std::string_view key,
                                        const std::string& base);
std::optional<bool> get_bool(const Json& object, std::string_view key, const std::string& base);
std::optional<std::string> get_string(const Json& object, std::string_view key,
                                      const std::string& base);

// Value checks (the value has been read from `path`).
double check_positive_finite(double v, const std::string& path);
double check_finite(double v, const std::string& path);
std::int64_t check_positive(std::int64_t v, const std::string& path);

// A list of finite positive numbers of exactly `length` entries.
std::vector<double> get_factor_list(const Json& object, std::string_view key,
                                    const std::string& base, std::size_t length);

}  // namespace ropekit::detail
