// Google Benchmark suite for developers: apply_rope per dtype / layout / cos-sin source / shape,
// the regular-store copy of the same bytes (the floor `ropekit bench` compares against), and the
// cos/sin table build. Bytes processed = bytes read + written, so "bytes_per_second" of a kernel
// and of BM_CopyFloor with the same arguments compare directly.
//
//   bench_apply --benchmark_filter=Decode --benchmark_repetitions=5
//               --benchmark_report_aggregates_only=true      (one command line)
//   ROPEKIT_TARGET=AVX2 bench_apply ...       (the label shows the target in use)
//
// Benchmark 1.7.1 has no MinWarmUpTime: every benchmark makes warm-up calls before its loop.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "ropekit/ropekit.h"
#include "simd/simd_api.h"

namespace ropekit {
namespace {

// args: tokens, heads, dtype (0 f32, 1 f16, 2 bf16), layout (0 half, 1 interleaved),
//       cos_sin (0 on the fly, 1 table), threads
struct Setup {
  FrequencyPlan plan;
  std::vector<std::uint8_t> in, out;
  std::unique_ptr<CosSinCache> cache;
  std::unique_ptr<ThreadPool> pool;
  std::vector<std::int64_t> indptr, offsets;
  DType dt = DType::kF32;
  std::int64_t tokens = 0, heads = 0;
  bool decode = false;

  Setup(const benchmark::State& st, bool decode_positions) {
    tokens = st.range(0);
    heads = st.range(1);
    dt = static_cast<DType>(st.range(2));
    decode = decode_positions;
    RopeConfig c;
    c.head_dim = c.rotary_dim = 128;
    c.rope_theta = 500000;
    c.max_position_embeddings = 131072;
    c.layout = st.range(3) ? PairLayout::kInterleaved : PairLayout::kHalf;
    plan = build_frequency_plan(c);
    const std::size_t bytes = static_cast<std::size_t>(tokens * heads * 128 * dtype_size(dt));
    in.assign(bytes, 0);
    out.assign(bytes, 0);
    for (std::size_t i = 0; i < bytes / 2; ++i) {  // values in [-1, 1) for any dtype
      const float v = static_cast<float>(static_cast<int>(i * 2654435761u % 2001) - 1000) / 1000.0f;
      if (dt == DType::kF32 && i % 2 == 0) reinterpret_cast<float*>(in.data())[i / 2] = v;
      if (dt == DType::kBF16) reinterpret_cast<BF16*>(in.data())[i] = f32_to_bf16(v);
      if (dt == DType::kF16) reinterpret_cast<F16*>(in.data())[i] = f32_to_f16(v);
    }
    if (decode) {
      for (std::int64_t s = 0; s <= tokens; ++s) indptr.push_back(s);
      for (std::int64_t s = 0; s < tokens; ++s)
        offsets.push_back(s * 32767 / std::max<std::int64_t>(1, tokens - 1));
    }
    if (st.range(4))
      cache = std::make_unique<CosSinCache>(plan, AngleMode::kExact, true, decode ? 32768 : tokens);
    pool = std::make_unique<ThreadPool>(static_cast<int>(st.range(5)));
  }

