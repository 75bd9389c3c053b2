// Internal to the ropekit command: the files that cli/builtin_models.cmake embeds at build time
// (the generated builtin_models_data.cc defines these). Use cli/builtin_models.h instead.
#pragma once

#include <cstddef>
#include <string_view>

namespace ropekit::cli::generated {

struct EmbeddedFile {
  std::string_view name;  // the file name without ".json"
  std::string_view text;  // the file's bytes, verbatim
};

extern const EmbeddedFile kModelFiles[];  // sorted by name
extern const std::size_t kModelFileCount;
extern const std::string_view kSourcesJson;  // models/SOURCES.json

}  // namespace ropekit::cli::generated
