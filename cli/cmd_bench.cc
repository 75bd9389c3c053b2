// ropekit bench: apply_rope's speed against the memory-bandwidth floor of this machine.
//
// Method (docs/benchmarks.md):
//   * floor  = time of copying the same bytes (read + written) with regular (write-allocating)
//              vector stores, split over the same number of threads the same way, measured in
//              the same run and ALTERNATING with the kernel (copy, kernel, copy, kernel, ...) so
//              that both see the same machine state; x_floor = the median over samples of
//              kernel time / the copy time measured just before it.
//   * table cases also time the plain loop and the on-the-fly kernel; in each round the three
//              take turns in the place right after the floor copy (see the timing loop).
//   * in-place cases also time the in-place pass (bench_loops.h: every vector of the tensors
//              loaded and stored back, the least traffic an in-place call makes) in the same
//              turns; x_in_place = kernel / that pass, plain_x_in_place = plain loop / that pass.
//   * --aa times the plain loop in the kernel's place: x_plain then reads the bench's own bias
//              and noise for two equal loops.
//   * x_plain_95 = the interval that holds the median of the per-sample ratios with probability
//              >= 95%, from their order statistics (bench_stats.h); --rounds N sets the samples.
//   * timing = median of repeated calls after warm-up calls; decode-sized calls are timed in
//              batches (one sample = a batch / its size) because one call takes microseconds.
//   * reference_ms = the scalar double-precision reference backend on the same case (one call,
//              or the median of three for decode), for the speed-up column.
//   * the cos/sin table build for 32768 positions × 64 frequencies (exact angles, CosSinCache)
//              against a loop of libm sincosf over the float angles float(p·inv_freq).
// Progress goes to stderr, only when stderr is a terminal (cli/progress.h).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_loops.h"
#include "bench_stats.h"
#include "commands.h"
#include "machine_info.h"
#include "progress.h"
#include "ropekit/ropekit.h"
#include "simd/simd_api.h"
#include "text_table.h"

namespace ropekit::cli {
namespace {

using Clock = std::chrono::steady_clock;

// The position of the one-token case (inside the 32768-row table).
constexpr std::int64_t kOneTokenPosition = 12345;

struct BenchOptions {
  bool json = false;
  int threads = 0;  // 0: 1 and hardware_concurrency
  bool quick = false;
  bool no_reference = false;
  bool aa = false;  // the plain loop timed in the kernel's place (an A/A run)
  int rounds = 0;   // samples per case; 0: 15 (7 with --quick)
  std::string filter;
};

struct BenchCase {
  std::string name;  // prefill | long | decode | one_token | one_token_prepared | prefill_qk
  std::int64_t tokens = 0, q_heads = 0, k_heads = 0;
  int head_dim = 128;
  DType dtype = DType::kF32;
  PairLayout layout = PairLayout::kHalf;
  std::string scaling = "plain";  // plain | yarn
  bool table = false;
  bool inplace = false;
  int threads = 1;
  bool decode = false;     // per-sequence positions spread to 32767, cache-hot, batched timing
  bool one_token = false;  // one sequence, one token (a single-user decode step), batched timing
  bool prepared = false;   // through a PreparedRope (validated once) instead of apply_rope