  void apply() {
    ApplyOptions o;
    o.cache = cache.get();
    o.pool = pool.get();
    const Positions pos = decode ? Positions::per_sequence(indptr, offsets) : Positions::offset(0);
    apply_rope(plan, ConstTensorView::contiguous(in.data(), dt, tokens, heads, 128),
               TensorView::contiguous(out.data(), dt, tokens, heads, 128), {}, {}, pos, o);
  }
};

void run_apply(benchmark::State& st, bool decode) {
  Setup s(st, decode);
  for (int i = 0; i < 3; ++i) s.apply();
  for (auto _ : st) {
    s.apply();
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations()) *
                       static_cast<std::int64_t>(2 * s.in.size()));
  st.SetLabel(active_target());
}

void BM_Prefill(benchmark::State& st) { run_apply(st, false); }
void BM_Decode(benchmark::State& st) { run_apply(st, true); }

// The floor: copy of the same bytes (regular stores), split like apply_rope splits its work.
void BM_CopyFloor(benchmark::State& st) {
  const std::size_t bytes = static_cast<std::size_t>(st.range(0) * st.range(1) * 128 *
                                                     dtype_size(static_cast<DType>(st.range(2))));
  std::vector<std::uint8_t> a(bytes, 1), b(bytes, 0);
  ThreadPool pool(static_cast<int>(st.range(5)));
  const int threads = pool.size();
  auto copy = [&] {
    if (threads == 1 || bytes < 256 * 1024) {
      detail::simd_copy(b.data(), a.data(), bytes);
      return;
    }
    const std::int64_t chunks = std::max<std::int64_t>(
        threads,
        std::min<std::int64_t>(4 * threads, static_cast<std::int64_t>(2 * bytes / (256 * 1024))));
    pool.parallel_for(chunks, [&](std::int64_t c) {
      const std::size_t lo =
          bytes * static_cast<std::size_t>(c) / static_cast<std::size_t>(chunks) / 64 * 64;
      const std::size_t hi = c + 1 == chunks ? bytes
                                             : bytes * static_cast<std::size_t>(c + 1) /
                                                   static_cast<std::size_t>(chunks) / 64 * 64;
      detail::simd_copy(b.data() + lo, a.data() + lo, hi - lo);
    });
  };
  for (int i = 0; i < 3; ++i) copy();
  for (auto _ : st) {
    copy();
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations()) *
                       static_cast<std::int64_t>(2 * bytes));
}

void Shapes(benchmark::internal::Benchmark* b, std::int64_t tokens, std::int64_t heads) {
  for (const int dt : {0, 1, 2})
    for (const int layout : {0, 1})
      for (const int table : {0, 1})
        for (const int threads : {1, 2}) b->Args({tokens, heads, dt, layout, table, threads});
  b->ArgNames({"T", "H", "dtype", "interleaved", "table", "thr"})
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_Decode)->Apply([](auto* b) { Shapes(b, 64, 32); });
BENCHMARK(BM_Prefill)->Apply([](auto* b) { Shapes(b, 4096, 32); });
BENCHMARK(BM_Prefill)->Apply([](auto* b) { Shapes(b, 32768, 8); });
BENCHMARK(BM_CopyFloor)->Apply([](auto* b) {
  for (const int dt : {0, 2})
    for (const int threads : {1, 2}) {
      b->Args({64, 32, dt, 0, 0, threads});
      b->Args({4096, 32, dt, 0, 0, threads});
      b->Args({32768, 8, dt, 0, 0, threads});
    }
  b->ArgNames({"T", "H", "dtype", "-", "-", "thr"})->UseRealTime()->Unit(benchmark::kMicrosecond);
});

// The exact cos/sin table for 32768 positions × 64 frequencies (what CosSinCache builds).
void BM_CosSinTable(benchmark::State& st) {
  std::vector<float> inv(64);
  for (int i = 0; i < 64; ++i)
    inv[static_cast<std::size_t>(i)] = static_cast<float>(std::pow(500000.0, -i / 64.0));
  std::vector<float> c(32768 * 64), s(c.size());
  for (auto _ : st) {
    detail::simd_fill_cos_sin(inv.data(), 64, AngleMode::kExact, 1.0, 0, 32768, c.data(), s.data(),
                              64);
    benchmark::DoNotOptimize(c.data());
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()) * 32768 * 64);
  st.SetLabel(active_target());
}
BENCHMARK(BM_CosSinTable)->Unit(benchmark::kMillisecond);

void BM_LibmSincosf(benchmark::State& st) {
  std::vector<float> inv(64);
  for (int i = 0; i < 64; ++i)
    inv[static_cast<std::size_t>(i)] = static_cast<float>(std::pow(500000.0, -i / 64.0));
  std::vector<float> c(32768 * 64), s(c.size());
  for (auto _ : st) {
    for (std::size_t p = 0; p < 32768; ++p)
      for (std::size_t i = 0; i < 64; ++i)
        ::sincosf(static_cast<float>(p) * inv[i], &s[p * 64 + i], &c[p * 64 + i]);
    benchmark::DoNotOptimize(c.data());
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()) * 32768 * 64);
}
BENCHMARK(BM_LibmSincosf)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ropekit

BENCHMARK_MAIN();
