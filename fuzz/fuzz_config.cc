// Fuzz target: config bytes → parse_hf_config → build_frequency_plan for every layer → apply_rope.
//
// Property : for any input, parsing either throws ConfigError, or returns layers whose
// plans (with and without a sequence length, both policies, both arithmetics) are valid —
//   * rotary_dim == 2·inv_freq.size(), even, in (0, head_dim]; head_dim even > 0;
//   * every inv_freq finite and >= 0, and > 0 except for "proportional" (whose unrotated pairs
//     are 0) or where the exact value underflows float (configs outside the sanity bounds below);
//   * attention factor finite and > 0; M-RoPE pair axes one per pair, each 0, 1 or 2 —
// or the plan throws ConfigError / ArgumentError. A valid plan is then accepted by apply_rope
// and rotates a unit pair to a vector of length A (the attention factor) within float rounding.
// Strict parsing throws exactly when lenient parsing warned.
// The same bytes also go to initialize_rope_from_kwargs (mlx-lm's factory): ConfigError, or a
// factory result whose periods are > 0 (or +inf), prescale finite > 0, and whose per-call plans
// apply_rope accepts.
//
// Anything else — another exception type, a crash, a sanitizer report — is a finding.
// ROPEKIT_FUZZ_STRICT_PLAN=1 additionally reports a ConfigError from build_frequency_plan for a
// config parse_hf_config accepted (frequencies.h promises parsed configs are valid).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fuzz_common.h"
#include "ropekit/ropekit.h"

