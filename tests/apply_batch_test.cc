// The batch axis of TensorView (batch, stride_batch) and CosSinCache::wrap (a caller's cos|sin
// table): a batched call must give exactly the bytes of one call per sequence, for every
// layout of the batch ([batch, seq, heads, dim] and [batch, heads, seq, dim]), both backends,
// in place and out of place; a wrapped table must give exactly what the library's own cache
// with the same values gives; bad batches and out-of-table positions are refused.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "ropekit/ropekit.h"

namespace {

using ropekit::ApplyOptions;
using ropekit::ArgumentError;
using ropekit::Backend;
using ropekit::ConstTensorView;
using ropekit::DType;
using ropekit::Positions;
using ropekit::TensorView;

ropekit::FrequencyPlan test_plan(int head_dim, int rotary_dim) {
  ropekit::RopeConfig c;
  c.head_dim = head_dim;
  c.rotary_dim = rotary_dim;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 4096;
  return ropekit::build_frequency_plan(c);
}

std::vector<float> data(std::size_t n, int seed) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<float>((static_cast<int>(i) * 37 + seed * 11) % 29 - 14) / 7.0f;
  return v;
}

// [B, H, S, D] storage (non-flat batch) vs one call per sequence.
TEST(ApplyBatch, HeadsMajorBatchEqualsOneCallPerSequence) {
  const int B = 3, S = 5, H = 4, Hk = 2, D = 64;
  const auto plan = test_plan(D, 48);
  for (const Backend backend : {Backend::kReference, Backend::kAuto}) {
    for (const bool in_place : {true, false}) {
      std::vector<float> q = data(static_cast<std::size_t>(B * H * S * D), 1);
      std::vector<float> k = data(static_cast<std::size_t>(B * Hk * S * D), 2);
      std::vector<float> q_ref = q, k_ref = k;
      std::vector<float> q_out(q.size()), k_out(k.size());
      ApplyOptions o;
      o.backend = backend;
      // Expected: per sequence b, a [S, H, D] view with stride_token D, stride_head S·D.
      for (int b = 0; b < B; ++b) {
        TensorView qv{q_ref.data() + b * H * S * D, DType::kF32, S, H, D, D, S * D, 1};
        TensorView kv{k_ref.data() + b * Hk * S * D, DType::kF32, S, Hk, D, D, S * D, 1};
        ropekit::apply_rope(plan, qv, kv, Positions::offset(7), o);
      }
      TensorView qv{q.data(), DType::kF32, S, H, D, D, S * D, 1};
      qv.batch = B;
      qv.stride_batch = H * S * D;
      TensorView kv{k.data(), DType::kF32, S, Hk, D, D, S * D, 1};
      kv.batch = B;
      kv.stride_batch = Hk * S * D;
      if (in_place) {
        ropekit::apply_rope(plan, qv, kv, Positions::offset(7), o);
        EXPECT_EQ(std::memcmp(q.data(), q_ref.data(), q.size() * 4), 0);
        EXPECT_EQ(std::memcmp(k.data(), k_ref.data(), k.size() * 4), 0);
      } else {
        TensorView qo = qv, ko = kv;
        qo.data = q_out.data();
        ko.data = k_out.data();
        ropekit::apply_rope(plan, qv, qo, kv, ko, Positions::offset(7), o);
        EXPECT_EQ(std::memcmp(q_out.data(), q_ref.data(), q.size() * 4), 0);
        EXPECT_EQ(std::memcmp(k_out.data(), k_ref.data(), k.size() * 4), 0);
      }
    }
  }
}

