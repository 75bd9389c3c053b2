// `ropekit apply CONFIG --input X.npy --positions P --output Y.npy ...` (transformers
// semantics) and `ropekit apply --initialize-rope KWARGS.json --input X.npy --offset N ...`
// (mlx-lm semantics end to end: x of shape [batch, ..., seq, dims] as mx.fast.rope takes it).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "cli_options.h"
#include "commands.h"
#include "file_io.h"
#include "freq_report.h"
#include "model_source.h"
#include "npy.h"
#include "progress.h"
#include "ropekit/apply.h"
#include "ropekit/error.h"
#include "ropekit/mlx_rope.h"
#include "ropekit/query_scale.h"
#include "support_common.h"

namespace ropekit::cli {
namespace {

struct ApplyArgs {
  std::string config, kwargs, input, positions, output, layer;
  std::optional<std::int64_t> seq_len, offset;
  std::string offsets;
  std::string angles;  // default: hf for --initialize-rope, else exact
  std::string dtype = "f32";
  std::string rounding;  // default: transformers with --angles hf, else single
  std::string layout;    // override
  std::string policy;    // default: from the numerics
  std::string backend = "auto";
  std::string arithmetic;  // default: from the numerics
  std::string numerics;    // a preset of ropekit/numerics.h
  bool inverse = false;
  bool no_fold = false;
  std::optional<std::int64_t> decoder_layer;  // a decoder layer of the model (0-based)
  bool query_scale = false;                   // apply the model's query scale on that layer
};

std::vector<std::int64_t> parse_int_list(const std::string& s, const std::string& what) {
  std::vector<std::int64_t> out;
  auto bad = [&](const std::string& item) {
    return ArgumentError(what + " " + echo(s) + ": expected integers separated by commas, got \"" +
                         echo(item) + "\"");
  };
  std::size_t at = 0;
  for (;;) {  // every item, empty ones included ("1,", ",1", "1,,2")
    const std::size_t comma = s.find(',', at);
    const std::string item = s.substr(at, comma == std::string::npos ? comma : comma - at);
    try {
      std::size_t used = 0;
      const long long v = std::stoll(item, &used);
      if (used != item.size()) throw bad(item);
      out.push_back(v);
    } catch (const std::logic_error&) {
      throw bad(item);
    }
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

// A --positions value is a list unless it names a file: "0,1,2", "7", "-3", and also "0,1.5"
// or "1,x" (refused as a list, not as a missing file).
bool looks_like_list(const std::string& s) {
  if (s.empty()) return false;
  std::error_code ec;
  if (std::filesystem::exists(s, ec)) return false;
  const char c = s.front();
  return s.find(',') != std::string::npos || (c >= '0' && c <= '9') || c == '-' || c == '+' ||
         c == ' ';
}

// Every position in range, checked before any work so that the index is the one the user wrote
// (apply_rope's own check sees one chunk at a time).
void check_positions(const std::vector<std::int64_t>& ids, std::int64_t tokens, bool rows) {
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::int64_t p = ids[i];
    if (p >= -kMaxAbsPosition && p <= kMaxAbsPosition) continue;
    const std::string where =
        rows ? fmt::format("positions[{}, {}]", static_cast<std::int64_t>(i) / tokens,
                           static_cast<std::int64_t>(i) % tokens)
             : fmt::format("positions[{}]", i);
    throw ArgumentError(where + ": expected a position within ±(2^31 − 1), got " +
                        std::to_string(p));
  }
}

// Converts f32 values to the working dtype's storage (RNE), and back to f32.
std::vector<std::uint16_t> to16(DType t, const std::vector<float>& x) {
  std::vector<std::uint16_t> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    out[i] = t == DType::kBF16 ? f32_to_bf16(x[i]).bits : f32_to_f16(x[i]).bits;
  return out;
}
std::vector<float> from16(DType t, const std::vector<std::uint16_t>& x) {
  std::vector<float> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    out[i] = t == DType::kBF16 ? bf16_to_f32(BF16{x[i]}) : f16_to_f32(F16{x[i]});
  return out;
}

Backend parse_backend(const std::string& s) {
  if (s == "auto") return Backend::kAuto;
  if (s == "reference" || s == "ref") return Backend::kReference;
  if (s == "simd") return Backend::kSimd;
  throw ArgumentError("--backend: expected auto, reference or simd, got " + s);
}

// Positions of tokens [start, start + count): a sub-range of the call's positions.
using PositionSlice = std::function<Positions(std::int64_t start, std::int64_t count,
                                              std::vector<std::int64_t>& scratch)>;

// Rotates `x` ([tokens, heads, head_dim] with the given strides, f32) in the chosen dtype. Large
// tensors go in token chunks so that a terminal shows progress (Progress stays silent when
// stderr is not a terminal, and small tensors take one call).
void rotate(const FrequencyPlan& plan, std::vector<float>& x, DType dt, std::int64_t tokens,
            std::int64_t heads, std::int64_t hd, std::int64_t st, std::int64_t sh,
            const PositionSlice& positions, const ApplyOptions& o, Progress* progress = nullptr,
            std::int64_t progress_base = 0) {
  constexpr std::int64_t kElementsForProgress = std::int64_t{1} << 22;  // ~0.1 s and more
  constexpr std::int64_t kChunks = 100;
  std::int64_t chunk = tokens;
  if (progress && progress->enabled() && tokens * heads * hd >= kElementsForProgress)
    chunk = std::max<std::int64_t>(1, (tokens + kChunks - 1) / kChunks);
  std::vector<std::int64_t> scratch;
  std::vector<float> out(dt == DType::kF32 ? x.size() : 0);
  std::vector<std::uint16_t> buf = dt == DType::kF32 ? std::vector<std::uint16_t>{} : to16(dt, x);
  for (std::int64_t t0 = 0; t0 < tokens; t0 += chunk) {
    const std::int64_t n = std::min(chunk, tokens - t0);
    const Positions pos = positions(t0, n, scratch);
    if (dt == DType::kF32) {
      const ConstTensorView in(x.data() + t0 * st, dt, n, heads, hd, st, sh, 1);
      const TensorView ov{out.data() + t0 * st, dt, n, heads, hd, st, sh, 1};
      apply_rope(plan, in, ov, ConstTensorView{}, TensorView{}, pos, o);
    } else {
      TensorView v{buf.data() + t0 * st, dt, n, heads, hd, st, sh, 1};
      apply_rope(plan, v, TensorView{}, pos, o);  // in place
    }
    if (progress) progress->update(progress_base + t0 + n);
  }
  if (dt == DType::kF32)
    x.swap(out);
  else
    x = from16(dt, buf);
}

// The numerics of one call (ropekit/numerics.h): --numerics names a preset; without it a
// config is rotated with transformers' float32 frequencies and sequence rule but exact angles
// (transformers' whole preset with --angles hf), and --initialize-rope with mlx-lm's. Each
// explicit option then overrides its part.
Numerics numerics_from(const ApplyArgs& a, bool mlx) {
  Numerics n = Numerics::transformers();
  if (!a.numerics.empty()) {
    n = *numerics_preset(a.numerics);  // checked by the option
  } else if (mlx) {
    n = Numerics::mlx_lm();
  } else if (a.angles != "hf") {
    n.angles = AngleMode::kExact;
    n.rounding = Rounding::kSingle;
  }
  if (!a.angles.empty()) n.angles = parse_angles(a.angles);
  if (a.rounding == "transformers" || a.rounding == "hf")
    n.rounding = Rounding::kTransformers;
  else if (a.rounding == "single")
    n.rounding = Rounding::kSingle;
  else if (!a.rounding.empty())
    throw ArgumentError("--rounding: expected single or transformers, got " + a.rounding);
  if (!a.policy.empty()) n.policy = parse_policy(a.policy);
  if (!a.arithmetic.empty()) n.arithmetic = parse_arithmetic(a.arithmetic);
  if (mlx && n.angles == AngleMode::kGgml)
    throw ArgumentError(
        "--numerics llama.cpp / --angles ggml: expected a config or GGUF (ggml's arguments come "
        "from its RoPE config), got --initialize-rope");
  if (n.angles == AngleMode::kGgml && n.arithmetic != FrequencyArithmetic::kGgml)
    throw ArgumentError(
        "--angles ggml: expected --freq-arithmetic ggml (or --numerics llama.cpp), "
        "got another frequency arithmetic");
  return n;
}

ApplyOptions options_from(const ApplyArgs& a, bool mlx) {
  ApplyOptions o = with_numerics(ApplyOptions{}, numerics_from(a, mlx));
  o.direction = a.inverse ? Direction::kInverse : Direction::kForward;
  o.fold_attention_factor = !a.no_fold;
  o.backend = parse_backend(a.backend);
  if (!a.layout.empty()) {
    if (a.layout == "half")
      o.layout = PairLayout::kHalf;
    else if (a.layout == "interleaved")
      o.layout = PairLayout::kInterleaved;
    else if (a.layout == "interleaved_to_half" || a.layout == "deepseek")
      o.layout = PairLayout::kInterleavedToHalf;
    else
      throw ArgumentError("--layout: expected half, interleaved or interleaved_to_half, got " +
                          a.layout);
  }
  return o;
}

// Multiplies x ([tokens, heads, head_dim], values of dtype dt) by the model's per-position query
// scale, in that dtype (ropekit/query_scale.h).
void scale_in_dtype(const QueryPositionScale& s, std::vector<float>& x, DType dt,
                    std::int64_t tokens, std::int64_t heads, std::int64_t hd,
                    const std::vector<std::int64_t>& ids) {
  const Positions pos = Positions::per_token(std::span<const std::int64_t>(ids));
  if (dt == DType::kF32) {
    scale_queries(s, TensorView::contiguous(x.data(), dt, tokens, heads, hd), pos);
    return;
  }
  std::vector<std::uint16_t> buf = to16(dt, x);
  scale_queries(s, TensorView::contiguous(buf.data(), dt, tokens, heads, hd), pos);
  x = from16(dt, buf);
}

// --decoder-layer: the decoder layer's RoPE layer type, whether it rotates at all (NoPE), and
// whether --query-scale applies there.
struct DecoderLayerChoice {
  std::string layer_type;  // empty: as --layer / the single layer says
  bool nope = false;
  bool scale = false;
};

DecoderLayerChoice choose_decoder_layer(const ApplyArgs& a, const ModelRope& m) {
  DecoderLayerChoice c;
  if (!a.decoder_layer) {
    if (a.query_scale)
      throw ArgumentError(
          "--query-scale: needs --decoder-layer N (the scale applies to some layers only)");
    return c;
  }
  const std::int64_t n = *a.decoder_layer;
  const std::size_t count =
      std::max({m.layer_types.size(), m.layer_uses_rope.size(), m.layer_scales_queries.size()});
  if (count == 0)
    throw ArgumentError(
        "--decoder-layer: this config does not describe its decoder layers (no layer_types, "
        "no_rope_layers or num_hidden_layers for them)");
  if (n < 0 || static_cast<std::size_t>(n) >= count)
    throw ArgumentError("--decoder-layer: expected a layer in [0, " + std::to_string(count - 1) +
                        "], got " + std::to_string(n));
  const auto i = static_cast<std::size_t>(n);
  if (m.layers.size() > 1 && i < m.layer_types.size()) {
    c.layer_type = m.layer_types[i];
  } else {
    // One RoPE for every decoder layer: the layer that is not a role of another tower or
    // module (the vision encoder, the sparse-attention indexer).
    std::vector<std::string> decoder;
    for (const RopeConfig& l : m.layers)
      if (l.layer_type != "vision" && l.layer_type != "indexer") decoder.push_back(l.layer_type);
    if (decoder.size() == 1) c.layer_type = decoder.front();
  }
  c.nope = i < m.layer_uses_rope.size() && !m.layer_uses_rope[i];
  if (a.query_scale) {
    if (!m.query_scale)
      throw ArgumentError(
          "--query-scale: this config has no query scale (Llama 4's attn_temperature_tuning)");
    if (i >= m.layer_scales_queries.size() || !m.layer_scales_queries[i]) {
      std::string list;
      for (std::size_t k = 0; k < m.layer_scales_queries.size(); ++k)
        if (m.layer_scales_queries[k]) list += (list.empty() ? "" : ", ") + std::to_string(k);
      throw ArgumentError("--query-scale: decoder layer " + std::to_string(n) +
                          " does not scale its queries (layers that do: " +
                          (list.empty() ? std::string("none") : list) + ")");
    }
    c.scale = true;
  }
  return c;
}

void run_hf(const ApplyArgs& a) {
  const ModelRope m = load_model_or_config(a.config);
  const DecoderLayerChoice dl = choose_decoder_layer(a, m);
  const RopeConfig* cfg = nullptr;
  if (!a.layer.empty())
    cfg = &m.layer(a.layer);
  else if (!dl.layer_type.empty())
    cfg = &m.layer(dl.layer_type);
  else if (m.layers.size() == 1)
    cfg = &m.layers.front();
  else {
    std::string names;
    for (const auto& l : m.layers) names += (names.empty() ? "" : ", ") + l.layer_type;
    throw ArgumentError("--layer: this config has several layer types (" + names + "); choose one");
  }
  const NpyArray xa = read_npy(a.input);
  if (xa.shape.size() != 3)
    throw ArgumentError("--input " + a.input + ": expected shape [tokens, heads, head_dim], got " +
                        std::to_string(xa.shape.size()) + " dimensions");
  const std::int64_t tokens = xa.shape[0], heads = xa.shape[1], hd = xa.shape[2];
  if (hd != cfg->head_dim)
    throw ArgumentError("--input " + a.input + ": head_dim " + std::to_string(hd) +
                        " is not the config's head_dim " + std::to_string(cfg->head_dim));
  std::vector<float> x = xa.as_float32();

  // Positions: comma list or .npy; [tokens], or [rows, tokens] with 1 to 4 rows for layers
  // with position rows (M-RoPE: 3, XD-RoPE: its sections, 2-D vision RoPE: 2).
  std::vector<std::int64_t> ids;
  std::int64_t rows = 1;
  bool row_file = false;  // the positions came as [rows, tokens]
  std::string shape_text;
  if (looks_like_list(a.positions)) {
    ids = parse_int_list(a.positions, "--positions");
    shape_text = "a comma list of " + std::to_string(ids.size()) + " positions";
  } else {
    const NpyArray pa = read_npy(a.positions);
    ids = pa.as_int64();
    if (pa.shape.size() == 2 && pa.shape[0] >= 1 && pa.shape[0] <= Positions::kMaxRows) {
      rows = pa.shape[0];
      row_file = true;
      shape_text =
          "shape [" + std::to_string(pa.shape[0]) + ", " + std::to_string(pa.shape[1]) + "]";
    } else if (pa.shape.size() == 1) {
      shape_text = "shape [" + std::to_string(pa.shape[0]) + "]";
    } else {
      std::string dims;
      for (const auto d : pa.shape) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
      throw ArgumentError("--positions " + a.positions +
                          ": expected shape [tokens] or [rows, tokens] with 1 to 4 rows, got [" +
                          dims + "]");
    }
  }
  const std::int64_t n_pos = static_cast<std::int64_t>(ids.size()) / rows;
  if (n_pos != tokens)
    throw ArgumentError("--positions: expected " + std::to_string(tokens) +
                        " positions (one per token), got " + std::to_string(n_pos) + " (" +
                        shape_text + ")");
  check_positions(ids, tokens, row_file);
  const std::int64_t max_pos = ids.empty() ? 0 : *std::max_element(ids.begin(), ids.end());
  // max(position) + 1, saturated: out-of-range positions are refused by apply_rope itself
  const Numerics numerics = numerics_from(a, false);
  // llama.cpp's numerics take its context, by default the trained one (max_position_embeddings:
  // LongRoPE's factor set is chosen by it, not by the positions).
  const std::optional<std::int64_t> seq_len =
      a.seq_len ? a.seq_len
      : numerics.arithmetic == FrequencyArithmetic::kGgml
          ? std::nullopt
          : std::optional<std::int64_t>(std::clamp<std::int64_t>(max_pos, 0, kMaxAbsPosition) + 1);
  const FrequencyPlan plan = plan_of(*cfg, seq_len, numerics.policy, numerics.arithmetic);
  // The rows the layer takes: 1 for 1-D positions, else the plan's position_rows (a plan with
  // pair axes and no row count is an M-RoPE plan: 3).
  const int want_rows =
      plan.pair_axis.empty() ? 1 : (plan.position_rows > 0 ? plan.position_rows : 3);
  if (rows != want_rows)
    throw ArgumentError("--positions " + a.positions + ": layer \"" + cfg->layer_type +
                        "\" takes " + std::to_string(want_rows) + " position row" +
                        (want_rows == 1 ? "" : "s") + " ([" +
                        (want_rows == 1 ? std::string("tokens] or [1, tokens")
                                        : std::to_string(want_rows) + ", tokens") +
                        "]), got " + shape_text);
  const bool multi_row = want_rows > 1;
  const PositionSlice slice = [&](std::int64_t start, std::int64_t n,
                                  std::vector<std::int64_t>& scratch) {
    if (!multi_row)
      return Positions::per_token(std::span<const std::int64_t>(ids).subspan(
          static_cast<std::size_t>(start), static_cast<std::size_t>(n)));
    scratch.clear();  // each row of the chunk, contiguous
    for (std::int64_t r = 0; r < rows; ++r)
      scratch.insert(scratch.end(), ids.begin() + r * tokens + start,
                     ids.begin() + r * tokens + start + n);
    return Positions::rows(std::span<const std::int64_t>(scratch), n, static_cast<int>(rows));
  };
  const ApplyOptions o = options_from(a, false);
  const DType dt = parse_dtype(a.dtype);
  if (dl.nope) {
    // A NoPE layer does not rotate: the input in the computed dtype, scaled if asked.
    if (dt != DType::kF32) x = from16(dt, to16(dt, x));
  } else {
    Progress progress("apply", tokens, "tokens");
    rotate(plan, x, dt, tokens, heads, hd, heads * hd, hd, slice, o, &progress);
  }
  if (dl.scale) {
    if (multi_row)
      throw ArgumentError("--query-scale: takes 1-D positions (the token index), got " +
                          shape_text);
    scale_in_dtype(*m.query_scale, x, dt, tokens, heads, hd, ids);
  }
  write_npy_f32(a.output, xa.shape, x.data());
}

void run_mlx(const ApplyArgs& a) {
  const MlxRope r = initialize_rope_from_kwargs(
      read_text_file_bounded(a.kwargs, kMaxTextFileBytes, "--initialize-rope"));
  const NpyArray xa = read_npy(a.input);
  if (xa.shape.size() < 3)
    throw ArgumentError("--input " + a.input +
                        ": expected at least 3 dimensions [batch, ..., seq, dims] (mx.fast.rope)");
  const std::int64_t batch = xa.shape.front();
  const std::int64_t seq = xa.shape[xa.shape.size() - 2];
  const std::int64_t d = xa.shape.back();
  std::int64_t heads = 1;
  for (std::size_t i = 1; i + 2 < xa.shape.size(); ++i) heads *= xa.shape[i];
  if (r.dims > d)
    throw ArgumentError("dims " + std::to_string(r.dims) +
                        " must be <= the last axis of --input (" + std::to_string(d) + ")");
  std::vector<std::int64_t> offsets;
  if (a.offset)
    offsets = {*a.offset};
  else if (!a.offsets.empty())
    offsets = parse_int_list(a.offsets, "--offsets");
  else
    offsets = {0};
  const bool vector_offset = !a.offsets.empty();
  if (vector_offset && static_cast<std::int64_t>(offsets.size()) != batch)
    throw ArgumentError("--offsets: expected one offset per batch entry (" + std::to_string(batch) +
                        "), got " + std::to_string(offsets.size()));
  if (vector_offset && r.dynamic)
    throw ArgumentError(
        "--offsets: DynamicNTKScalingRoPE takes a scalar offset (mlx-lm raises ValueError)");
  std::vector<float> x = xa.as_float32();
  const ApplyOptions base_opts = options_from(a, true);
  const std::int64_t per_batch = heads * seq * d;
  Progress progress("apply", batch * seq, "positions");
  // Nothing to rotate (a zero anywhere in the shape): no per-batch work either, however large
  // the other dimensions are.
  for (std::int64_t b = 0; b < batch && !x.empty(); ++b) {
    const std::int64_t off = offsets[vector_offset ? static_cast<std::size_t>(b) : 0];
    FrequencyPlan plan = r.plan_for_call(seq, off, static_cast<int>(d));
    ApplyOptions o = base_opts;
    o.position_scale = r.scale;
    std::vector<float> slice(x.begin() + b * per_batch, x.begin() + (b + 1) * per_batch);
    // [heads, seq, d] as [tokens = seq, heads, d]: token stride d, head stride seq·d.
    const PositionSlice at = [off](std::int64_t start, std::int64_t, std::vector<std::int64_t>&) {
      return Positions::offset(off + start);
    };
    rotate(plan, slice, parse_dtype(a.dtype), seq, heads, d, d, seq * d, at, o, &progress, b * seq);
    std::copy(slice.begin(), slice.end(), x.begin() + b * per_batch);
  }
  write_npy_f32(a.output, xa.shape, x.data());
}

}  // namespace

void register_apply(CLI::App& app) {
  auto a = std::make_shared<ApplyArgs>();
  CLI::App* c = app.add_subcommand("apply", "Rotate a .npy tensor with a model's RoPE");
  c->footer(
      "Examples:\n"
      "  ropekit apply llama-3.1-8b-instruct --input q.npy --positions 0,1,2,3 --output y.npy\n"
      "  ropekit apply qwen2-vl.json --input q.npy --positions pos3xT.npy --output y.npy --angles "
      "hf\n"
      "  ropekit apply --initialize-rope kwargs.json --input x.npy --offsets 0,4093 --output "
      "y.npy\n"
      "Input: float32 [tokens, heads, head_dim] ([batch, ..., seq, dims] with --initialize-rope).\n"
      "Output: float32 of the same shape holding the values of the computed dtype.");
  auto* cfg = c->add_option("config", a->config, "Built-in model name or path to a config.json");
  auto* kw =
      c->add_option("--initialize-rope", a->kwargs, "mlx-lm initialize_rope kwargs (JSON file)");
  cfg->excludes(kw);
  c->add_option("--input", a->input, "float32 .npy input")->required();
  c->add_option("--output", a->output, "float32 .npy output")->required();
  auto* p = c->add_option("--positions", a->positions,
                          "Comma list or int .npy: [tokens], or [rows, tokens] with the layer's "
                          "1 to 4 position rows (M-RoPE 3, XD-RoPE 4, 2-D vision 2)");
  auto* off = c->add_option("--offset", a->offset, "mlx: one offset for all batch entries")
                  ->check(int_range(std::numeric_limits<std::int64_t>::min(),
                                    std::numeric_limits<std::int64_t>::max(), "a 64-bit integer"));
  auto* offs =
      c->add_option("--offsets", a->offsets, "mlx: one offset per batch entry, comma separated");
  off->excludes(offs);
  p->excludes(off)->excludes(offs);
  c->add_option("--layer", a->layer, "Layer type for per-layer configs");
  c->add_option("--seq-len", a->seq_len,
                "Sequence length for dynamic NTK / LongRoPE (default max(position)+1)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40));
  c->add_option("--angles", a->angles,
                "hf (float32 angles, parity), exact (default; hf with --initialize-rope) or ggml "
                "(llama.cpp's, with --numerics llama.cpp)")
      ->check(CLI::IsMember({"hf", "exact", "ggml"}));
  c->add_option("--dtype", a->dtype, "Computed dtype: f32, f16 or bf16")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  c->add_option(
       "--rounding", a->rounding,
       "single, or transformers (replays transformers' roundings; default with --angles hf)")
      ->check(CLI::IsMember({"single", "transformers"}));
  c->add_option("--layout", a->layout,
                "Override the pair layout: half, interleaved, interleaved_to_half")
      ->check(CLI::IsMember({"half", "interleaved", "interleaved_to_half", "deepseek"}));
  c->add_option("--policy", a->policy, "Sequence-length policy: hf or mlx-lm")
      ->check(CLI::IsMember({"hf", "transformers", "mlx-lm", "mlx"}));
  c->add_option("--backend", a->backend, "auto (SIMD when available), reference or simd")
      ->check(CLI::IsMember({"auto", "reference", "ref", "simd"}));
  c->add_option("--numerics", a->numerics,
                "Preset of frequency arithmetic, sequence rule, angles and rounding: exact, "
                "transformers, mlx-lm or llama.cpp (ggml's float32 angles, YaRN ramp and "
                "magnitude; default: transformers' frequencies with exact angles; mlx-lm with "
                "--initialize-rope); the options above and below override its parts")
      ->check(numerics_preset_name());
  c->add_option(
       "--freq-arithmetic", a->arithmetic,
       "transformers (default: transformers' float32 inv_freq table, so outputs compare with it) "
       "or exact (each inv_freq rounded once from double) or ggml (exact, plus llama.cpp's ggml "
       "arguments, needed by --angles ggml)")
      ->check(CLI::IsMember({"transformers", "exact", "ggml"}));
  c->add_option("--decoder-layer", a->decoder_layer,
                "Decoder layer (0-based): its RoPE layer type, and no rotation on a NoPE layer "
                "(Llama 4's no_rope_layers)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 20));
  c->add_flag("--query-scale", a->query_scale,
              "Multiply the input (queries) by the model's per-position scale on that decoder "
              "layer: Llama 4's attention-temperature tuning, 1 + attn_scale·ln(1 + "
              "floor((p + 1) / floor_scale)), on its NoPE layers");
  c->add_flag("--inverse", a->inverse, "Apply the inverse rotation (backward pass)");
  c->add_flag("--no-fold", a->no_fold,
              "Leave the attention factor out of cos/sin (a pure rotation; ropekit freqs prints "
              "the factor)");
  c->callback([a] {
    if (a->kwargs.empty()) {
      if (a->config.empty()) throw CLI::RequiredError("CONFIG or --initialize-rope");
      if (a->positions.empty()) throw CLI::RequiredError("--positions");
      run_hf(*a);
    } else {
      run_mlx(*a);
    }
  });
}

}  // namespace ropekit::cli

ROPEKIT_CLI_COMMAND(20, register_apply)
