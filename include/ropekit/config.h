// ropekit/config.h — the typed RoPE configuration of one attention layer type.
//
// A model's config.json is parsed (ropekit/hf_config.h) into one RopeConfig per layer type:
// "default" for models with a single RoPE, else the layer type names of the config
// (Gemma 3: "full_attention" and "sliding_attention"). A RopeConfig is validated: every
// field below holds a value that gives a correct rotation.
//
// RoPE rotates pairs of features of each query/key head by the angle  θ_i(p) = p · inv_freq_i,
// for the token's position p and pair index i < rotary_dim/2. The scaling types below only
// change inv_freq_i (and a magnitude, the attention factor); see ropekit/frequencies.h.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace ropekit {

// Which two features of a head form the pair rotated by angle θ_i (d = rotary_dim):
//
//   kHalf ("neox", transformers' rotate_half, mlx traditional=False):
//       pair i = (x[i], x[i + d/2])
//       x:  [ x0 x1 ... x(d/2-1) | x(d/2) ... x(d-1) | pass-through ... ]
//             └──── first ────┘   └──── second ───┘
//   kInterleaved ("GPT-J", Meta's complex form, mlx traditional=True, DeepSeek/Llama 4):
//       pair i = (x[2i], x[2i+1])
//       x:  [ x0 x1 | x2 x3 | ... | x(d-2) x(d-1) | pass-through ... ]
//   kInterleavedToHalf (transformers' DeepSeek `apply_rotary_pos_emb_interleave`):
//       reads pairs (x[2i], x[2i+1]) and writes them de-interleaved:
//       y = [ y(0) y(2) ... y(d-2) | y(1) y(3) ... y(d-1) | pass-through ]
//       (a permutation of kInterleaved's output: q·k is unchanged)
enum class PairLayout { kHalf, kInterleaved, kInterleavedToHalf };

// How multimodal RoPE (M-RoPE) assigns each frequency pair to a position row (T, H, W).
// This is independent of PairLayout. `section` holds the config's `mrope_section` as written.
//   kSections      (Qwen2-VL, Qwen2.5-VL, GLM-4.1V): section = [t, h, w]; pairs [0,t) use T,
//                  [t, t+h) use H, [t+h, t+h+w) use W.
//   kInterleavedThw (Qwen3-VL, Qwen3.5): pair k uses H if k%3==1 and k < 3h, W if k%3==2 and
//                  k < 3w, else T (section = [t, h, w]; t is not read).
//   kErnieHw       (ERNIE-4.5-VL): section = [h, w, t]; pair k < h+w uses H for even k and W for
//                  odd k; the last t pairs use T.
enum class MRopeAssignment { kSections, kInterleavedThw, kErnieHw };

struct MRopeSpec {
  std::array<int, 3> section{};  // as the config writes `mrope_section`
  MRopeAssignment assignment = MRopeAssignment::kSections;
};

// XD-RoPE (HunYuan-VL, HunyuanOCR): `section` = the config's `xdrope_section`, 1 to 4
// contiguous runs of pairs summing to rotary_dim/2; run j takes its position from row j
// (vLLM names the four rows P, W, H, T: text position, then width, height, time).
//     pairs: [ s0 pairs: row 0 | s1 pairs: row 1 | s2 pairs: row 2 | s3 pairs: row 3 ]
struct XdRopeSpec {
  std::vector<int> section;
};

