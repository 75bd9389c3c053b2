#include "freq_report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <type_traits>
#include <variant>

#include "file_io.h"
#include "ropekit/error.h"

namespace ropekit::cli {
namespace {

constexpr double kTwoPi = 2.0 * std::numbers::pi;
// A pair counts as kept / interpolated when its ratio is 1 / (1/factor) to within float32
// rounding of the plan (relative 2^-24 each way, a few ulp in all); anything further off lies on
// the ramp. A pair a ramp moves by less than this is indistinguishable from its end anyway.
constexpr double kBandTolerance = 1e-6;

struct Contexts {
  std::int64_t original = 0;
  std::int64_t extended = 0;
  std::optional<double> factor;
};

Contexts contexts_of(const RopeConfig& c) {
  const std::int64_t max_pos = c.max_position_embeddings;
  // The extended context is the config's max_position_embeddings when that is beyond the
  // original (Llama 3.x, Phi-3.5, DeepSeek); when a config keeps max_position_embeddings at the
  // original (Qwen2.5's YaRN opt-in, dynamic NTK) it is original x factor.
  auto scaled = [&](std::int64_t original, double factor) {
    const auto target =
        static_cast<std::int64_t>(std::llround(static_cast<double>(original) * factor));
    return Contexts{original, max_pos > original ? max_pos : target, factor};
  };
  return std::visit(
      [&](const auto& s) -> Contexts {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, LinearScaling> || std::is_same_v<T, ProportionalScaling>) {
          // No original length in the config. Released models (Gemma 3: factor 8, 131072) give
          // max_position_embeddings as the extended context: the original is max / factor.
          const auto original =
              static_cast<std::int64_t>(std::llround(static_cast<double>(max_pos) / s.factor));
          return Contexts{original, max_pos, s.factor};
        } else if constexpr (std::is_same_v<T, DynamicNtkScaling>) {
          // Dynamic NTK starts scaling past max_position_embeddings (transformers' threshold).
          return scaled(max_pos, s.factor);
        } else if constexpr (std::is_same_v<T, YarnScaling> || std::is_same_v<T, Llama3Scaling>) {
          return scaled(s.original_max_position_embeddings, s.factor);
        } else if constexpr (std::is_same_v<T, LongRopeScaling>) {
          const double f =
              s.factor.value_or(static_cast<double>(max_pos) /
                                static_cast<double>(s.original_max_position_embeddings));
          return scaled(s.original_max_position_embeddings, f);
        } else {
          return Contexts{max_pos, max_pos, std::nullopt};
        }
      },
      c.scaling);
}

Band classify(double ratio, std::optional<double> factor) {
  if (!std::isfinite(ratio)) return Band::kNone;
  if (std::fabs(ratio - 1.0) <= kBandTolerance) return Band::kKept;
  if (factor && std::fabs(ratio * *factor - 1.0) <= kBandTolerance) return Band::kInterpolated;
  return Band::kBlended;
}

}  // namespace

std::string_view band_name(Band band) {
  switch (band) {
    case Band::kKept:
      return "kept";
    case Band::kInterpolated:
      return "interpolated";
    case Band::kBlended:
      return "blended";
    case Band::kNone:
      return "";
  }
  return "";
}

bool has_bands(const RopeConfig& config) {
  return std::holds_alternative<YarnScaling>(config.scaling) ||
         std::holds_alternative<Llama3Scaling>(config.scaling);
}

FrequencyPlan plan_of(const RopeConfig& config, std::optional<std::int64_t> seq_len,
                      SeqLenPolicy policy, FrequencyArithmetic arithmetic) {
  try {
    return build_frequency_plan(config, seq_len, policy, arithmetic);
  } catch (const ConfigError& e) {
    std::string message = e.what();
    const std::string& field = e.path();
    if (!field.empty() && message.rfind(field + ": ", 0) == 0) {
      message = message.substr(field.size() + 2);
    }
    if (field == "attention_factor") message = "the attention factor: " + message;
    throw ConfigError("",
                      "layer " + echo(config.layer_type) + " (rope_type " +
                          scaling_type_name(config.scaling) +
                          "): the frequencies cannot be computed from its parameters: " + message);
  }
}

LayerReport build_layer_report(const RopeConfig& config, std::optional<std::int64_t> seq_len,
                               SeqLenPolicy policy) {
  LayerReport r;
  r.config = &config;
  r.plan = plan_of(config, seq_len, policy);
  const Contexts ctx = contexts_of(config);
  r.original_context = ctx.original;
  r.extended_context = ctx.extended;
  r.factor = ctx.factor;

  const std::vector<double> unscaled = unscaled_inv_freq(config);
  const bool bands = has_bands(config);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  r.rows.reserve(r.plan.inv_freq.size());
  for (std::size_t i = 0; i < r.plan.inv_freq.size(); ++i) {
    FrequencyRow row;
    row.index = static_cast<int>(i);
    row.inv_freq = static_cast<double>(r.plan.inv_freq[i]);
    row.unscaled_inv_freq = i < unscaled.size() ? unscaled[i] : nan;
    row.wavelength =
        row.inv_freq > 0 ? kTwoPi / row.inv_freq : std::numeric_limits<double>::infinity();
    row.ratio = row.unscaled_inv_freq > 0 ? row.inv_freq / row.unscaled_inv_freq : nan;
    row.band = bands ? classify(row.ratio, r.factor) : Band::kNone;
    row.turns = std::isfinite(row.unscaled_inv_freq)
                    ? static_cast<double>(r.original_context) * row.unscaled_inv_freq / kTwoPi
                    : nan;
    r.rows.push_back(row);
  }
  return r;
}

}  // namespace ropekit::cli