// [B, S, H, D] contiguous (flat batch) in bf16 with per-sequence positions.
TEST(ApplyBatch, FlatBatchPerSequencePositionsBf16) {
  const int B = 2, S = 6, H = 3, D = 32;
  const auto plan = test_plan(D, D);
  std::vector<ropekit::BF16> q(static_cast<std::size_t>(B * S * H * D));
  const auto src = data(q.size(), 3);
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = ropekit::f32_to_bf16(src[i]);
  auto ref = q;
  const std::vector<std::int64_t> offs = {100, 4000};
  for (int b = 0; b < B; ++b) {
    auto v = TensorView::contiguous(ref.data() + b * S * H * D, DType::kBF16, S, H, D);
    ropekit::apply_rope(plan, v, TensorView{},
                        Positions::offset(offs[static_cast<std::size_t>(b)]));
  }
  auto v = TensorView::contiguous(q.data(), DType::kBF16, S, H, D);
  v.batch = B;
  v.stride_batch = S * H * D;
  const std::vector<std::int64_t> indptr = {0, S, 2 * S};
  ropekit::apply_rope(plan, v, TensorView{}, Positions::per_sequence(indptr, offs));
  EXPECT_EQ(std::memcmp(q.data(), ref.data(), q.size() * 2), 0);
}

TEST(ApplyBatch, BadBatchesAreRefused) {
  const int S = 4, H = 2, D = 16;
  const auto plan = test_plan(D, D);
  std::vector<float> q(static_cast<std::size_t>(2 * S * H * D)), k(q.size());
  auto qv = TensorView::contiguous(q.data(), DType::kF32, S, H, D);
  qv.batch = 2;
  qv.stride_batch = S * H * D;
  auto kv = TensorView::contiguous(k.data(), DType::kF32, S, H, D);  // batch 1
  EXPECT_THROW(ropekit::apply_rope(plan, qv, kv, Positions::offset(0)), ArgumentError);
  auto zero = qv;
  zero.batch = 0;
  EXPECT_THROW(ropekit::apply_rope(plan, zero, TensorView{}, Positions::offset(0)), ArgumentError);
  auto overlap = qv;  // both sequences at the same address: self-overlapping output
  overlap.stride_batch = 0;
  EXPECT_THROW(ropekit::apply_rope(plan, overlap, TensorView{}, Positions::offset(0)),
               ArgumentError);
  // per-token positions count every token of the batch
  std::vector<std::int64_t> ids(S, 0);
  EXPECT_THROW(ropekit::apply_rope(plan, qv, TensorView{}, Positions::per_token(ids)),
               ArgumentError);
}

// q and k as head slices of one fused [batch, heads_q + heads_k, seq, dim] buffer, in place: the
// batches interleave in memory, yet the views are disjoint and must be accepted.
TEST(ApplyBatch, FusedHeadsMajorBufferInPlace) {
  const int B = 2, S = 3, H = 4, Hk = 2, D = 16;
  const auto plan = test_plan(D, D);
  std::vector<float> buf = data(static_cast<std::size_t>(B * (H + Hk) * S * D), 7);
  std::vector<float> ref = buf;
  for (int b = 0; b < B; ++b) {
    float* base = ref.data() + b * (H + Hk) * S * D;
    TensorView qv{base, DType::kF32, S, H, D, D, S * D, 1};
    TensorView kv{base + H * S * D, DType::kF32, S, Hk, D, D, S * D, 1};
    ropekit::apply_rope(plan, qv, kv, Positions::offset(3));
  }
  TensorView qv{buf.data(), DType::kF32, S, H, D, D, S * D, 1};
  qv.batch = B;
  qv.stride_batch = (H + Hk) * S * D;
  TensorView kv = qv;
  kv.data = buf.data() + H * S * D;
  kv.heads = Hk;
  ropekit::apply_rope(plan, qv, kv, Positions::offset(3));
  EXPECT_EQ(std::memcmp(buf.data(), ref.data(), buf.size() * 4), 0);
  // k overlapping q's heads is still refused
  kv.data = buf.data() + (H - 1) * S * D;
  EXPECT_THROW(ropekit::apply_rope(plan, qv, kv, Positions::offset(3)), ArgumentError);
}

