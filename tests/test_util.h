// Test helpers: golden loading, the transformers test inputs, error measures, configs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ropekit/config.h"
#include "ropekit/dtype.h"

namespace ropekit::test {

std::string data_path(const std::string& relative);  // relative to the source root
nlohmann::json load_json(const std::string& relative);
std::string read_file(const std::string& relative);

// The goldens' inputs, [heads][seq][head_dim] flattened, transposed here to [seq][heads][hd].
std::vector<float> hf_q(int heads, int seq, int head_dim);
std::vector<float> hf_k(int heads, int seq, int head_dim);

// `elements` deterministic values in [-2, 2] (a function of the seed), stored as `dt`.
std::vector<std::uint8_t> random_tensor(DType dt, std::int64_t elements, unsigned seed);

// ULP distance of a and b in dtype t (both already representable in t).
double ulp_of(DType t, double v);  // the spacing of t at |v|

// A config without scaling of the given geometry (partial rotary when rotary_dim < head_dim).
inline RopeConfig plain_config(int head_dim, int rotary_dim, PairLayout layout, double theta,
                               std::int64_t max_position_embeddings) {
  RopeConfig c;
  c.head_dim = head_dim;
  c.rotary_dim = rotary_dim;
  c.partial_rotary_factor = static_cast<double>(rotary_dim) / head_dim;
  c.layout = layout;
  c.rope_theta = theta;
  c.max_position_embeddings = max_position_embeddings;
  return c;
}

}  // namespace ropekit::test
