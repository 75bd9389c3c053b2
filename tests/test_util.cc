#include "test_util.h"

#include <cmath>
#include <cstring>
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

std::vector<std::uint8_t> random_tensor(DType dt, std::int64_t elements, unsigned seed) {
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(elements * dtype_size(dt)));
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::int64_t i = 0; i < elements; ++i) {
    x = x * 1664525u + 1013904223u;
    const float v = static_cast<float>(x >> 8) / static_cast<float>(1u << 24) * 4.0f - 2.0f;
    std::uint8_t* p = bytes.data() + i * dtype_size(dt);
    if (dt == DType::kF32) {
      std::memcpy(p, &v, 4);
    } else if (dt == DType::kF16) {
      const F16 h = f32_to_f16(v);
      std::memcpy(p, &h.bits, 2);
    } else {
      const BF16 b = f32_to_bf16(v);
      std::memcpy(p, &b.bits, 2);
    }
  }
  return bytes;
}

}  // namespace ropekit::test