namespace ropekit::fuzz {
namespace {

std::string describe_plan_context(const RopeConfig& c, std::optional<std::int64_t> seq) {
  return "layer " + c.layer_type + " (" + scaling_type_name(c.scaling) + ", head_dim " +
         std::to_string(c.head_dim) + ", rotary_dim " + std::to_string(c.rotary_dim) + ", theta " +
         std::to_string(c.rope_theta) + ", seq_len " + (seq ? std::to_string(*seq) : "none") + ")";
}

// Values for which no inverse frequency can underflow float: theta <= 1e12, factors within
// [1e-6, 1e6], lengths <= 2^40. Outside, a 0 in the float table is the correct rounding.
bool sane(const RopeConfig& c, std::optional<std::int64_t> seq) {
  auto ok = [](double f) { return f >= 1e-6 && f <= 1e6; };
  if (!(c.rope_theta <= 1e12) || c.max_position_embeddings > (std::int64_t{1} << 40)) return false;
  if (seq && *seq > (std::int64_t{1} << 40)) return false;
  return std::visit(
      [&](const auto& s) -> bool {
        using T = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<T, DefaultScaling>) {
          return true;
        } else if constexpr (std::is_same_v<T, DynamicNtkScaling>) {
          // NTK-alpha raises theta to alpha^(h/(h-2)): an extreme alpha is an extreme theta
          // (transformers' float32 base then overflows, and its frequencies past the first are 0)
          return ok(s.factor) && (!s.alpha || ok(*s.alpha));
        } else if constexpr (std::is_same_v<T, LongRopeScaling>) {
          for (double f : s.short_factor)
            if (!ok(f)) return false;
          for (double f : s.long_factor)
            if (!ok(f)) return false;
          return true;
        } else {
          return ok(s.factor);
        }
      },
      c.scaling);
}

void check_plan(const RopeConfig& c, const FrequencyPlan& p, std::optional<std::int64_t> seq) {
  const std::string where = describe_plan_context(c, seq);
  const bool proportional = std::holds_alternative<ProportionalScaling>(c.scaling);
  if (p.head_dim != c.head_dim || p.head_dim <= 0 || p.head_dim % 2 != 0)
    finding("plan head_dim " + std::to_string(p.head_dim) + " for " + where);
  if (p.rotary_dim <= 0 || p.rotary_dim % 2 != 0 || p.rotary_dim > p.head_dim ||
      static_cast<std::size_t>(p.rotary_dim) != 2 * p.inv_freq.size())
    finding("plan rotary_dim " + std::to_string(p.rotary_dim) + " with " +
            std::to_string(p.inv_freq.size()) + " frequencies for " + where);
  if (!proportional && p.rotary_dim != c.rotary_dim)
    finding("plan rotary_dim differs from the config's for " + where);
  for (std::size_t i = 0; i < p.inv_freq.size(); ++i) {
    const float f = p.inv_freq[i];
    if (!std::isfinite(f) || f < 0)
      finding("inv_freq[" + std::to_string(i) + "] = " + std::to_string(f) + " for " + where);
    if (f == 0 && !proportional && sane(c, seq))
      finding("inv_freq[" + std::to_string(i) + "] == 0 for a non-proportional plan, " + where);
  }
  if (!(std::isfinite(p.attention_factor) && p.attention_factor > 0))
    finding("attention_factor " + std::to_string(p.attention_factor) + " for " + where);
  if (!std::isfinite(p.info.softmax_scale_multiplier) || p.info.softmax_scale_multiplier <= 0)
    finding("softmax_scale_multiplier " + std::to_string(p.info.softmax_scale_multiplier) +
            " for " + where);
  if (p.info.mrope) {
    if (p.pair_axis.size() != p.inv_freq.size()) finding("pair_axis size for " + where);
    for (auto a : p.pair_axis)
      if (a > 2) finding("pair_axis entry " + std::to_string(a) + " for " + where);
  } else if (!p.pair_axis.empty()) {  // XD-RoPE, 2-D vision RoPE: 1 to 4 position rows
    if (p.position_rows < 1 || p.position_rows > 4 || !(p.info.xdrope || p.info.vision2d))
      finding("pair_axis without mrope, xdrope or vision2d for " + where);
    if (p.pair_axis.size() != p.inv_freq.size()) finding("pair_axis size for " + where);
    for (auto a : p.pair_axis)
      if (a >= p.position_rows) finding("pair_axis entry " + std::to_string(a) + " for " + where);
  }
}

// A valid plan must be accepted by apply_rope; a unit vector on pair 0 comes out with length A.
void check_apply(const FrequencyPlan& p, std::int64_t position, const std::string& where) {
  std::vector<float> x(static_cast<std::size_t>(p.head_dim), 0.0f);
  x[0] = 1.0f;  // pair 0 is (x0, x_{d/2}) or (x0, x1): either way (1, 0)
  const TensorView q = TensorView::contiguous(x.data(), DType::kF32, 1, 1, p.head_dim);
  ApplyOptions o;
  o.backend = Backend::kReference;
  try {
    apply_rope(p, q, TensorView{}, Positions::offset(position), o);
  } catch (const std::exception& e) {
    finding("apply_rope refused a valid plan (" + where + "): " + e.what());
  }
  const std::size_t b =
      p.layout == PairLayout::kHalf ? static_cast<std::size_t>(p.rotary_dim / 2) : 1;
  const double len = std::hypot(static_cast<double>(x[0]), static_cast<double>(x[b]));
  const double want = p.attention_factor;
  if (!(std::fabs(len - want) <= 4e-7 * want + 1e-30))
    finding("rotated unit pair has length " + std::to_string(len) + ", expected " +
            std::to_string(want) + " (" + where + ")");
}

void check_layer(const RopeConfig& c, std::uint64_t salt) {
  const bool strict_plan = env_flag("ROPEKIT_FUZZ_STRICT_PLAN");
  const std::int64_t mp = c.max_position_embeddings;
  constexpr std::int64_t kBig = std::int64_t{1} << 60;  // sequence lengths stay far from overflow
  const std::int64_t m = std::min(mp, kBig);
  std::vector<std::optional<std::int64_t>> lens = {
      std::nullopt, 1,     m,
      m + 1,        4 * m, static_cast<std::int64_t>(salt % (std::uint64_t{1} << 34)) + 1};
  for (const auto& seq : lens) {
    for (const SeqLenPolicy policy : {SeqLenPolicy::kTransformers, SeqLenPolicy::kMlxLm}) {
      for (const FrequencyArithmetic ar :
           {FrequencyArithmetic::kExact, FrequencyArithmetic::kTransformers}) {
        FrequencyPlan p;
        try {
          p = build_frequency_plan(c, seq, policy, ar);
        } catch (const ConfigError& e) {
          if (strict_plan)
            finding(std::string("parsed config refused by build_frequency_plan: ") + e.what());
          return;  // the same error for every length
        } catch (const ArgumentError& e) {
          finding(std::string("ArgumentError for a valid seq_len: ") + e.what());
        }
        check_plan(c, p, seq);
        if (policy == SeqLenPolicy::kTransformers && ar == FrequencyArithmetic::kExact)
          check_apply(p, static_cast<std::int64_t>(salt % 2147483648u),
                      describe_plan_context(c, seq));
      }
    }
  }
  // transformers' stateful module: a few calls, growing then shrinking.
  try {
    RopeState state(c);
    for (std::int64_t s : {m / 2 + 1, 2 * m, m + 1, std::int64_t{1}})
      check_plan(c, state.plan_for(s), s);
  } catch (const ConfigError& e) {
    if (strict_plan) finding(std::string("RopeState refused a parsed config: ") + e.what());
  }
}

void check_parse(std::string_view text) {
  ModelRope m;
  try {
    m = parse_hf_config(text);
  } catch (const ConfigError& e) {
    // Strict parsing fails too (maybe on another key: it stops at the first problem).
    ParseOptions strict;
    strict.strict = true;
    try {
      (void)parse_hf_config(text, strict);
      finding(std::string("strict parse accepted what lenient parse refused: ") + e.what());
    } catch (const ConfigError&) {
    }
    return;
  }
  if (m.layers.empty()) finding("parse returned no layers");
  for (const RopeConfig& c : m.layers) {
    if (c.head_dim <= 0 || c.head_dim % 2 != 0 || c.rotary_dim <= 0 || c.rotary_dim % 2 != 0 ||
        c.rotary_dim > c.head_dim || !(std::isfinite(c.rope_theta) && c.rope_theta > 0) ||
        c.max_position_embeddings <= 0)
      finding("parse returned an invalid RopeConfig: " + describe_plan_context(c, std::nullopt));
  }
  ParseOptions strict;
  strict.strict = true;
  try {
    (void)parse_hf_config(text, strict);
    if (!m.warnings.empty())
      finding("strict parse accepted a config with warnings: " + m.warnings.front().message);
  } catch (const ConfigError& e) {
    if (m.warnings.empty())
      finding(std::string("strict parse refused a config without warnings: ") + e.what());
  }
  std::uint64_t salt = 1469598103934665603ull;  // FNV-1a of the text: a deterministic position
  for (unsigned char ch : text) salt = (salt ^ ch) * 1099511628211ull;
  for (const RopeConfig& c : m.layers) check_layer(c, salt);
}

void check_kwargs(std::string_view text) {
  MlxRope r;
  try {
    r = initialize_rope_from_kwargs(text);
  } catch (const ConfigError&) {
    return;
  }
  const std::string where = "initialize_rope " + r.class_name + " (" + r.rope_type + ", dims " +
                            std::to_string(r.dims) + ")";
  if (r.dims <= 0 || r.dims % 2 != 0) finding("dims " + std::to_string(r.dims) + " from " + where);
  if (!r.freqs.empty() && r.freqs.size() != static_cast<std::size_t>(r.dims / 2))
    finding(std::to_string(r.freqs.size()) + " periods from " + where);
  for (std::size_t i = 0; i < r.freqs.size(); ++i)
    if (!(r.freqs[i] > 0))
      finding("period[" + std::to_string(i) + "] = " + std::to_string(r.freqs[i]) + " from " +
              where);
  if (!(std::isfinite(r.input_prescale) && r.input_prescale > 0))
    finding("input_prescale " + std::to_string(r.input_prescale) + " from " + where);
  if (!(std::isfinite(r.scale) && r.scale > 0))
    finding("scale " + std::to_string(r.scale) + " from " + where);
  for (const auto& [seq, offset] :
       {std::pair<std::int64_t, std::int64_t>{1, 0}, {4096, 0}, {7, 1000000}}) {
    // Dynamic NTK grows the base with each call's length; beyond float32's range (where MLX
    // would get NaN frequencies) plan_for_call must refuse the call, and only then.
    const bool base_overflows =
        r.dynamic && !(r.base_for_call(seq, offset) <= std::numeric_limits<float>::max());
    FrequencyPlan p;
    try {
      p = r.plan_for_call(seq, offset, r.dims);
      if (base_overflows)
        finding("plan_for_call accepted a dynamic base beyond float32 from " + where);
    } catch (const ArgumentError& e) {
      if (!base_overflows)
        finding(std::string("plan_for_call refused a valid call: ") + e.what() + " from " + where);
      continue;
    }
    for (float f : p.inv_freq)
      if (!(std::isfinite(f) && f >= 0))
        finding("plan_for_call inv_freq " + std::to_string(f) + " from " + where);
    std::vector<float> x(static_cast<std::size_t>(r.dims), 0.5f);
    ApplyOptions o;
    o.backend = Backend::kReference;
    o.position_scale = r.scale;
    o.angles = AngleMode::kHf;
    try {
      apply_rope(p, TensorView::contiguous(x.data(), DType::kF32, 1, 1, r.dims), TensorView{},
                 Positions::offset(offset), o);
    } catch (const std::exception& e) {
      finding("apply_rope refused the plan of " + where + ": " + e.what());
    }
  }
}

}  // namespace
}  // namespace ropekit::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    ropekit::fuzz::check_parse(text);
    ropekit::fuzz::check_kwargs(text);
  } catch (const std::exception& e) {
    ropekit::fuzz::finding(std::string("unexpected exception: ") + e.what());
  } catch (...) {
    ropekit::fuzz::finding("unexpected non-std exception");
  }
  return 0;
}
