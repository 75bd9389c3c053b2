// Internal to the ropekit command: resolve a command-line MODEL|CONFIG argument.
// A built-in model name (`ropekit models`) or a path to a config.json.
#pragma once

#include <string>

#include "ropekit/hf_config.h"

namespace ropekit::cli {

// Throws ropekit::IoError / ConfigError; an unknown name that is not a file suggests the
// closest built-in names.
ModelRope load_model_or_config(const std::string& name_or_path, const ParseOptions& options = {});

}  // namespace ropekit::cli