// Random shapes, dtypes, pair layouts, batch layouts (sequence-major, heads-major, batches in
// reverse order through a negative stride_batch), position kinds and backends: the batched
// call writes exactly the bytes of one call per sequence.
TEST(ApplyBatch, RandomCasesEqualOneCallPerSequence) {
  std::mt19937 rng(16);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const ropekit::PairLayout layouts[] = {ropekit::PairLayout::kHalf,
                                         ropekit::PairLayout::kInterleaved,
                                         ropekit::PairLayout::kInterleavedToHalf};
  const DType dtypes[] = {DType::kF32, DType::kF16, DType::kBF16};
  for (int iter = 0; iter < 60; ++iter) {
    const int B = 1 + pick(4), S = 1 + pick(7), H = 1 + pick(5), D = 8 * (1 + pick(16));
    const int R = 2 * (1 + pick(D / 2));
    const auto plan = test_plan(D, R);
    const DType din = dtypes[pick(3)], dout = dtypes[pick(3)];
    const int batch_layout = pick(3);  // 0 [B,S,H,D]  1 [B,H,S,D]  2 [B,S,H,D] reversed batch
    const int pos_kind = pick(3);      // 0 offset  1 per sequence  2 per token
    const bool in_place = din == dout && pick(2) == 0;
    ApplyOptions o;
    o.backend = pick(2) ? Backend::kAuto : Backend::kReference;
    o.layout = layouts[pick(3)];
    o.angles = pick(2) ? ropekit::AngleMode::kExact : ropekit::AngleMode::kHf;
    const std::size_t n = static_cast<std::size_t>(B * S * H * D);
    const int ein = ropekit::dtype_size(din), eout = ropekit::dtype_size(dout);
    std::vector<unsigned char> in(n * static_cast<std::size_t>(ein));
    const auto src = data(n, iter);
    for (std::size_t i = 0; i < n; ++i) {
      if (din == DType::kF32) std::memcpy(&in[4 * i], &src[i], 4);
      const std::uint16_t h =
          din == DType::kF16 ? ropekit::f32_to_f16(src[i]).bits : ropekit::f32_to_bf16(src[i]).bits;
      if (din != DType::kF32) std::memcpy(&in[2 * i], &h, 2);
    }
    std::vector<unsigned char> out(n * static_cast<std::size_t>(eout), 0xAB), ref = out;
    std::vector<unsigned char> in_ref = in;
    // element strides of sequence b at base offset(b)
    const std::int64_t st = batch_layout == 1 ? D : H * D;
    const std::int64_t sh = batch_layout == 1 ? S * D : D;
    const std::int64_t seq_elems = S * H * D;
    std::vector<std::int64_t> offs(static_cast<std::size_t>(B)), ids;
    for (auto& v : offs) v = pick(5000) - 100;
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < S; ++t)
        ids.push_back(pick(2) ? offs[static_cast<std::size_t>(b)] + t : pick(100000));
    std::vector<std::int64_t> indptr;
    for (int b = 0; b <= B; ++b) indptr.push_back(static_cast<std::int64_t>(b) * S);
    auto positions_for = [&](int b) {  // sequence b alone
      if (pos_kind == 2)
        return Positions::per_token(std::span<const std::int64_t>(ids).subspan(
            static_cast<std::size_t>(b * S), static_cast<std::size_t>(S)));
      return Positions::offset(pos_kind == 0 ? offs[0] : offs[static_cast<std::size_t>(b)]);
    };
    // reference: one call per sequence, sequence b stored at block b (block B-1-b reversed)
    auto block = [&](int b) { return batch_layout == 2 ? B - 1 - b : b; };
    for (int b = 0; b < B; ++b) {
      const std::int64_t e = block(b) * seq_elems;
      unsigned char* ip = in_ref.data() + e * ein;
      unsigned char* op = in_place ? ip : ref.data() + e * eout;
      ConstTensorView iv(ip, din, S, H, D, st, sh, 1);
      TensorView ov{op, dout, S, H, D, st, sh, 1};
      ropekit::apply_rope(plan, iv, ov, {}, {}, positions_for(b), o);
    }
    // the batched call
    const std::int64_t first = block(0) * seq_elems;
    const std::int64_t sb = batch_layout == 2 ? -seq_elems : seq_elems;
    ConstTensorView iv(in.data() + first * ein, din, S, H, D, st, sh, 1);
    iv.batch = B;
    iv.stride_batch = sb;
    TensorView ov{
        (in_place ? in.data() + first * ein : out.data() + first * eout), dout, S, H, D, st, sh, 1};
    ov.batch = B;
    ov.stride_batch = sb;
    const Positions pos = pos_kind == 0 ? Positions::offset(offs[0])
                          : pos_kind == 1
                              ? Positions::per_sequence(indptr, offs)
                              : Positions::per_token(std::span<const std::int64_t>(ids));
    if (in_place)
      ropekit::apply_rope(plan, ov, TensorView{}, pos, o);
    else
      ropekit::apply_rope(plan, iv, ov, {}, {}, pos, o);
    SCOPED_TRACE("iter " + std::to_string(iter));
    if (in_place) {
      EXPECT_EQ(in, in_ref);
    } else {
      EXPECT_EQ(out, ref);
    }
  }
}

