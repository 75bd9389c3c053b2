// Minimal resolver (paths only); the built-in model table extends it.
#include "model_source.h"

namespace ropekit::cli {
ModelRope load_model_or_config(const std::string& name_or_path, const ParseOptions& options) {
  return load_hf_config(name_or_path, options);
}
}  // namespace ropekit::cli
