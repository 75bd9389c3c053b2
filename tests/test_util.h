// Test helpers: golden loading, the transformers test inputs, error measures.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ropekit/dtype.h"

namespace ropekit::test {

std::string data_path(const std::string& relative);  // relative to the source root
nlohmann::json load_json(const std::string& relative);
std::string read_file(const std::string& relative);

// The goldens' inputs, [heads][seq][head_dim] flattened, transposed here to [seq][heads][hd].
std::vector<float> hf_q(int heads, int seq, int head_dim);
std::vector<float> hf_k(int heads, int seq, int head_dim);

// ULP distance of a and b in dtype t (both already representable in t).
double ulp_of(DType t, double v);  // the spacing of t at |v|

}  // namespace ropekit::test
