// 2-D vision RoPE (Pixtral / Mistral 3, Qwen-VL vision towers, Llama 4), the position-row
// helpers and the DeepSeek-V3.2 indexer role, each against a re-implementation of the reference
// model code written here.
#include <gtest/gtest.h>

#include <cmath>
#include <variant>

#include "ropekit/position_rows.h"
#include "ropekit/ropekit.h"
#include "rotation_check.h"
#include "test_util.h"

namespace ropekit {
namespace {

const RopeConfig& vision_of(const ModelRope& m) { return m.layer("vision"); }

// 1 / theta ** (arange(0, n, 2) / n), in double.
std::vector<double> table(double theta, int n) {
  std::vector<double> t;
  for (int i = 0; i < n; i += 2) t.push_back(1.0 / std::pow(theta, static_cast<double>(i) / n));
  return t;
}

void expect_frequencies(const FrequencyPlan& p, const std::vector<double>& want) {
  ASSERT_EQ(p.inv_freq.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_LE(test::ulps(p.inv_freq[i], static_cast<float>(want[i])), 1.0) << i;
}

// Pixtral (transformers PixtralRotaryEmbedding): freqs over head_dim; freqs_h = outer(h,
// freqs[::2]), freqs_w = outer(w, freqs[1::2]); cat([h part, w part]) then repeated for
// rotate_half.
std::vector<double> pixtral_pairs(double theta, int hd, std::vector<int>& row) {
  const std::vector<double> f = table(theta, hd);
  std::vector<double> out;
  for (std::size_t k = 0; k < f.size(); k += 2) out.push_back(f[k]), row.push_back(0);
  for (std::size_t k = 1; k < f.size(); k += 2) out.push_back(f[k]), row.push_back(1);
  return out;
}
// Qwen-VL (VisionRotaryEmbedding(head_dim // 2), rot_pos_emb): [h freqs | w freqs].
std::vector<double> qwen_pairs(double theta, int hd, std::vector<int>& row) {
  const std::vector<double> f = table(theta, hd / 2);
  std::vector<double> out(f);
  out.insert(out.end(), f.begin(), f.end());
  for (std::size_t i = 0; i < out.size(); ++i) row.push_back(i < f.size() ? 0 : 1);
  return out;
}
// Llama 4 (Llama4VisionRotaryEmbedding): rope_freq over freq_dim = hd / 2 ([: freq_dim // 2]),
// cat([freqs_x.repeat_interleave(2), freqs_y.repeat_interleave(2)])[..., ::2]: x (column) first.
std::vector<double> llama4_pairs(double theta, int hd, std::vector<int>& row) {
  const int freq_dim = hd / 2;
  std::vector<double> f = table(theta, freq_dim);
  f.resize(static_cast<std::size_t>(freq_dim / 2));
  std::vector<double> x2, y2;
  for (double v : f) x2.push_back(v), x2.push_back(v);
  y2 = x2;
  std::vector<double> cat(x2);
  cat.insert(cat.end(), y2.begin(), y2.end());
  std::vector<double> out;
  for (std::size_t i = 0; i < cat.size(); i += 2) {
    out.push_back(cat[i]);
    row.push_back(i < x2.size() ? 1 : 0);  // x = column (row 1), y = row (row 0)
  }
  return out;
}

ModelRope pixtral() {
  return parse_hf_config(R"({"model_type":"mistral3","text_config":{"model_type":"mistral",
    "head_dim":128,"hidden_size":5120,"num_attention_heads":32,"max_position_embeddings":131072,
    "rope_theta":1000000000.0},"vision_config":{"model_type":"pixtral","head_dim":64,
    "hidden_size":1024,"num_attention_heads":16,"image_size":1540,"patch_size":14,
    "rope_theta":10000.0}})");
}
ModelRope llama4() {
  return parse_hf_config(R"({"model_type":"llama4","text_config":{"model_type":"llama4_text",
    "head_dim":128,"hidden_size":5120,"num_attention_heads":40,"max_position_embeddings":1048576,
    "rope_theta":500000.0},"vision_config":{"model_type":"llama4_vision_model",
    "hidden_size":1408,"num_attention_heads":16,"image_size":336,"patch_size":14,
    "rope_theta":10000}})");
}

