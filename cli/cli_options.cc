#include "cli_options.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "file_io.h"
#include "ropekit/error.h"
#include "ropekit/numerics.h"

namespace ropekit::cli {

void add_plan_options(CLI::App& sub, PlanOptions& o, const std::string& suffix) {
  const std::string side = suffix.empty() ? "" : " (side B; default: the same as side A)";
  sub.add_option("--layer" + suffix, o.layer,
                 "Layer type to report (e.g. full_attention); default: every layer" + side);
  sub.add_option("--seq-len" + suffix, o.seq_len,
                 "Sequence length the frequencies are built for (dynamic NTK and LongRoPE depend "
                 "on it); default: the values at initialisation" +
                     side)
      ->check(
          int_range(1, std::numeric_limits<std::int64_t>::max(), "an integer in [1, 2^63 - 1]"));
  sub.add_option("--policy" + suffix, o.policy,
                 "Whose sequence-length rule applies: hf (transformers) or mlx-lm" + side)
      ->check(CLI::IsMember({"hf", "mlx-lm"}));
}

CLI::Validator finite_range(double lo, double hi, const std::string& bounds) {
  return CLI::Validator(
      [lo, hi, bounds](std::string& s) -> std::string {
        const std::string expected = "expected " + bounds + ", got \"" + echo(s) + "\"";
        const char* begin = s.c_str();
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(begin, &end);
        if (end == begin || *end != '\0' || !std::isfinite(v) || v < lo || v > hi) return expected;
        return {};
      },
      "");
}

CLI::Validator int_range(std::int64_t lo, std::int64_t hi, const std::string& bounds) {
  return CLI::Validator(
      [lo, hi, bounds](std::string& s) -> std::string {
        const std::string expected = "expected " + bounds + ", got \"" + echo(s) + "\"";
        const char* begin = s.c_str();
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(begin, &end, 10);
        if (end == begin || *end != '\0' || errno == ERANGE || v < lo || v > hi) return expected;
        return {};
      },
      "");
}

CLI::Validator numerics_preset_name() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        if (numerics_preset(s)) return {};
        return "expected a preset: " + std::string(kNumericsPresetNames) + ", got \"" + echo(s) +
               "\"";
      },
      "");
}

std::vector<const RopeConfig*> select_layers(const ModelRope& model, const std::string& layer) {
  std::vector<const RopeConfig*> out;
  if (layer.empty()) {
    for (const RopeConfig& c : model.layers) out.push_back(&c);
  } else {
    out.push_back(&model.layer(layer));  // throws ArgumentError naming the available layers
  }
  return out;
}

std::string display_name(const std::string& name_or_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(name_or_path);
  if (!fs::exists(p, ec)) return name_or_path;  // a built-in name
  const fs::path file = fs::is_directory(p, ec) ? p / "config.json" : p;
  if (file.filename() == "config.json" && file.has_parent_path()) {
    const std::string folder = fs::absolute(file, ec).parent_path().filename().string();
    if (!folder.empty()) return folder;
  }
  return file.stem().string();
}

}  // namespace ropekit::cli
