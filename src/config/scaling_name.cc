#include <variant>

#include "ropekit/config.h"

namespace ropekit {

namespace {
struct NameOf {
  std::string operator()(const DefaultScaling&) const { return "default"; }
  std::string operator()(const LinearScaling&) const { return "linear"; }
  std::string operator()(const DynamicNtkScaling&) const { return "dynamic"; }
  std::string operator()(const YarnScaling&) const { return "yarn"; }
  std::string operator()(const LongRopeScaling&) const { return "longrope"; }
  std::string operator()(const Llama3Scaling&) const { return "llama3"; }
  std::string operator()(const ProportionalScaling&) const { return "proportional"; }
};
}  // namespace

std::string scaling_type_name(const Scaling& s) { return std::visit(NameOf{}, s); }

}  // namespace ropekit
