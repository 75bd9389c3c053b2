#include "test_util.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ropekit::test {

std::string data_path(const std::string& relative) {
  return std::string(ROPEKIT_TEST_DATA) + "/" + relative;
}

std::string read_file(const std::string& relative) {
  std::ifstream in(data_path(relative), std::ios::binary);
  if (!in) throw std::runtime_error("missing test data " + data_path(relative));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json load_json(const std::string& relative) {
  return nlohmann::json::parse(read_file(relative));
}

namespace {
std::vector<float> inputs(int heads, int seq, int hd, int a, int b, int c, int m, int off,
                          float div) {
  std::vector<float> x(static_cast<std::size_t>(heads) * seq * hd);
  for (int s = 0; s < seq; ++s)
    for (int h = 0; h < heads; ++h)
      for (int d = 0; d < hd; ++d)
        x[(static_cast<std::size_t>(s) * heads + h) * hd + d] =
            static_cast<float>(((a * h + b * s + c * d) % m - off)) / div;
  return x;
}
}  // namespace

std::vector<float> hf_q(int heads, int seq, int hd) {
  return inputs(heads, seq, hd, 31, 17, 7, 23, 11, 8.0f);
}
std::vector<float> hf_k(int heads, int seq, int hd) {
  return inputs(heads, seq, hd, 13, 29, 11, 19, 9, 4.0f);
}

double ulp_of(DType t, double v) {
  const int mant = t == DType::kF32 ? 23 : (t == DType::kF16 ? 10 : 7);
  const int min_exp = t == DType::kF16 ? -14 : -126;
  int e = 0;
  if (v != 0) {
    std::frexp(std::fabs(v), &e);
    e -= 1;
  }
  if (v == 0 || e < min_exp) e = min_exp;
  return std::ldexp(1.0, e - mant);
}

}  // namespace ropekit::test
