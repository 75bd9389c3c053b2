#include <gtest/gtest.h>

#include "ropekit/ropekit.h"

TEST(Smoke, ParsesLlama) {
  const auto m = ropekit::parse_hf_config(
      R"({"model_type":"llama","hidden_size":4096,"num_attention_heads":32,"max_position_embeddings":4096})");
  ASSERT_EQ(m.layers.size(), 1u);
  EXPECT_EQ(m.layers[0].head_dim, 128);
}