// A wrapped vLLM-layout table holding exactly the library cache's values gives the same bytes.
TEST(CosSinCacheWrap, VllmTableMatchesLibraryCache) {
  const int T = 9, H = 2, D = 64, R = 64, n = R / 2;
  const auto plan = test_plan(D, R);
  ropekit::CosSinCache own(plan, ropekit::AngleMode::kExact, true, 64);
  std::vector<float> table(static_cast<std::size_t>(64 * R));
  for (int p = 0; p < 64; ++p) {
    std::memcpy(&table[static_cast<std::size_t>(p * R)], own.cos_row(p), n * sizeof(float));
    std::memcpy(&table[static_cast<std::size_t>(p * R + n)], own.sin_row(p), n * sizeof(float));
  }
  auto wrapped = ropekit::CosSinCache::wrap(table.data(), table.data() + n, 64, n, R);
  EXPECT_TRUE(wrapped->is_external());
  EXPECT_EQ(wrapped->size(), 64);
  const std::vector<std::int32_t> pos = {0, 5, 63, 2, 2, 40, 17, 1, 9};
  for (const Backend backend : {Backend::kReference, Backend::kAuto}) {
    for (const auto dir : {ropekit::Direction::kForward, ropekit::Direction::kInverse}) {
      auto a = data(static_cast<std::size_t>(T * H * D), 5), b = a;
      ApplyOptions o;
      o.backend = backend;
      o.direction = dir;
      o.cache = &own;
      ropekit::apply_rope(plan, TensorView::contiguous(a.data(), DType::kF32, T, H, D),
                          TensorView{}, Positions::per_token(pos), o);
      o.cache = wrapped.get();
      ropekit::apply_rope(plan, TensorView::contiguous(b.data(), DType::kF32, T, H, D),
                          TensorView{}, Positions::per_token(pos), o);
      EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
    }
  }
  // Positions outside the table and growth are refused.
  auto x = data(static_cast<std::size_t>(T * H * D), 6);
  ApplyOptions o;
  o.cache = wrapped.get();
  const auto view = TensorView::contiguous(x.data(), DType::kF32, T, H, D);
  EXPECT_THROW(ropekit::apply_rope(plan, view, TensorView{}, Positions::offset(60), o),
               ArgumentError);
  EXPECT_THROW(ropekit::apply_rope(plan, view, TensorView{}, Positions::offset(-1), o),
               ArgumentError);
  EXPECT_THROW(wrapped->reserve(65), ArgumentError);
  EXPECT_THROW(ropekit::CosSinCache::wrap(table.data(), table.data() + n, 64, n, n - 1),
               ArgumentError);
  EXPECT_THROW(ropekit::CosSinCache::wrap(nullptr, nullptr, 64, n, R), ArgumentError);
}