  std::string layout_name() const { return layout == PairLayout::kHalf ? "half" : "interleaved"; }
  std::string label() const {
    return fmt::format("{} {} {} {} {} {} t{}", name, dtype_name(dtype), layout_name(), scaling,
                       table ? "table" : "on_the_fly", inplace ? "inplace" : "out", threads);
  }
};

struct Measured {
  double median_ms = 0, floor_ms = 0;
  double x_floor = 0;  // median over samples of kernel / the floor copy timed just before it
  std::optional<double> reference_ms;
  double bytes = 0;            // read + written
  std::string floor_copy;      // the fastest regular-store copy of this case's bytes
  double floor_vs_check = 0;   // median of floor / the independent copy (<= 1: floor is faster)
  double non_temporal_ms = 0;  // a streaming-store copy of the same bytes
  // Table cases: the plain loop and on-the-fly cos/sin, timed in the same alternation.
  std::optional<double> plain_ms, x_plain;            // x_plain = median of kernel / plain loop
  std::optional<bench::MedianInterval> x_plain_95;    // x_plain's 95% interval (bench_stats.h)
  std::optional<double> on_the_fly_ms, x_on_the_fly;  // median of kernel / on-the-fly kernel
  std::optional<double> table_bytes;                  // cos/sin rows read by the call
  // In-place cases: the in-place pass over the same bytes (bench_loops.h), timed in the same
  // turns; medians of kernel / pass and (table cases) plain loop / pass.
  std::optional<double> in_place_ms, x_in_place, plain_x_in_place;
  const char* timed = "ropekit";  // what the kernel columns time ("plain loop (A/A)" under --aa)
};

using bench::median;

template <class F>
double time_ms(F&& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// 64-byte aligned, zero-filled (pages touched) buffer, whose data starts `skew` bytes into its
// allocation (see Runner: input and output are staggered).
struct Buffer {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<std::uint8_t, Free> ptr;
  std::size_t size = 0;
  std::size_t skew = 0;
  explicit Buffer(std::size_t skew_bytes = 0) : skew(skew_bytes) {}
  // Holds n bytes, allocated for a case of about this size: a buffer more than 8 times larger
  // (left by an earlier, larger case) is replaced, so that every case runs on buffers placed as
  // its own allocation places them, whatever ran before it. Returns true when (re)allocated.
  bool ensure(std::size_t n) {
    if (n <= size && n >= size / 8) return false;
    const std::size_t rounded = (n + skew + 63) / 64 * 64;
    ptr.reset();  // the old buffer first: a smaller case then reuses the freed memory
    size = 0;
    ptr.reset(static_cast<std::uint8_t*>(std::aligned_alloc(64, rounded)));
    if (!ptr)
      throw IoError("[ropekit.bench] out of memory allocating " + std::to_string(rounded) +
                    " bytes");
    std::memset(ptr.get(), 0, rounded);
    size = rounded - skew;
    return true;
  }
  std::uint8_t* data() { return ptr.get() + skew; }
};

// Cheap deterministic values in [-1, 1) (the data does not change the speed; NaN-free).
void fill_input(std::uint8_t* p, DType t, std::int64_t n) {
  std::uint64_t s = 0x9E3779B97F4A7C15ull;
  for (std::int64_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const float v = static_cast<float>(static_cast<std::int32_t>(s >> 32)) * (1.0f / 2147483648.0f);
    switch (t) {
      case DType::kF32:
        reinterpret_cast<float*>(p)[i] = v;
        break;
      case DType::kF16:
        reinterpret_cast<F16*>(p)[i] = f32_to_f16(v);
        break;
      case DType::kBF16:
        reinterpret_cast<BF16*>(p)[i] = f32_to_bf16(v);
        break;
    }
  }
}

// A copy of n bytes split as apply_rope splits its work (same chunk count for the same bytes).
template <class Copy>
void copy_split(ThreadPool& pool, int threads, std::uint8_t* dst, const std::uint8_t* src,
                std::size_t n, Copy&& copy) {
  const std::int64_t total = 2 * static_cast<std::int64_t>(n);
  constexpr std::int64_t kMinBytesPerChunk = 256 * 1024;
  if (threads <= 1 || total < 2 * kMinBytesPerChunk) {
    copy(dst, src, n);
    return;
  }
  const std::int64_t chunks = std::max<std::int64_t>(
      threads, std::min<std::int64_t>(4 * threads, total / kMinBytesPerChunk));
  pool.parallel_for(
      chunks,
      [&](std::int64_t c) {
        const std::size_t lo =
            n * static_cast<std::size_t>(c) / static_cast<std::size_t>(chunks) / 64 * 64;
        const std::size_t hi = c + 1 == chunks ? n
                                               : n * static_cast<std::size_t>(c + 1) /
                                                     static_cast<std::size_t>(chunks) / 64 * 64;
        copy(dst + lo, src + lo, hi - lo);
      },
      threads);
}

// The plain loop over tokens, split over threads as apply_rope splits its tokens.
void plain_split(ThreadPool& pool, int threads, const bench::PlainJob& job, std::int64_t tokens,
                 std::int64_t bytes) {
  constexpr std::int64_t kMinBytesPerChunk = 256 * 1024;
  if (threads <= 1 || bytes < 2 * kMinBytesPerChunk || tokens < 2) {
    bench::plain_rope(job, 0, tokens);
    return;
  }
  const std::int64_t chunks = std::min<std::int64_t>(
      tokens, std::max<std::int64_t>(
                  threads, std::min<std::int64_t>(4 * threads, bytes / kMinBytesPerChunk)));
  pool.parallel_for(
      chunks,
      [&](std::int64_t c) {
        const std::int64_t t0 = tokens * c / chunks, t1 = tokens * (c + 1) / chunks;
        if (t1 > t0) bench::plain_rope(job, t0, t1);
      },
      threads);
}

FrequencyPlan make_plan(const std::string& scaling, int head_dim, PairLayout layout) {
  RopeConfig c;
  c.head_dim = head_dim;
  c.rotary_dim = head_dim;
  c.layout = layout;
  c.max_position_embeddings = 131072;
  if (scaling == "yarn") {  // Qwen2.5-style YaRN: factor 4 over a 32K original context
    c.rope_theta = 1000000.0;
    YarnScaling y;
    y.factor = 4.0;
    y.original_max_position_embeddings = 32768;
    c.scaling = y;
  } else {  // Llama 3 base
    c.rope_theta = 500000.0;
  }
  return build_frequency_plan(c);
}

class Runner {
 public:
  Runner(const BenchOptions& o, int reps) : o_(o), reps_(reps) {}

  Measured run(const BenchCase& bc) {
    ThreadPool& pool = pool_for(bc.threads);
    const FrequencyPlan plan = make_plan(bc.scaling, bc.head_dim, bc.layout);
    const int es = dtype_size(bc.dtype);
    const std::int64_t q_elems = bc.tokens * bc.q_heads * bc.head_dim;
    const std::int64_t k_elems = bc.tokens * bc.k_heads * bc.head_dim;
    const std::int64_t elems = q_elems + k_elems;
    const auto nbytes = static_cast<std::size_t>(elems * es);
    const bool fresh_in = in_.ensure(nbytes);
    out_.ensure(nbytes);
    if (fresh_in || fill_key_ != std::make_tuple(static_cast<int>(bc.dtype), elems) || bc.inplace) {
      fill_input(in_.data(), bc.dtype, elems);
      fill_key_ = std::make_tuple(static_cast<int>(bc.dtype), elems);
      if (bc.inplace) fill_key_ = {};  // rotated in place: refill next time
    }

    // Positions, and the same positions per token for the plain loop.
    std::vector<std::int64_t> indptr, offsets, token_pos(static_cast<std::size_t>(bc.tokens));
    Positions pos = Positions::offset(0);
    std::int64_t max_pos = bc.tokens;
    if (bc.decode) {
      for (std::int64_t s = 0; s <= bc.tokens; ++s) indptr.push_back(s);
      for (std::int64_t s = 0; s < bc.tokens; ++s)
        offsets.push_back(s * 32767 / std::max<std::int64_t>(1, bc.tokens - 1));
      pos = Positions::per_sequence(indptr, offsets);
      token_pos = offsets;
      max_pos = 32768;
    } else if (bc.one_token) {
      pos = Positions::offset(kOneTokenPosition);
      token_pos[0] = kOneTokenPosition;
      max_pos = 32768;
    } else {
      for (std::int64_t t = 0; t < bc.tokens; ++t) token_pos[static_cast<std::size_t>(t)] = t;
    }
    std::unique_ptr<CosSinCache> cache;
    if (bc.table) cache = std::make_unique<CosSinCache>(plan, AngleMode::kExact, true, max_pos);

    ApplyOptions opt;
    opt.cache = cache.get();
    opt.pool = &pool;
    opt.max_threads = bc.threads;
    ApplyOptions opt_fly = opt;
    opt_fly.cache = nullptr;
    // q then k, back to back in one buffer ([T, Hq, D] then [T, Hk, D]).
    std::uint8_t* qin = in_.data();
    std::uint8_t* kin = in_.data() + q_elems * es;
    std::uint8_t* qout = bc.inplace ? qin : out_.data();
    std::uint8_t* kout = bc.inplace ? kin : out_.data() + q_elems * es;
    const auto qi = ConstTensorView::contiguous(qin, bc.dtype, bc.tokens, bc.q_heads, bc.head_dim);
    const auto qo = TensorView::contiguous(qout, bc.dtype, bc.tokens, bc.q_heads, bc.head_dim);
    ConstTensorView ki;
    TensorView ko;
    if (bc.k_heads > 0) {
      ki = ConstTensorView::contiguous(kin, bc.dtype, bc.tokens, bc.k_heads, bc.head_dim);
      ko = TensorView::contiguous(kout, bc.dtype, bc.tokens, bc.k_heads, bc.head_dim);
    }
    // A prepared case runs the table and on-the-fly options through their PreparedRope (the
    // reference backend, timed once, through apply_rope).
    std::optional<PreparedRope> prepared, prepared_fly;
    if (bc.prepared) {
      prepared.emplace(plan, qi, qo, ki, ko, opt);
      prepared_fly.emplace(plan, qi, qo, ki, ko, opt_fly);
    }
    auto kernel = [&](const ApplyOptions& oo) {
      if (bc.prepared && (&oo == &opt || &oo == &opt_fly)) {
        (&oo == &opt ? *prepared : *prepared_fly).apply(qi.data, qo.data, ki.data, ko.data, pos);
        return;
      }
      apply_rope(plan, qi, qo, ki, ko, pos, oo);
    };

    // The plain loop's cos/sin tables [max_pos][pairs]: the cache's rows, so that it computes
    // the same values from the same bytes.
    const int pairs = static_cast<int>(plan.inv_freq.size());
    std::vector<float> plain_cos, plain_sin;
    bench::PlainJob pj;
    if (bc.table) {
      plain_cos.resize(static_cast<std::size_t>(max_pos * pairs));
      plain_sin.resize(plain_cos.size());
      for (std::int64_t p = 0; p < max_pos; ++p) {
        std::memcpy(&plain_cos[static_cast<std::size_t>(p * pairs)], cache->cos_row(p),
                    sizeof(float) * static_cast<std::size_t>(pairs));
        std::memcpy(&plain_sin[static_cast<std::size_t>(p * pairs)], cache->sin_row(p),
                    sizeof(float) * static_cast<std::size_t>(pairs));
      }
      pj.dtype = bc.dtype;
      pj.head_dim = bc.head_dim;
      pj.pairs = pairs;
      pj.interleaved = bc.layout == PairLayout::kInterleaved;
      pj.positions = token_pos.data();
      pj.cos = plain_cos.data();
      pj.sin = plain_sin.data();
      pj.tensors[pj.n_tensors++] = {qin, qout, bc.q_heads};
      if (bc.k_heads > 0) pj.tensors[pj.n_tensors++] = {kin, kout, bc.k_heads};
    }
    const auto total_bytes = static_cast<std::int64_t>(2 * nbytes);
    auto plain = [&] { plain_split(pool, bc.threads, pj, bc.tokens, total_bytes); };

    // The copies read the input and write a distinct buffer of the same size (for in-place
    // cases the output buffer is unused by the kernel, so it serves).
    std::uint8_t* copy_dst = out_.data();
    const std::uint8_t* copy_src = in_.data();
    auto copy_with = [&](auto&& f) { copy_split(pool, bc.threads, copy_dst, copy_src, nbytes, f); };
    auto floor_copy = [&](int variant) {
      copy_with([variant](std::uint8_t* d, const std::uint8_t* s, std::size_t n) {
        bench::copy_floor(variant, d, s, n);
      });
    };
    auto check_copy = [&] { copy_with(bench::copy_check); };
    // The in-place pass over the input's bytes, split as the copies are (it leaves them as they
    // were, so the in-place kernels' input is unchanged by it).
    auto in_place_pass = [&] {
      copy_split(
          pool, bc.threads, in_.data(), in_.data(), nbytes,
          [](std::uint8_t* d, const std::uint8_t*, std::size_t n) { bench::pass_in_place(d, n); });
    };
    auto nt_copy = [&] { copy_with(bench::copy_non_temporal); };

    const int batch = bc.one_token ? 512 : bc.decode ? 64 : 1;
    auto timed = [&](auto&& f) {
      return time_ms([&] {
               for (int b = 0; b < batch; ++b) f();
             }) /
             batch;
    };
    for (int w = 0; w < 3; ++w) {  // warm-up: page faults, caches, spinning workers
      floor_copy(0);
      kernel(opt);
      if (bc.table) plain();
      if (bc.inplace) in_place_pass();
    }
    if (bc.table && !bc.inplace) verify_plain(bc, kernel, opt, plain, nbytes);

    // The floor: the fastest of the regular-store copies on these bytes (medians of a few
    // alternating rounds).
    const int variants = bench::copy_floor_variants();
    std::vector<std::vector<double>> vt(static_cast<std::size_t>(variants));
    for (int r = 0; r < 5; ++r)
      for (int v = 0; v < variants; ++v)
        vt[static_cast<std::size_t>(v)].push_back(timed([&] { floor_copy(v); }));
    int best = 0;
    for (int v = 1; v < variants; ++v)
      if (median(vt[static_cast<std::size_t>(v)]) < median(vt[static_cast<std::size_t>(best)]))
        best = v;

    // The call in the kernel's place: ropekit, or the plain loop in an A/A run (--aa).
    const bool aa = o_.aa && bc.table;
    auto kern = [&] {
      if (aa) {
        plain();
      } else {
        kernel(opt);
      }
    };
    // What each sample times after the floor copy: the kernel; for table cases the plain loop
    // and the on-the-fly kernel; for in-place cases the in-place pass.
    enum Slot { kKernel, kPlain, kOnTheFly, kInPlacePass };
    std::vector<Slot> slots = {kKernel};
    if (bc.table) slots.insert(slots.end(), {kPlain, kOnTheFly});
    if (bc.inplace) slots.push_back(kInPlacePass);
    const int n_slots = static_cast<int>(slots.size());
    std::vector<double> kt, ct, chk, nt, pt, ft, ipt;
    for (int r = 0; r < reps_; ++r) {
      ct.push_back(timed([&] { floor_copy(best); }));
      // The timed calls take turns in each place. Timed in a fixed order, the call right after
      // the floor copy was the slower one: the plain loop timed against itself (--aa) read
      // x_plain above 1.00 in 62 of 96 DRAM-sized cases (docs/benchmarks.md, "The order of the
      // timed calls").
      for (int slot = 0; slot < n_slots; ++slot) {
        switch (slots[static_cast<std::size_t>((r + slot) % n_slots)]) {
          case kKernel:
            kt.push_back(timed(kern));
            break;
          case kPlain:
            pt.push_back(timed(plain));
            break;
          case kOnTheFly:
            ft.push_back(timed([&] { kernel(opt_fly); }));
            break;
          case kInPlacePass:
            ipt.push_back(timed(in_place_pass));
            break;
        }
      }
      chk.push_back(timed(check_copy));
      nt.push_back(timed(nt_copy));
    }
    // Ratios are taken per sample, then the median: a burst of load from other processes then
    // slows both sides of the samples it hits instead of skewing one median.
    auto ratios = [](const std::vector<double>& a, const std::vector<double>& b) {
      std::vector<double> r;
      for (std::size_t i = 0; i < a.size(); ++i) r.push_back(a[i] / b[i]);
      return r;
    };
    auto ratio = [&](const std::vector<double>& a, const std::vector<double>& b) {
      return median(ratios(a, b));
    };
    Measured m;
    if (aa) m.timed = "plain loop (A/A)";
    m.median_ms = median(kt);
    m.floor_ms = median(ct);
    m.x_floor = ratio(kt, ct);
    m.bytes = 2.0 * static_cast<double>(nbytes);
    m.floor_copy = bench::copy_floor_name(best);
    m.floor_vs_check = ratio(ct, chk);
    m.non_temporal_ms = median(nt);
    if (bc.table) {
      m.plain_ms = median(pt);
      m.x_plain = ratio(kt, pt);
      m.x_plain_95 = bench::median_interval(ratios(kt, pt));
      m.on_the_fly_ms = median(ft);
      m.x_on_the_fly = ratio(kt, ft);
      std::vector<std::int64_t> rows = token_pos;
      std::sort(rows.begin(), rows.end());
      rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
      m.table_bytes = static_cast<double>(rows.size()) * 2.0 * pairs * sizeof(float);
    }
    if (bc.inplace) {
      m.in_place_ms = median(ipt);
      m.x_in_place = ratio(kt, ipt);
      if (bc.table) m.plain_x_in_place = ratio(pt, ipt);
    }

    if (!o_.no_reference) {
      const auto key =
          std::make_tuple(bc.name, static_cast<int>(bc.dtype), static_cast<int>(bc.layout),
                          bc.scaling, bc.table, bc.threads);
      if (const auto it = ref_cache_.find(key); it != ref_cache_.end()) {
        m.reference_ms = it->second;  // the in-place twin reuses the out-of-place measurement
      } else {
        ApplyOptions ro = opt;
        ro.backend = Backend::kReference;
        std::vector<double> rt;
        const int calls = bc.decode || bc.one_token ? 3 : 1;
        for (int r = 0; r < calls; ++r) rt.push_back(time_ms([&] { kernel(ro); }));
        m.reference_ms = median(rt);
        ref_cache_[key] = *m.reference_ms;
      }
    }
    return m;
  }

 private:
  // The plain loop must compute what apply_rope computes (else its time means nothing): both
  // write the output once, and the first MiB of each is compared within a few ulps of the dtype.
  template <class Kernel, class Plain>
  void verify_plain(const BenchCase& bc, Kernel&& kernel, const ApplyOptions& opt, Plain&& plain,
                    std::size_t nbytes) {
    const std::size_t n = std::min<std::size_t>(nbytes, std::size_t{1} << 20);
    kernel(opt);
    std::vector<std::uint8_t> ours(out_.data(), out_.data() + n);
    plain();
    const std::size_t es = static_cast<std::size_t>(dtype_size(bc.dtype));
    const double tol = bc.dtype == DType::kF32 ? 1e-5 : 2.0 / 128.0;
    for (std::size_t i = 0; i + es <= n; i += es) {
      auto value = [&](const std::uint8_t* p) -> double {
        switch (bc.dtype) {
          case DType::kF32: {
            float f;
            std::memcpy(&f, p, 4);
            return f;
          }
          case DType::kF16: {
            F16 h;
            std::memcpy(&h.bits, p, 2);
            return f16_to_f32(h);
          }
          case DType::kBF16: {
            BF16 b;
            std::memcpy(&b.bits, p, 2);
            return bf16_to_f32(b);
          }
        }
        return 0;
      };
      const double a = value(ours.data() + i), b = value(out_.data() + i);
      if (!(std::abs(a - b) <= tol * std::max(1.0, std::abs(a))))
        throw IoError(fmt::format(
            "[ropekit.bench] the plain loop disagrees with apply_rope on case '{}' at byte {}: "
            "{} vs {}",
            bc.label(), i, b, a));
    }
  }

  ThreadPool& pool_for(int threads) {
    auto& p = pools_[threads];
    if (!p) p = std::make_unique<ThreadPool>(threads);
    return *p;
  }

  const BenchOptions& o_;
  int reps_;
  // Input and output start at different offsets within a 4 KiB page (37 cache lines apart):
  // with equal offsets, loads of the input alias earlier stores to the output in the core's
  // 4 KiB store-to-load check, and every kernel and copy pays for a false dependency that a
  // real caller's separately allocated tensors rarely have.
  Buffer in_{0}, out_{37 * 64};
  std::tuple<int, std::int64_t> fill_key_{-1, 0};
  std::map<int, std::unique_ptr<ThreadPool>> pools_;
  std::map<std::tuple<std::string, int, int, std::string, bool, int>, double> ref_cache_;
};

struct TableBuild {
  double cache_ms = 0, fill_ms = 0, libm_ms = 0;
};

// CosSinCache for 32768 positions × 64 frequencies (exact angles) vs libm sincosf over the float
// angles float(p·inv_freq): medians of a few builds.
TableBuild bench_table_build(int reps) {
  const FrequencyPlan plan = make_plan("plain", 128, PairLayout::kHalf);
  const std::int64_t n = 32768;
  const int pairs = static_cast<int>(plan.inv_freq.size());
  std::vector<float> c(static_cast<std::size_t>(n * pairs)), s(c.size());
  volatile float sink = 0;
  std::vector<double> cache_t, fill_t, libm_t;
  for (int r = 0; r < reps + 1; ++r) {
    const double tc = time_ms([&] {
      CosSinCache cache(plan, AngleMode::kExact, true, n);
      sink = sink + cache.cos_row(n - 1)[pairs - 1];
    });
    // The vectorised fill itself (what CosSinCache uses when built with it), into one table.
    const double tf = time_ms([&] {
      detail::simd_fill_cos_sin(plan.inv_freq.data(), pairs, AngleMode::kExact,
                                plan.attention_factor, 0, n, c.data(), s.data(), pairs);
      sink = sink + c.back() + s.back();
    });
    const double tl = time_ms([&] {
      for (std::int64_t p = 0; p < n; ++p) {
        for (int i = 0; i < pairs; ++i) {
          const float th = static_cast<float>(p) * plan.inv_freq[static_cast<std::size_t>(i)];
          float sv = 0, cv = 0;
          ::sincosf(th, &sv, &cv);
          c[static_cast<std::size_t>(p * pairs + i)] = cv;
          s[static_cast<std::size_t>(p * pairs + i)] = sv;
        }
      }
      sink = sink + c.back() + s.back();
    });
    if (r == 0) continue;  // warm-up
    cache_t.push_back(tc);
    fill_t.push_back(tf);
    libm_t.push_back(tl);
  }
  return {median(cache_t), median(fill_t), median(libm_t)};
}

std::vector<BenchCase> make_cases(const BenchOptions& o) {
  std::vector<int> thread_list;
  if (o.threads > 0) {
    thread_list = {o.threads};
  } else {
    const int hc = std::max(1u, std::thread::hardware_concurrency());
    thread_list = {1};
    if (hc > 1) thread_list.push_back(hc);
  }
  std::vector<BenchCase> cases;
  const std::vector<DType> dtypes =
      o.quick ? std::vector<DType>{DType::kF32, DType::kBF16}
              : std::vector<DType>{DType::kF32, DType::kBF16, DType::kF16};
  const std::vector<PairLayout> layouts =
      o.quick ? std::vector<PairLayout>{PairLayout::kHalf}
              : std::vector<PairLayout>{PairLayout::kHalf, PairLayout::kInterleaved};
  const std::vector<std::string> scalings =
      o.quick ? std::vector<std::string>{"plain"} : std::vector<std::string>{"plain", "yarn"};
  const std::vector<bool> places =
      o.quick ? std::vector<bool>{false} : std::vector<bool>{false, true};
  for (const auto& [name, tokens, heads] :
       {std::tuple{"prefill", 4096, 32}, std::tuple{"long", 32768, 8}}) {
    for (const DType dt : dtypes)
      for (const PairLayout l : layouts)
        for (const std::string& sc : scalings)
          for (const bool table : {true, false})
            for (const bool inplace : places)
              for (const int th : thread_list) {
                BenchCase c;
                c.name = name;
                c.tokens = tokens;
                c.q_heads = heads;
                c.dtype = dt;
                c.layout = l;
                c.scaling = sc;
                c.table = table;
                c.inplace = inplace;
                c.threads = th;
                cases.push_back(c);
              }
  }
  // Small calls: 64 single-token sequences (decode), then one sequence of one token, through
  // apply_rope and through a PreparedRope.
  for (const int small : {0, 1, 2})
    for (const DType dt : dtypes)
      for (const PairLayout l : layouts)
        for (const bool table : {true, false})
          for (const int th : thread_list) {
            const bool one = small > 0;
            BenchCase c;
            c.name = small == 2 ? "one_token_prepared" : one ? "one_token" : "decode";
            c.prepared = small == 2;
            c.tokens = one ? 1 : 64;
            c.q_heads = 32;
            c.dtype = dt;
            c.layout = l;
            c.table = table;
            c.threads = th;
            c.decode = !one;
            c.one_token = one;
            cases.push_back(c);
          }
  for (const DType dt : {DType::kF32, DType::kBF16})
    for (const bool table : {true, false})
      for (const int th : thread_list) {
        if (o.quick && (dt != DType::kF32 || table)) continue;
        BenchCase c;
        c.name = "prefill_qk";
        c.tokens = 4096;
        c.q_heads = 32;
        c.k_heads = 8;
        c.dtype = dt;
        c.table = table;
        c.threads = th;
        cases.push_back(c);
      }
  if (!o.filter.empty()) {
    std::vector<BenchCase> kept;
    for (const BenchCase& c : cases)
      if (c.label().find(o.filter) != std::string::npos) kept.push_back(c);
    cases.swap(kept);
  }
  return cases;
}

std::string fixed(double v, int digits) { return fmt::format("{:.{}f}", v, digits); }

void run_bench(const BenchOptions& o) {
  const int reps = o.rounds > 0 ? o.rounds : o.quick ? 7 : 15;
  const std::vector<BenchCase> cases = make_cases(o);
  const std::string cpu = cpu_description();
  Runner runner(o, reps);
  nlohmann::json list = nlohmann::json::array();
  TextTable table;
  for (const char* h :
       {"case", "dtype", "layout", "scaling", "cos/sin", "place", "thr", "ms", "GB/s", "floor ms",
        "x floor", "x plain", "plain 95%", "tbl/fly", "x inpl", "floor/chk", "ref ms", "speed-up"})
    table.add_column(h, std::string(h) == "case" || std::string(h) == "dtype" ||
                                std::string(h) == "layout" || std::string(h) == "scaling" ||
                                std::string(h) == "cos/sin" || std::string(h) == "place"
                            ? TextTable::Align::kLeft
                            : TextTable::Align::kRight);
  Progress progress("bench", static_cast<std::int64_t>(cases.size()) + 1, "cases");
  std::int64_t done = 0;
  int plain_cases = 0, plain_over = 0, plain_over_beyond_noise = 0;
  double plain_coverage = 1.0;
  for (const BenchCase& bc : cases) {
    progress.update(done++, bc.label());
    const Measured m = runner.run(bc);
    const double x_floor = m.x_floor;
    nlohmann::json j = {{"case", bc.name},
                        {"tokens", bc.tokens},
                        {"heads", bc.q_heads + bc.k_heads},
                        {"head_dim", bc.head_dim},
                        {"dtype", std::string(dtype_name(bc.dtype))},
                        {"layout", bc.layout_name()},
                        {"scaling", bc.scaling},
                        {"angles", "exact"},
                        {"cos_sin", bc.table ? "table" : "on_the_fly"},
                        {"inplace", bc.inplace},
                        {"threads", bc.threads},
                        {"median_ms", m.median_ms},
                        {"floor_ms", m.floor_ms},
                        {"x_floor", x_floor},
                        {"reference_ms", m.reference_ms ? nlohmann::json(*m.reference_ms)
                                                        : nlohmann::json(nullptr)},
                        {"timed", m.timed},
                        {"cpu", cpu}};
    j["floor_copy"] = m.floor_copy;
    j["floor_vs_check"] = m.floor_vs_check;
    j["non_temporal_ms"] = m.non_temporal_ms;
    auto opt_json = [](const std::optional<double>& v) {
      return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
    };
    j["plain_ms"] = opt_json(m.plain_ms);
    j["x_plain"] = opt_json(m.x_plain);
    j["x_plain_95"] = m.x_plain_95 ? nlohmann::json::array({m.x_plain_95->low, m.x_plain_95->high})
                                   : nlohmann::json(nullptr);
    j["x_plain_95_coverage"] =
        m.x_plain_95 ? nlohmann::json(m.x_plain_95->coverage) : nlohmann::json(nullptr);
    if (m.x_plain) {
      ++plain_cases;
      plain_over += *m.x_plain > 1.0;
      plain_over_beyond_noise += m.x_plain_95->low > 1.0;
      plain_coverage = std::min(plain_coverage, m.x_plain_95->coverage);
    }
    j["on_the_fly_ms"] = opt_json(m.on_the_fly_ms);
    j["x_on_the_fly"] = opt_json(m.x_on_the_fly);
    j["table_bytes"] = opt_json(m.table_bytes);
    j["in_place_pass_ms"] = opt_json(m.in_place_ms);
    j["x_in_place"] = opt_json(m.x_in_place);
    j["plain_x_in_place"] = opt_json(m.plain_x_in_place);
    // What the table may cost: on the fly plus reading its own bytes, and 5%.
    j["x_on_the_fly_allowed"] =
        m.table_bytes ? nlohmann::json(1.05 * (1.0 + *m.table_bytes / m.bytes)) : nullptr;
    if (bc.k_heads > 0) {
      j["q_heads"] = bc.q_heads;
      j["k_heads"] = bc.k_heads;
    }
    list.push_back(j);
    const std::string heads =
        bc.k_heads > 0 ? fmt::format("{}+{}", bc.q_heads, bc.k_heads) : std::to_string(bc.q_heads);
    const bool small = bc.decode || bc.one_token;
    std::string tbl_fly = "-";
    if (m.x_on_the_fly)
      tbl_fly = fmt::format("{:.2f}<={:.2f}", *m.x_on_the_fly,
                            1.05 * (1.0 + m.table_bytes.value_or(0) / m.bytes));
    table.add_row(
        {fmt::format("{} {}x{}x{}", bc.name, bc.tokens, heads, bc.head_dim),
         std::string(dtype_name(bc.dtype)), bc.layout_name(), bc.scaling,
         bc.table ? "table" : "on_the_fly", bc.inplace ? "inplace" : "out",
         std::to_string(bc.threads), fixed(m.median_ms, small ? 5 : 3),
         fixed(m.bytes / (m.median_ms * 1e6), 1), fixed(m.floor_ms, small ? 5 : 3),
         fixed(x_floor, 2), m.x_plain ? fixed(*m.x_plain, 2) : "-",
         m.x_plain_95 ? fixed(m.x_plain_95->low, 2) + "-" + fixed(m.x_plain_95->high, 2) : "-",
         tbl_fly, m.x_in_place ? fixed(*m.x_in_place, 2) : "-", fixed(m.floor_vs_check, 2),
         m.reference_ms ? fixed(*m.reference_ms, 2) : "-",
         m.reference_ms ? fixed(*m.reference_ms / m.median_ms, 1) + "x" : "-"});
  }
  std::optional<TableBuild> tb;
  if (o.filter.empty() || std::string("cos_sin_table_build").find(o.filter) != std::string::npos) {
    progress.update(done, "cos/sin table build");
    tb = bench_table_build(o.quick ? 3 : 5);
    list.push_back({{"case", "cos_sin_table_build"},
                    {"tokens", 32768},
                    {"heads", 0},
                    {"head_dim", 128},
                    {"dtype", "f32"},
                    {"layout", "half"},
                    {"scaling", "plain"},
                    {"angles", "exact"},
                    {"cos_sin", "table"},
                    {"inplace", false},
                    {"threads", 1},
                    {"median_ms", tb->cache_ms},
                    {"floor_ms", nullptr},
                    {"x_floor", nullptr},
                    {"reference_ms", tb->libm_ms},
                    {"timed", "ropekit"},
                    {"cpu", cpu},
                    {"baseline", "loop of libm sincosf over float angles"},
                    {"speedup_vs_libm", tb->libm_ms / tb->cache_ms},
                    {"simd_fill_ms", tb->fill_ms},
                    {"simd_fill_speedup_vs_libm", tb->libm_ms / tb->fill_ms}});
  }
  progress.finish();
  if (o.json) {
    fmt::print("{}\n", list.dump(2));
    return;
  }
  fmt::print(
      "ropekit bench — SIMD target {}, {} hardware threads; floor = fastest regular-store copy of "
      "the same bytes,\n"
      "same threads, alternating with the kernel, the plain loop and the other copies; medians of "
      "{} "
      "calls after warm-up\nCPU: {}\n\n",
      active_target(), std::thread::hardware_concurrency(), reps, cpu);
  if (o.aa)
    fmt::print(
        "A/A run (--aa): table cases time the plain loop in ropekit's place; their x plain is the "
        "bench's own bias and noise\n\n");
  fmt::print("{}", table.render());
  if (plain_cases > 0)
    fmt::print(
        "\nx plain above 1.00 in {} of {} table cases, {} of them beyond this run's noise (plain "
        "95% above 1.00).\nplain 95%: the interval, from the order statistics of the {} per-sample "
        "ratios, that holds the median\nratio with probability {:.1f}%\n",
        plain_over, plain_cases, plain_over_beyond_noise, reps, 100.0 * plain_coverage);
  if (tb) {
    fmt::print(
        "\ncos/sin table, 32768 positions x 64 frequencies, exact angles, 1 thread:\n"
        "  loop of libm sincosf over float angles  {:8.2f} ms\n"
        "  CosSinCache construction                {:8.2f} ms  ({:.1f}x faster than libm)\n"
        "  vectorised fill (simd_fill_cos_sin)     {:8.2f} ms  ({:.1f}x faster than libm)\n",
        tb->libm_ms, tb->cache_ms, tb->libm_ms / tb->cache_ms, tb->fill_ms,
        tb->libm_ms / tb->fill_ms);
  }
}

}  // namespace

void register_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand(
      "bench", "Time apply_rope against this machine's copy bandwidth (the floor)");
  sub->add_flag("--json", o->json,
                "Print a JSON list of cases {case, tokens, heads, head_dim, dtype, layout, "
                "scaling, angles, cos_sin, inplace, threads, median_ms, floor_ms, x_floor, "
                "reference_ms, floor_copy, floor_vs_check, non_temporal_ms, plain_ms, x_plain, "
                "x_plain_95, x_plain_95_coverage, on_the_fly_ms, x_on_the_fly, table_bytes, "
                "x_on_the_fly_allowed, in_place_pass_ms, x_in_place, plain_x_in_place, timed, "
                "cpu}");
  sub->add_option("--threads", o->threads,
                  "Run every case on N threads only (default: 1 and all hardware threads)")
      ->check(CLI::Range(1, 4096));
  sub->add_flag("--quick", o->quick, "A small subset with fewer repetitions (about 15 s)");
  sub->add_option("--rounds", o->rounds,
                  "Samples per case (default 15, 7 with --quick): more narrow the intervals, and "
                  "the run takes longer in proportion")
      ->check(CLI::Range(3, 10000));
  sub->add_option("--filter", o->filter,
                  "Only cases whose label contains this text (e.g. 'decode', 'bf16', 't2')");
  sub->add_flag("--no-reference", o->no_reference, "Skip timing the scalar reference (faster)");
  sub->add_flag(
      "--aa", o->aa,
      "A/A check: in table cases, time the plain loop in ropekit's place, so that x plain "
      "reads the bench's own bias and noise (two equal loops; it should centre on 1.00)");
  sub->footer(
      "Cases: prefill 4096x32x128 and long 32768x8x128 (f32/bf16/f16, half and interleaved pairs, "
      "plain and YaRN,\n"
      "cos/sin from a table or on the fly, out of place and in place), decode 64 sequences x 1 "
      "token x 32 heads\n"
      "(cache-hot, positions spread to 32767), one sequence x 1 token x 32 heads (apply_rope, and "
      "a PreparedRope:\n"
      "one_token_prepared), q and k fused (32 + 8 heads),\n"
      "and the exact cos/sin table build.\n"
      "x floor = kernel time / the fastest regular-store copy of the same bytes (floor/chk: that "
      "copy / an independent one);\n"
      "x plain = kernel time / a plain C++ loop handed the same cos/sin table; tbl/fly = table "
      "time / on-the-fly time,\n"
      "with the most the table may cost: 1.05 x (1 + its bytes / bytes moved);\n"
      "x inpl (in-place cases) = kernel time / an in-place pass that loads and stores back the "
      "same bytes, the least\n"
      "traffic an in-place call makes. See docs/benchmarks.md.\n\n"
      "Examples:\n"
      "  ropekit bench --quick\n"
      "  ropekit bench --json --threads 2 > bench.json\n"
      "  ROPEKIT_TARGET=AVX2 ropekit bench --filter decode");
  sub->callback([o] { run_bench(*o); });
}

}  // namespace ropekit::cli

ROPEKIT_CLI_COMMAND(90, register_bench)