TEST(VisionRope, Qwen3VlBuiltInHasAVisionLayer) {
  const ModelRope m = load_hf_config(test::data_path("models/qwen3-vl-8b-instruct-vision.json"));
  EXPECT_TRUE(m.warnings.empty());
  ASSERT_EQ(m.layers.size(), 2u);
  const RopeConfig& v = vision_of(m);
  EXPECT_EQ(v.head_dim, 72);  // 1152 / 16
  ASSERT_TRUE(v.vision2d);
  EXPECT_EQ(v.vision2d->kind, Vision2dKind::kQwenVl);
  EXPECT_EQ(v.layout, PairLayout::kHalf);
  const FrequencyPlan p = build_frequency_plan(v);
  std::vector<int> row;
  expect_frequencies(p, qwen_pairs(10000.0, 72, row));
  EXPECT_EQ(p.position_rows, 2);
  EXPECT_EQ(std::vector<int>(p.pair_axis.begin(), p.pair_axis.end()), row);
  // The text layer is untouched.
  EXPECT_TRUE(m.layer("default").mrope);
}

TEST(VisionRope, PixtralDealsAlternateFrequencies) {
  const ModelRope m = pixtral();
  const RopeConfig& v = vision_of(m);
  ASSERT_TRUE(v.vision2d);
  EXPECT_EQ(v.vision2d->kind, Vision2dKind::kPixtral);
  const FrequencyPlan p = build_frequency_plan(v);
  std::vector<int> row;
  expect_frequencies(p, pixtral_pairs(10000.0, 64, row));
  EXPECT_EQ(std::vector<int>(p.pair_axis.begin(), p.pair_axis.end()), row);
  EXPECT_EQ(v.max_position_embeddings, 110);  // patches per side
}

TEST(VisionRope, Llama4ColumnFirstOnInterleavedPairs) {
  const ModelRope m = llama4();
  const RopeConfig& v = vision_of(m);
  ASSERT_TRUE(v.vision2d);
  EXPECT_EQ(v.layout, PairLayout::kInterleaved);
  const FrequencyPlan p = build_frequency_plan(v);
  std::vector<int> row;
  expect_frequencies(p, llama4_pairs(10000.0, 88, row));
  EXPECT_EQ(std::vector<int>(p.pair_axis.begin(), p.pair_axis.end()), row);
}

TEST(VisionRope, TransformersArithmeticReplaysFloat32) {
  const ModelRope m = pixtral();
  const FrequencyPlan p =
      build_frequency_plan(vision_of(m), std::nullopt, Numerics::transformers());
  // float32: 1 / (10000 ** (arange(0, 64, 2).float() / 64))
  for (int i = 0; i < 32; ++i) {
    const int k = i < 16 ? 2 * i : 2 * (i - 16) + 1;
    const float e = static_cast<float>(2 * k) / 64.0f;
    const float pw = static_cast<float>(std::pow(10000.0, static_cast<double>(e)));
    EXPECT_LE(test::ulps(p.inv_freq[static_cast<std::size_t>(i)], 1.0f / pw), 1.0) << i;
  }
}

// apply_rope with the patch rows of a grid against float64 math with the test's own pair map.
TEST(VisionRope, ApplyMatchesFloat64RotationForEveryFamily) {
  struct Family {
    ModelRope model;
    Vision2dKind kind;
    int merge;
  };
  const ModelRope qwen = load_hf_config(test::data_path("models/qwen3-vl-8b-instruct-vision.json"));
  for (const Family& f :
       {Family{qwen, Vision2dKind::kQwenVl, 2}, Family{pixtral(), Vision2dKind::kPixtral, 1},
        Family{llama4(), Vision2dKind::kLlama4, 1}}) {
    SCOPED_TRACE(static_cast<int>(f.kind));
    const RopeConfig& v = vision_of(f.model);
    const FrequencyPlan plan = build_frequency_plan(v);
    test::RotationCase c;
    c.head_dim = v.head_dim;
    c.layout = v.layout;
    std::vector<double> want;
    if (f.kind == Vision2dKind::kPixtral) want = pixtral_pairs(10000.0, v.head_dim, c.pair_row);
    if (f.kind == Vision2dKind::kQwenVl) want = qwen_pairs(10000.0, v.head_dim, c.pair_row);
    if (f.kind == Vision2dKind::kLlama4) want = llama4_pairs(10000.0, v.head_dim, c.pair_row);
    expect_frequencies(plan, want);
    c.inv_freq = plan.inv_freq;
    c.rows = vision_patch_rows(f.kind, 4, 6, f.merge);
    c.tokens = static_cast<std::int64_t>(c.rows.size() / 2);
    test::check_rotation(c, [&](const TensorView& q, const ApplyOptions& o) {
      apply_rope(plan, q, TensorView{},
                 Positions::rows(std::span<const std::int64_t>(c.rows), c.tokens, 2), o);
    });
  }
}