// Two separate tables (cos and sin in their own allocations, rows padded) give the library
// cache's bytes too, for consecutive positions (the rows requested ahead) and scattered ones,
// in both pair layouts and in 16 bits; and in both kinds of cache, sin_row(p) lies at the same
// distance from cos_row(p) for every p (the contract the kernels rely on), across the built
// table's blocks of rows.
TEST(CosSinCacheWrap, SeparateTablesMatchLibraryCache) {
  const int T = 37, H = 3, D = 128, R = 128, n = R / 2, stride = n + 5, rows = 3000;
  const auto plan = test_plan(D, R);
  ropekit::CosSinCache own(plan, ropekit::AngleMode::kExact, true, rows);
  std::vector<float> cos_t(static_cast<std::size_t>(rows * stride), 9.0f);
  std::vector<float> sin_t(static_cast<std::size_t>(rows * stride + 7), 9.0f);
  const float* sin_base = sin_t.data() + 7;
  for (int p = 0; p < rows; ++p) {
    std::memcpy(&cos_t[static_cast<std::size_t>(p * stride)], own.cos_row(p), n * sizeof(float));
    std::memcpy(&sin_t[static_cast<std::size_t>(p * stride + 7)], own.sin_row(p),
                n * sizeof(float));
  }
  auto wrapped = ropekit::CosSinCache::wrap(cos_t.data(), sin_base, rows, n, stride);
  const auto gap = [](const ropekit::CosSinCache& c, std::int64_t p) {
    return reinterpret_cast<std::intptr_t>(c.sin_row(p)) -
           reinterpret_cast<std::intptr_t>(c.cos_row(p));
  };
  for (const ropekit::CosSinCache* c : {&own, wrapped.get()}) {
    for (const std::int64_t p : {0, 1, 1023, 1024, 1025, 2047, 2048, rows - 1})
      EXPECT_EQ(gap(*c, p), gap(*c, 0)) << "row " << p << (c == &own ? " (built)" : " (wrapped)");
  }
  EXPECT_EQ(gap(own, 5), static_cast<std::intptr_t>(n * sizeof(float)));
  std::vector<std::int32_t> scattered(T);
  for (int t = 0; t < T; ++t) scattered[static_cast<std::size_t>(t)] = (t * 811 + 5) % rows;
  for (const DType dt : {DType::kF32, DType::kBF16}) {
    for (const auto layout : {ropekit::PairLayout::kHalf, ropekit::PairLayout::kInterleaved}) {
      for (const Positions& pos : {Positions::offset(1020), Positions::per_token(scattered)}) {
        const auto x = data(static_cast<std::size_t>(T * H * D), 7);
        std::vector<ropekit::BF16> x16(x.size());
        for (std::size_t i = 0; i < x.size(); ++i) x16[i] = ropekit::f32_to_bf16(x[i]);
        const void* in = dt == DType::kF32 ? static_cast<const void*>(x.data()) : x16.data();
        const std::size_t bytes = x.size() * (dt == DType::kF32 ? 4 : 2);
        std::vector<std::uint8_t> a(bytes), b(bytes);
        ApplyOptions o;
        o.layout = layout;
        o.cache = &own;
        ropekit::apply_rope(plan, ConstTensorView::contiguous(in, dt, T, H, D),
                            TensorView::contiguous(a.data(), dt, T, H, D), {}, {}, pos, o);
        o.cache = wrapped.get();
        ropekit::apply_rope(plan, ConstTensorView::contiguous(in, dt, T, H, D),
                            TensorView::contiguous(b.data(), dt, T, H, D), {}, {}, pos, o);
        EXPECT_EQ(a, b) << ropekit::dtype_name(dt) << " layout " << static_cast<int>(layout)
                        << " positions kind " << static_cast<int>(pos.kind());
        EXPECT_NE(std::memcmp(a.data(), in, bytes), 0);  // rotated at all
      }
    }
  }
}

}  // namespace
