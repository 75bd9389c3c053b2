// Internal: the table of scaling types, the one place on the config side that lists them.
//
// Each row names a rope type (canonical name, accepted aliases, the type-specific keys it
// reads) and parses its dict into a typed Scaling. Rows are in the order of the alternatives
// of ropekit::Scaling (include/ropekit/config.h), so scaling_type_name() is a table lookup.
// Adding a scaling type: its struct in config.h, a row here, its builder freq/<type>.cc
// (declared in freq/freq_math.h), its test and its docs/variants.md section.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "config/json_access.h"
#include "ropekit/config.h"
#include "ropekit/hf_config.h"

namespace ropekit::detail {

// What the scaling parser needs to know about the rest of the config.
struct ScalingContext {
  std::string path;       // JSON path of the rope dict ("rope_scaling", ...)
  std::string rope_type;  // canonical type ("default", "linear", ...)
  int rotary_dim = 0;     // for factor-list lengths
  std::int64_t max_position_embeddings = 0;
  std::optional<std::int64_t> top_level_original_max;  // Phi-3: top-level attribute wins
  std::vector<ConfigWarning>* warnings = nullptr;
};

struct ScalingType {
  const char* name;  // canonical rope_type
  // Other spellings accepted for this type, each with what it means in messages.
  std::vector<std::pair<std::string, std::string>> aliases;
  std::vector<std::string> keys;  // type-specific keys the parser reads (unknown ones warn)
  Scaling (*parse)(const Json& dict, const ScalingContext& ctx);
};

// One row per alternative of ropekit::Scaling, in the variant's order.
const std::vector<ScalingType>& scaling_types();

// Canonical rope type for a type string (aliases resolved); throws ConfigError listing the
// supported types for an unknown one. `path` names the key the string came from.
std::string canonical_rope_type(const std::string& type, const std::string& path);

// Parses the type-specific keys of `dict` (which may be an empty object for "default").
Scaling parse_scaling(const Json& dict, const ScalingContext& ctx);

// Keys each type reads (for unknown-key warnings).
bool is_known_rope_key(const std::string& canonical_type, const std::string& key);

}  // namespace ropekit::detail
