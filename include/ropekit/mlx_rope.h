// ropekit/mlx_rope.h — mlx-lm's `initialize_rope` factory, with its semantics.
//
//   initialize_rope(dims, base, traditional, scaling_config, max_position_embeddings)
//
// chooses one of mlx-lm's classes from scaling_config["type"] (then "rope_type", then
// "default"; mlx-lm's precedence, the reverse of transformers') and returns what that class
// hands to `mx.fast.rope`:
//
//   type                      class                   fast.rope gets          notes
//   default / mrope           RoPE                    base, scale 1           mrope: 1-D (text)
//   linear                    RoPE                    base, scale 1/factor    positions scaled
//   dynamic                   DynamicNTKScalingRoPE   base' per call          needs max_pos
//   llama3                    Llama3RoPE              freqs                   defaults 1/4/8192
//   yarn, deepseek_yarn,      YarnRoPE                freqs, x prescaled      orig default 4096,
//   telechat3-yarn                                    by mscale               truncate ignored
//   longrope                  SuScaledRoPE            freqs (long_factor),    always long,
//                                                     x prescaled             traditional ignored
//   proportional              ProportionalRoPE        freqs (inf tail)
//   anything else             ConfigError "Unsupported RoPE type …" (mlx-lm: ValueError)
//
// `freqs` are periods/2π (1/inv_freq), as MLX takes them; "inf" means θ = 0. The input
// prescale multiplies x[..., :dims] before the rotation (mlx-lm's mscale placement; the
// same as multiplying cos and sin). Differences from transformers: docs/variants.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ropekit/frequencies.h"

namespace ropekit {

struct MlxRope {
  std::string class_name;  // "RoPE", "Llama3RoPE", "YarnRoPE", "SuScaledRoPE", ...
  std::string rope_type;   // the type string mlx-lm resolved
  int dims = 0;            // rotated features (pairs: dims/2)
  bool traditional = false;
  std::optional<double> base;  // fast.rope `base` (when freqs is empty)
  double scale = 1.0;          // fast.rope `scale`: positions are multiplied by it
  std::vector<float> freqs;    // fast.rope `freqs` (may hold +inf)
  double input_prescale = 1.0;
  // DynamicNTKScalingRoPE: base depends on each call's sequence length + offset.
  bool dynamic = false;
  double dynamic_factor = 1.0;
  std::optional<std::int64_t> max_position_embeddings;

  // fast.rope's base for a call on x with `seq` positions starting at `offset`
  // (dynamic: base·(factor·S/max_pos − (factor−1))^(d/(d−2)), S = max(seq+offset, max_pos)).
  double base_for_call(std::int64_t seq, std::int64_t offset) const;
  // The equivalent frequency plan (inv_freq = 1/freqs or base^(−2i/d), prescale as attention
  // factor, layout from `traditional`). Positions must then be multiplied by `scale`.
  FrequencyPlan plan_for_call(std::int64_t seq, std::int64_t offset, int head_dim) const;
};

// Throws ConfigError for what mlx-lm rejects (unsupported type, missing required key, ...).
// scaling_config_json: a JSON object or "null".
MlxRope initialize_rope(int dims, double base, bool traditional,
                        std::string_view scaling_config_json = "null",
                        std::optional<std::int64_t> max_position_embeddings = std::nullopt);

// The same from a JSON object of keyword arguments: {"dims", "base", "traditional",
// "scaling_config", "max_position_embeddings"} (mlx-lm's names; base defaults to 10000,
// traditional to false, as nn.RoPE's).
MlxRope initialize_rope_from_kwargs(std::string_view kwargs_json);

}  // namespace ropekit