// 2-D RoPE of vision encoders: each image patch has a position (row, column), given as
// Positions::rows with 2 rows (row 0: patch row, row 1: patch column; vision_patch_rows in
// ropekit/position_rows.h builds them). With h = head_dim the h/2 pairs form two runs of h/4:
//   kPixtral (Pixtral, Mistral 3; transformers PixtralRotaryEmbedding):
//       inv_k = θ^(−2k/h); pair i < h/4: row, inv_{2i}; pair h/4 + i: column, inv_{2i+1};
//       half-split pairs.
//   kQwenVl (Qwen2-VL, Qwen2.5-VL, Qwen3-VL and GLM-4.1V vision towers; VisionRotaryEmbedding
//       of dim h/2): inv_j = θ^(−2j/(h/2)); pair i < h/4: row, inv_i; pair h/4 + i: column,
//       inv_i; half-split pairs.
//   kLlama4 (Llama4VisionRotaryEmbedding): inv_j = θ^(−2j/(h/2)); pair i < h/4: column, inv_i;
//       pair h/4 + i: row, inv_i; interleaved pairs; the positions are row + 1 and column + 1,
//       and 0, 0 (no rotation) for the class token.
enum class Vision2dKind { kPixtral, kQwenVl, kLlama4 };

struct Vision2dSpec {
  Vision2dKind kind = Vision2dKind::kQwenVl;
};

// A per-position scale of the queries, applied by the model next to (or instead of) RoPE:
//
//     scale(p) = 1 + attn_scale · ln(1 + floor((p + position_offset) / floor_scale))
//
// Llama 4's attention-temperature tuning (arXiv:2501.19399) on its NoPE layers, as transformers'
// Llama4TextAttention computes it from the absolute token index p (`cache_position`):
// `log(floor((p + 1) / floor_scale) + 1) · attn_scale + 1` (position_offset 1; config keys
// `attn_temperature_tuning`, `floor_scale`, `attn_scale`). The scale is 1 for
// p + position_offset < floor_scale and grows by attn_scale · ln 2 at the first multiple.
// Ministral 3 (`llama_4_scaling_beta` in its rope dict) scales the queries of every layer, after
// RoPE, with the same form: attn_scale = llama_4_scaling_beta, floor_scale =
// original_max_position_embeddings, position_offset 0, and the scale rounded to the query's
// dtype before the product (transformers Ministral3Attention: `.to(query_states.dtype)`).
// ropekit/query_scale.h applies it. Valid: floor_scale finite and > 0, attn_scale finite,
// position_offset 0 or 1.
struct QueryPositionScale {
  double floor_scale = 8192.0;
  double attn_scale = 0.1;
  int position_offset = 1;
  bool scale_in_query_dtype = false;  // round s(p) to q's dtype first (Ministral 3)
};

// ---- scaling types ---------------------------------------------------------------------------
// Plain RoPE (RoFormer): inv_freq_i = theta^(-2i/d).
struct DefaultScaling {};

// Position interpolation (Chen et al. 2023): inv_freq_i / factor.
struct LinearScaling {
  double factor = 1.0;  // > 0; context extension ratio
};

// Dynamic NTK: theta grows with the sequence length once it exceeds max_position_embeddings.
// With `alpha` (NTK-alpha: HunYuan dense and MoE, HY-MT, HunYuan-VL) the base is fixed at
//     theta_a = theta · alpha^(h/(h−2)),   inv_freq_i = theta_a^(−2i/h)   (h = head_dim)
// and the attention factor is 1; past max_position_embeddings transformers' dynamic update
// switches to the plain dynamic formula, which knows no alpha (see ropekit/frequencies.h).
struct DynamicNtkScaling {
  double factor = 1.0;          // > 0
  std::optional<double> alpha;  // finite, > 0: NTK-alpha
};

// YaRN (Peng et al. 2023): per-pair blend of interpolation and extrapolation + a magnitude.
struct YarnScaling {
  double factor = 1.0;                                // > 0
  std::int64_t original_max_position_embeddings = 0;  // > 0: the pre-training context
  double beta_fast = 32.0;  // pairs completing >= beta_fast turns in the original context: kept
  double beta_slow = 1.0;   // pairs completing <= beta_slow turns: fully interpolated
  std::optional<double> mscale;            // DeepSeek: numerator of the magnitude ratio
  std::optional<double> mscale_all_dim;    // DeepSeek: denominator (and softmax-scale correction)
  std::optional<double> attention_factor;  // explicit magnitude; overrides the mscale rules
  bool truncate = true;                    // floor/ceil the correction range (false: gpt-oss)
};

