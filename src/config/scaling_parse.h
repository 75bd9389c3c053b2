// Internal: parse and validate one rope parameter dict into a typed Scaling.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/json_access.h"
#include "ropekit/config.h"
#include "ropekit/hf_config.h"

namespace ropekit::detail {

// What the scaling parser needs to know about the rest of the config.
struct ScalingContext {
  std::string path;                 // JSON path of the rope dict ("rope_scaling", ...)
  std::string rope_type;            // canonical type ("default", "linear", ...)
  int rotary_dim = 0;               // for factor-list lengths
  std::int64_t max_position_embeddings = 0;
  std::optional<std::int64_t> top_level_original_max;  // Phi-3: top-level attribute wins
  std::vector<ConfigWarning>* warnings = nullptr;
};

// Canonical rope type for a type string (aliases resolved); throws ConfigError listing the
// supported types for an unknown one. `path` names the key the string came from.
std::string canonical_rope_type(const std::string& type, const std::string& path);

// Parses the type-specific keys of `dict` (which may be an empty object for "default").
Scaling parse_scaling(const Json& dict, const ScalingContext& ctx);

// Keys each type reads (for unknown-key warnings).
bool is_known_rope_key(const std::string& canonical_type, const std::string& key);

}  // namespace ropekit::detail
