#include <cstdio>

#include <ropekit/ropekit.h>

int main() {
  const auto model = ropekit::parse_hf_config(
      R"({"model_type":"mistral","hidden_size":4096,"num_attention_heads":32,"max_position_embeddings":32768,"rope_theta":10000.0})");
  const auto plan = ropekit::build_frequency_plan(model.layers.at(0));
  float q[128];
  for (int i = 0; i < 128; ++i) q[i] = 1.0f;
  auto view = ropekit::TensorView::contiguous(q, ropekit::DType::kF32, 1, 1, 128);
  ropekit::apply_rope(plan, view, ropekit::TensorView{}, ropekit::Positions::offset(7));
  std::printf("consumer ok: %zu frequencies, q[0] = %.6f\n", plan.inv_freq.size(),
              static_cast<double>(q[0]));
  return plan.inv_freq.size() == 64 ? 0 : 1;
}