// LongRoPE / "su" (Ding et al. 2024; Phi-3): per-pair rescale factors, short and long.
struct LongRopeScaling {
  std::vector<double> short_factor;  // rotary_dim/2 values > 0
  std::vector<double> long_factor;   // rotary_dim/2 values > 0
  std::optional<double> factor;      // default max_position_embeddings / original
  std::optional<double> attention_factor;
  std::int64_t original_max_position_embeddings = 0;
};

// Llama 3 band smoothing (Meta, Llama 3.1): low frequencies / factor, high kept, band blended.
struct Llama3Scaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  std::int64_t original_max_position_embeddings = 8192;
};

// Gemma 4 "proportional": the exponent divides by head_dim, pairs past the rotated ones get
// inv_freq 0 (identity), then everything / factor.
struct ProportionalScaling {
  double factor = 1.0;
};

// llama.cpp / ggml (GGUF files, ropekit/gguf.h): the arguments of ggml_rope_ext, for what the
// types above cannot express: per-pair divisors (the `rope_freqs` tensor that carries Llama 3
// scaling in a GGUF), an attention factor without YaRN, or a YaRN mix other than 1. With
// base_i = theta^(-2i/d) / freq_factors[i] (freq_factors empty: 1):
//     inv_i = base_i / factor · (1 − r_i) + base_i · r_i,   r_i = ext_factor · (1 − ramp_i)
// ramp_i is YaRN's (0 below the floored correction dimension of beta_fast, 1 above the ceiled
// one of beta_slow, over original_max_position_embeddings); ext_factor 0 is plain linear.
struct GgmlScaling {
  double factor = 1.0;                                // 1 / freq_scale; > 0
  double ext_factor = 0.0;                            // YaRN mix; >= 0 (ggml's ext_factor)
  std::int64_t original_max_position_embeddings = 0;  // n_ctx_orig; > 0 when ext_factor != 0
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double attention_factor = 1.0;     // the cos/sin magnitude; > 0
  std::vector<double> freq_factors;  // empty, or rotary_dim/2 divisors > 0
};

using Scaling = std::variant<DefaultScaling, LinearScaling, DynamicNtkScaling, YarnScaling,
                             LongRopeScaling, Llama3Scaling, ProportionalScaling, GgmlScaling>;

// The canonical rope_type name of a scaling ("default", "linear", "dynamic", "yarn",
// "longrope", "llama3", "proportional", "ggml").
std::string scaling_type_name(const Scaling& s);

// ---- the config ------------------------------------------------------------------------------
struct RopeConfig {
  std::string layer_type = "default";  // "default", or the per-layer key ("full_attention", ...)
  std::string model_type;              // as in config.json (may be empty)
  double rope_theta = 10000.0;         // base; finite, > 0
  int head_dim = 0;                    // features per head; even, > 0
  int rotary_dim = 0;                  // rotated features (partial rotary); even, 0 < r <= head_dim
  double partial_rotary_factor = 1.0;  // as resolved (rotary_dim = int(head_dim * prf))
  std::int64_t max_position_embeddings = 0;  // > 0
  PairLayout layout = PairLayout::kHalf;
  Scaling scaling = DefaultScaling{};
  std::optional<MRopeSpec> mrope;    // multimodal position rows, when the model has them
  std::optional<XdRopeSpec> xdrope;  // XD-RoPE position rows (exclusive with mrope)
  // The vision encoder's 2-D RoPE (layer "vision", read from `vision_config`); its scaling is
  // DefaultScaling and rotary_dim == head_dim.
  std::optional<Vision2dSpec> vision2d;
  // transformers rounds bf16 outputs in three steps for most families (q*cos, rot*sin, sum);
  // Llama 4 and ERNIE-4.5-VL compute in f32 and round once. Used by the `hf` rounding mode.
  bool hf_rounds_once = false;
};

}  // namespace ropekit
