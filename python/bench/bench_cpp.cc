// The C++ side of python/bench/bench_python.py: the exact calls the Python benchmark makes,
// timed through the C++ API on the same machine and in the same run. Prints one JSON object
// per case: {"case": ..., "us": median microseconds per call}.
//
//   prefill_f32_out / prefill_bf16_out    4096 tokens × 32 heads × 128, out of place
//   prefill_f32_inplace / prefill_bf16_inplace
//   decode_bf16_qk_inplace                1 token, q 32 heads + k 8 heads, in place
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "ropekit/ropekit.h"

namespace {

double median_us(const std::function<void()>& fn, int samples, int calls_per_sample) {
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> t;
  for (int s = 0; s < samples; ++s) {
    const auto a = std::chrono::steady_clock::now();
    for (int c = 0; c < calls_per_sample; ++c) fn();
    const auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::micro>(b - a).count() / calls_per_sample);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int samples = 15;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--quick") == 0) samples = 5;
  ropekit::RopeConfig c;
  c.head_dim = 128;
  c.rotary_dim = 128;
  c.rope_theta = 500000.0;
  c.max_position_embeddings = 131072;
  const ropekit::FrequencyPlan plan = ropekit::build_frequency_plan(c);
  const std::int64_t T = 4096, H = 32, D = 128;
  std::vector<float> q32(static_cast<std::size_t>(T * H * D)), o32(q32.size());
  std::vector<ropekit::BF16> q16(q32.size()), o16(q32.size());
  for (std::size_t i = 0; i < q32.size(); ++i) {
    q32[i] = static_cast<float>(static_cast<int>(i % 23) - 11) / 8.0f;
    q16[i] = ropekit::f32_to_bf16(q32[i]);
  }
  using ropekit::DType;
  using ropekit::TensorView;
  const auto pos0 = ropekit::Positions::offset(0);
  auto report = [](const char* name, double us) {
    std::printf("{\"case\": \"%s\", \"us\": %.3f}\n", name, us);
    std::fflush(stdout);
  };
  report("prefill_f32_out",
         median_us(
             [&] {
               ropekit::apply_rope(
                   plan, ropekit::ConstTensorView::contiguous(q32.data(), DType::kF32, T, H, D),
                   TensorView::contiguous(o32.data(), DType::kF32, T, H, D), {}, {}, pos0);
             },
             samples, 1));
  report("prefill_f32_inplace",
         median_us(
             [&] {
               ropekit::apply_rope(plan, TensorView::contiguous(q32.data(), DType::kF32, T, H, D),
                                   {}, pos0);
             },
             samples, 1));
  report("prefill_bf16_out",
         median_us(
             [&] {
               ropekit::apply_rope(
                   plan, ropekit::ConstTensorView::contiguous(q16.data(), DType::kBF16, T, H, D),
                   TensorView::contiguous(o16.data(), DType::kBF16, T, H, D), {}, {}, pos0);
             },
             samples, 1));
  report("prefill_bf16_inplace",
         median_us(
             [&] {
               ropekit::apply_rope(plan, TensorView::contiguous(q16.data(), DType::kBF16, T, H, D),
                                   {}, pos0);
             },
             samples, 1));
  std::vector<ropekit::BF16> dq(32 * 128), dk(8 * 128);
  for (std::size_t i = 0; i < dq.size(); ++i) dq[i] = ropekit::f32_to_bf16(0.25f);
  for (std::size_t i = 0; i < dk.size(); ++i) dk[i] = ropekit::f32_to_bf16(0.5f);
  const auto pos = ropekit::Positions::offset(1000);
  report("decode_bf16_qk_inplace",
         median_us(
             [&] {
               ropekit::apply_rope(plan,
                                   TensorView::contiguous(dq.data(), DType::kBF16, 1, 32, 128),
                                   TensorView::contiguous(dk.data(), DType::kBF16, 1, 8, 128), pos);
             },
             samples, 2000));
  return 0;
}
