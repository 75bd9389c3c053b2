// Internal to the ropekit command: resolve a command-line MODEL|CONFIG argument.
// A built-in model name (`ropekit models`), a path to a config.json, or a path to a GGUF file
// (recognised by its magic, whatever its name).
#pragma once

#include <filesystem>
#include <string>

#include "ropekit/hf_config.h"

namespace ropekit::cli {

// Throws ropekit::IoError / ConfigError; an unknown name that is not a file suggests the
// closest built-in names.
// A GGUF file's RoPE; ConfigErrors carry the file name before the key.
ModelRope load_gguf_model(const std::filesystem::path& path, const ParseOptions& options = {});

ModelRope load_model_or_config(const std::string& name_or_path, const ParseOptions& options = {});

}  // namespace ropekit::cli