// transformers Qwen2-VL rot_pos_emb: hpos = arange(h)[:, None].expand(-1, w), reshaped to
// (h/m, m, w/m, m), permuted (0, 2, 1, 3), flattened; wpos likewise from arange(w)[None, :].
TEST(PositionRowsHelper, QwenVlPatchOrderMatchesRotPosEmb) {
  const int h = 4, w = 6, m = 2;
  std::vector<std::int64_t> hpos, wpos;
  for (int a = 0; a < h / m; ++a)
    for (int b = 0; b < w / m; ++b)
      for (int c = 0; c < m; ++c)
        for (int d = 0; d < m; ++d) {
          hpos.push_back(a * m + c);  // element [a, c, b, d] of the (h/m, m, w/m, m) view
          wpos.push_back(b * m + d);
        }
  std::vector<std::int64_t> want(hpos);
  want.insert(want.end(), wpos.begin(), wpos.end());
  EXPECT_EQ(vision_patch_rows(Vision2dKind::kQwenVl, h, w, m), want);
  // Pixtral: row-major; Llama 4: row-major + 1, then the class token (0, 0).
  EXPECT_EQ(vision_patch_rows(Vision2dKind::kPixtral, 2, 3),
            (std::vector<std::int64_t>{0, 0, 0, 1, 1, 1, 0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(vision_patch_rows(Vision2dKind::kLlama4, 2, 2),
            (std::vector<std::int64_t>{1, 1, 2, 2, 0, 1, 2, 1, 2, 0}));
  EXPECT_THROW(vision_patch_rows(Vision2dKind::kQwenVl, 3, 6, 2), ArgumentError);
}

// transformers Qwen2VLModel.get_rope_index for one image (no video), written out: text before
// the image at arange + st_idx, the image's (t, h, w) index grid + text_len + st_idx, then the
// text after from max + 1.
TEST(PositionRowsHelper, QwenVlRopeIndexWorkedExample) {
  const std::int64_t before = 3, t = 1, gh = 4, gw = 6, after = 2;
  const int m = 2;
  const MRopeRows r = qwen_vl_rope_index(before, t, gh, gw, m, after);
  std::vector<std::vector<std::int64_t>> ref(3);
  std::int64_t st_idx = 0;
  for (std::int64_t i = 0; i < before; ++i)
    for (auto& row : ref) row.push_back(i + st_idx);
  const std::int64_t text_len = before;
  std::int64_t mx = 0;
  for (std::int64_t a = 0; a < t; ++a)
    for (std::int64_t b = 0; b < gh / m; ++b)
      for (std::int64_t c = 0; c < gw / m; ++c) {
        ref[0].push_back(a + text_len + st_idx);
        ref[1].push_back(b + text_len + st_idx);
        ref[2].push_back(c + text_len + st_idx);
        mx = std::max({mx, ref[0].back(), ref[1].back(), ref[2].back()});
      }
  st_idx = mx + 1;
  for (std::int64_t i = 0; i < after; ++i)
    for (auto& row : ref) row.push_back(i + st_idx);
  std::vector<std::int64_t> flat;
  for (const auto& row : ref) flat.insert(flat.end(), row.begin(), row.end());
  EXPECT_EQ(r.rows, flat);
  // The same worked example by hand: 3 text, a 2 × 3 merged grid, 2 text.
  EXPECT_EQ(r.rows, (std::vector<std::int64_t>{0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7,  //
                                               0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7,  //
                                               0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7}));
  EXPECT_EQ(r.tokens, 11);
  EXPECT_EQ(r.next_position, 8);
  EXPECT_EQ(r.delta, -3);  // transformers' rope_deltas: max + 1 - len
}

TEST(IndexerRole, DeepSeekV32IndexerIsHalfSplit) {
  const ModelRope m = parse_hf_config(R"({"model_type":"deepseek_v32","hidden_size":7168,
    "num_attention_heads":128,"qk_rope_head_dim":64,"qk_nope_head_dim":128,"index_head_dim":128,
    "index_n_heads":64,"index_topk":2048,"max_position_embeddings":163840,"rope_theta":10000,
    "rope_scaling":{"beta_fast":32,"beta_slow":1,"factor":40,"mscale":1.0,"mscale_all_dim":1.0,
    "original_max_position_embeddings":4096,"type":"yarn"}})");
  ASSERT_EQ(m.layers.size(), 2u);
  const RopeConfig& mla = m.layer("default");
  const RopeConfig& idx = m.layer("indexer");
  EXPECT_EQ(mla.layout, PairLayout::kInterleaved);
  EXPECT_EQ(idx.layout, PairLayout::kHalf);
  EXPECT_EQ(idx.head_dim, 128);
  EXPECT_EQ(idx.rotary_dim, 64);
  EXPECT_EQ(build_frequency_plan(idx).inv_freq,
            build_frequency_plan(mla).inv_freq);  // same freqs_cis
}

}  // namespace
}  // namespace ropekit
