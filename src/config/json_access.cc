#include "config/json_access.h"

#include <cmath>
#include <limits>

namespace ropekit::detail {

std::string join_path(const std::string& base, std::string_view key) {
  return base.empty() ? std::string(key) : base + "." + std::string(key);
}
std::string join_index(const std::string& base, std::size_t index) {
  return base + "[" + std::to_string(index) + "]";
}

std::string describe(const Json& value) {
  constexpr std::size_t kMaxChars = 60;
  std::string s;
  try {
    s = value.dump(-1, ' ', true, Json::error_handler_t::replace);
  } catch (...) {
    s = "<unprintable>";
  }
  if (s.size() > kMaxChars) s = s.substr(0, kMaxChars - 3) + "...";
  return s + " (" + value.type_name() + ")";
}

void fail(const std::string& path, const std::string& expected, const Json& found) {
  throw ConfigError(path, "expected " + expected + ", got " + describe(found));
}
void fail_missing(const std::string& path, const std::string& expected) {
  throw ConfigError(path, "required key is missing (expected " + expected + ")");
}

const Json* find(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> get_number(const Json& object, std::string_view key,
                                 const std::string& base) {
  const Json* v = find(object, key);
  if (!v) return std::nullopt;
  const std::string path = join_path(base, key);
  if (!v->is_number()) fail(path, "a number", *v);
  const double d = v->get<double>();
  if (!std::isfinite(d)) fail(path, "a finite number", *v);
  return d;
}

std::optional<std::int64_t> get_integer(const Json& object, std::string_view key,
                                        const std::string& base) {
  const Json* v = find(object, key);
  if (!v) return std::nullopt;
  const std::string path = join_path(base, key);
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() &&
        v->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      fail(path, "an integer below 2^63", *v);
    return v->get<std::int64_t>();
  }
  if (v->is_number_float()) {  // 4096.0 is accepted as 4096
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15)
      return static_cast<std::int64_t>(d);
  }
  fail(path, "an integer", *v);
}

std::optional<bool> get_bool(const Json& object, std::string_view key, const std::string& base) {
  const Json* v = find(object, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) fail(join_path(base, key), "true or false", *v);
  return v->get<bool>();
}

std::optional<std::string> get_string(const Json& object, std::string_view key,
                                      const std::string& base) {
  const Json* v = find(object, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) fail(join_path(base, key), "a string", *v);
  return v->get<std::string>();
}

double check_positive_finite(double v, const std::string& path) {
  if (!(std::isfinite(v) && v > 0)) fail(path, "a finite number > 0", Json(v));
  return v;
}
double check_finite(double v, const std::string& path) {
  if (!std::isfinite(v)) fail(path, "a finite number", Json(v));
  return v;
}
std::int64_t check_positive(std::int64_t v, const std::string& path) {
  if (v <= 0) fail(path, "an integer > 0", Json(v));
  return v;
}

std::vector<double> get_factor_list(const Json& object, std::string_view key,
                                    const std::string& base, std::size_t length) {
  const std::string path = join_path(base, key);
  const Json* v = find(object, key);
  if (!v) fail_missing(path, "a list of " + std::to_string(length) + " numbers (rotary_dim/2)");
  if (!v->is_array()) fail(path, "a list of " + std::to_string(length) + " numbers", *v);
  if (v->size() != length)
    throw ConfigError(path, "expected " + std::to_string(length) +
                                " entries (one per rotated pair: rotary_dim/2), got " +
                                std::to_string(v->size()));
  std::vector<double> out;
  out.reserve(length);
  for (std::size_t i = 0; i < length; ++i) {
    const Json& e = (*v)[i];
    const std::string p = join_index(path, i);
    if (!e.is_number()) fail(p, "a finite number > 0", e);
    out.push_back(check_positive_finite(e.get<double>(), p));
  }
  return out;
}

}  // namespace ropekit::detail
