#include "config/json_access.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ropekit::detail {

namespace {
// Where the parser is: one frame per open object/array.
struct Frame {
  bool array = false;
  std::size_t index = 0;
  std::string key;
};
std::string frames_path(const std::string& base, const std::vector<Frame>& frames) {
  std::string p = base;
  for (const Frame& f : frames) {
    if (f.array)
      p = join_index(p, f.index);
    else if (!f.key.empty())
      p = join_path(p, f.key);
  }
  return p;
}
}  // namespace

Json parse_json_document(std::string_view text, int max_depth, const std::string& base_path) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
    throw ConfigError(base_path, "malformed JSON: empty input; expected a JSON object");
  std::vector<Frame> frames;
  // The callback tracks where the parser is (for messages) and refuses deep nesting as soon
  // as it opens, before anything deep is built.
  auto track = [&frames, max_depth, &base_path](int depth, Json::parse_event_t event,
                                                Json& parsed) {
    using E = Json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        if (depth >= max_depth) {
          // name the top-level key whose value is too deep
          std::vector<Frame> top(frames.begin(),
                                 frames.begin() + std::min<std::size_t>(frames.size(), 1));
          throw ConfigError(frames_path(base_path, top), "JSON nesting deeper than " +
                                                             std::to_string(max_depth) +
                                                             " levels; expected a config value");
        }
        frames.push_back({event == E::array_start, 0, ""});
        break;
      case E::key:
        if (!frames.empty())
          frames.back().key = parsed.is_string() ? parsed.get<std::string>() : "";
        break;
      case E::object_end:
      case E::array_end:
        if (!frames.empty()) frames.pop_back();
        if (!frames.empty() && frames.back().array) ++frames.back().index;
        break;
      case E::value:
        if (!frames.empty() && frames.back().array) ++frames.back().index;
        break;
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), track);
  } catch (const Json::out_of_range& e) {
    // nlohmann reports numbers beyond the double range (1e999) as out_of_range 406
    static const char* const kIntegerKeys[] = {"max_position_embeddings",
                                               "original_max_position_embeddings",
                                               "head_dim",
                                               "hidden_size",
                                               "num_attention_heads",
                                               "dims",
                                               "num_hidden_layers",
                                               "qk_rope_head_dim",
                                               "rotary_dim",
                                               "sliding_window_pattern",
                                               "n_embd",
                                               "n_head"};
    const std::string key = frames.empty() || frames.back().array ? "" : frames.back().key;
    const bool integer = std::any_of(std::begin(kIntegerKeys), std::end(kIntegerKeys),
                                     [&](const char* k) { return key == k; });
    throw ConfigError(
        frames_path(base_path, frames),
        std::string(integer ? "expected an integer" : "expected a finite number > 0") +
            ", got a number too large for a double (" + e.what() + ")");
  } catch (const Json::exception& e) {
    throw ConfigError(base_path, std::string("malformed JSON: ") + e.what());
  }
}

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

std::string excerpt(std::string_view text) {
  constexpr std::size_t kMaxChars = 60;
  std::size_t keep = std::min(text.size(), kMaxChars);
  while (keep < text.size() && keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80)
    --keep;
  std::string s;
  for (std::size_t i = 0; i < keep; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) {
      static const char kHex[] = "0123456789abcdef";
      s += "\\x";
      s += kHex[c >> 4];
      s += kHex[c & 15];
    } else {
      s += static_cast<char>(c);
    }
  }
  if (keep < text.size()) s += "... (" + std::to_string(text.size()) + " bytes)";
  return s;
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
        v->get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
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
