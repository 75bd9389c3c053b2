// The cos/sin table: blocks of kBlockRows positions that never move once built, so row
// pointers handed out stay valid while the table grows. Growth takes a mutex; readers go
// through a two-level directory of block pointers (16 KiB top level for 2^31 positions,
// second levels allocated on demand) published with release/acquire atomics.
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "kernel/angles.h"
#include "ropekit/cos_sin_cache.h"
#include "ropekit/error.h"
#include "simd/simd_api.h"

namespace ropekit {

namespace {
constexpr std::int64_t kBlockRows = 1024;
constexpr std::int64_t kMaxRows = kMaxAbsPosition + 1;  // positions 0 .. 2^31 − 1
constexpr std::int64_t kBlocksPerDir = 1024;
constexpr std::int64_t kMaxDirs =
    (kMaxRows + kBlockRows * kBlocksPerDir - 1) / (kBlockRows * kBlocksPerDir);
struct Directory {
  std::atomic<float*> e[kBlocksPerDir];
};
std::uint64_t next_serial() {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}
}  // namespace

struct alignas(64) CosSinCache::Impl {
  // What a call reads (serial, size, a row's address) first, in one cache line: a one-token
  // call touches few lines, and each one it adds to a cache-resident call costs several times a
  // line of its data (docs/benchmarks.md, "Cache lines of a one-token call").
  // CosSinCache::serial(): from a process-wide counter, so never that of another cache.
  const std::uint64_t serial = next_serial();
  std::atomic<std::int64_t> size{0};
  int pairs = 0;
  // wrap(): a caller's tables (row p at external + p·ext_stride and ext_sin + p·ext_stride).
  bool is_external = false;
  const float* external = nullptr;
  const float* ext_sin = nullptr;
  std::int64_t ext_stride = 0;

  std::vector<float> inv_freq;
  double max_abs_inv_freq = 0.0;
  double amplitude = 1.0;
  double attention_factor = 1.0;
  AngleMode angles = AngleMode::kExact;
  bool fold = true;
  struct FreeDeleter {
    void operator()(float* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<float, FreeDeleter>> owned;  // one region per reserve() call
  std::vector<std::unique_ptr<Directory>> owned_dirs;

  float* block(std::uint64_t b) const {  // unsigned: shifts and masks, no sign fix-ups
    const Directory* d =
        dirs[b / static_cast<std::uint64_t>(kBlocksPerDir)].load(std::memory_order_acquire);
    return d->e[b % static_cast<std::uint64_t>(kBlocksPerDir)].load(std::memory_order_acquire);
  }
  // Row p of an owned table (0 <= p < size): cos at the returned address, sin `pairs` after it.
  const float* owned_row(std::int64_t p) const {
    const auto u = static_cast<std::uint64_t>(p);
    constexpr auto kRows = static_cast<std::uint64_t>(kBlockRows);
    return block(u / kRows) + (u % kRows) * static_cast<std::uint64_t>(2 * pairs);
  }
  std::mutex grow;
  std::atomic<Directory*> dirs[kMaxDirs] = {};  // null until a block in its range is built

  std::size_t block_floats() const {
    return static_cast<std::size_t>(2 * pairs) * static_cast<std::size_t>(kBlockRows);
  }

  // Memory for `blocks` consecutive blocks in one region. Large regions are 2 MiB aligned and
  // marked for transparent huge pages: a 32768-position table of 64 pairs is 16 MiB, and its
  // 4096 first-touch page faults (~1.7 µs each in a VM) cost several times the fill itself.
  float* allocate_region(std::int64_t blocks) {
    constexpr std::size_t kHuge = std::size_t{2} << 20;
    const std::size_t bytes = block_floats() * sizeof(float) * static_cast<std::size_t>(blocks);
    const std::size_t align = bytes >= kHuge ? kHuge : 64;
    const std::size_t alloc_size = (bytes + align - 1) / align * align;
    void* p = std::aligned_alloc(align, alloc_size);
    if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    if (align == kHuge)
      (void)::madvise(p, alloc_size, MADV_HUGEPAGE);  // advice only: failure is fine
#endif
    owned.emplace_back(static_cast<float*>(p));
    return static_cast<float*>(p);
  }

  // Fills block b (positions b·kBlockRows ...) into `data` (block_floats() floats, not zeroed).
  void build_block(std::int64_t b, float* data_ptr) {
    const auto row = static_cast<std::size_t>(2 * pairs);
    float* const data = data_ptr;
    if (pairs <= detail::kMaxPairs) {  // vectorised fill (angles reduced in double)
      detail::simd_fill_cos_sin(inv_freq.data(), pairs, angles, amplitude, b * kBlockRows,
                                kBlockRows, data, data + pairs, 2 * pairs);
    } else {
      for (std::int64_t r = 0; r < kBlockRows; ++r) {
        const std::int64_t p = b * kBlockRows + r;
        float* c = data + static_cast<std::size_t>(r) * row;
        float* s = c + pairs;
        for (int i = 0; i < pairs; ++i) {
          double cd = 0, sd = 0;
          if (angles == AngleMode::kHf) {
            const double th =
                detail::hf_angle(p, inv_freq[static_cast<std::size_t>(i)], false, 1.0f);
            cd = std::cos(th);
            sd = std::sin(th);
          } else {
            detail::exact_cos_sin(p, inv_freq[static_cast<std::size_t>(i)], cd, sd);
          }
          c[i] = static_cast<float>(cd * amplitude);
          s[i] = static_cast<float>(sd * amplitude);
        }
      }
    }
    Directory* d = dirs[b / kBlocksPerDir].load(std::memory_order_relaxed);
    if (!d) {
      auto fresh = std::make_unique<Directory>();
      for (auto& e : fresh->e) e.store(nullptr, std::memory_order_relaxed);
      d = fresh.get();
      owned_dirs.push_back(std::move(fresh));
      dirs[b / kBlocksPerDir].store(d, std::memory_order_release);
    }
    d->e[b % kBlocksPerDir].store(data, std::memory_order_release);
  }
};

CosSinCache::CosSinCache(const FrequencyPlan& plan, AngleMode angles, bool fold,
                         std::int64_t initial_positions)
    : impl_(std::make_unique<Impl>()) {
  if (angles == AngleMode::kGgml)  // ggml's angles are built per call by apply_rope
    throw ArgumentError("[ropekit.cache] angles: expected kExact or kHf, got kGgml");
  if (plan.inv_freq.empty())
    throw ArgumentError("[ropekit.cache] plan.inv_freq: expected at least one frequency, got none");
  for (const float f : plan.inv_freq) {
    if (!std::isfinite(f))
      throw ArgumentError("[ropekit.cache] plan.inv_freq: expected finite values, got " +
                          std::to_string(f));
    impl_->max_abs_inv_freq = std::max(impl_->max_abs_inv_freq, std::fabs(static_cast<double>(f)));
  }
  impl_->inv_freq = plan.inv_freq;
  impl_->attention_factor = plan.attention_factor;
  impl_->amplitude = fold ? plan.attention_factor : 1.0;
  impl_->angles = angles;
  impl_->fold = fold;
  impl_->pairs = static_cast<int>(plan.inv_freq.size());
  if (initial_positions > 0) reserve(initial_positions);
}

CosSinCache::~CosSinCache() = default;
CosSinCache::CosSinCache() : impl_(std::make_unique<Impl>()) {}

std::unique_ptr<CosSinCache> CosSinCache::wrap(const float* cos, const float* sin,
                                               std::int64_t rows, int pairs,
                                               std::int64_t row_stride) {
  auto bad = [](const std::string& what, const std::string& expected, const std::string& got) {
    throw ArgumentError("[ropekit.cache] " + what + ": expected " + expected + ", got " + got);
  };
  if (pairs <= 0) bad("pairs", "a count > 0", std::to_string(pairs));
  if (rows < 0 || rows > kMaxRows) bad("rows", "0 <= rows <= 2^31", std::to_string(rows));
  if (rows > 0 && (cos == nullptr || sin == nullptr))
    bad("cos/sin", "non-null pointers", "nullptr");
  if (reinterpret_cast<std::uintptr_t>(cos) % alignof(float) != 0 ||
      reinterpret_cast<std::uintptr_t>(sin) % alignof(float) != 0)
    bad("cos/sin", "4-byte aligned pointers", "a misaligned address");
  if (rows > 1 && row_stride < pairs)
    bad("row_stride", ">= pairs = " + std::to_string(pairs), std::to_string(row_stride));
  std::unique_ptr<CosSinCache> c(new CosSinCache());
  c->impl_->is_external = true;
  c->impl_->external = cos;
  c->impl_->ext_sin = sin;
  c->impl_->ext_stride = row_stride;
  c->impl_->pairs = pairs;
  c->impl_->size.store(rows, std::memory_order_release);
  return c;
}

bool CosSinCache::is_external() const noexcept { return impl_->is_external; }

void CosSinCache::reserve(std::int64_t n) {
  if (is_external()) {
    if (n > size())
      throw ArgumentError("[ropekit.cache] reserve: expected n <= " + std::to_string(size()) +
                          " (a wrapped table does not grow), got " + std::to_string(n));
    return;
  }
  if (n < 0 || n > kMaxRows)
    throw ArgumentError("[ropekit.cache] reserve: expected 0 <= n <= 2^31, got " +
                        std::to_string(n));
  if (n <= impl_->size.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(impl_->grow);
  const std::int64_t have = impl_->size.load(std::memory_order_relaxed);
  if (n <= have) return;
  const std::int64_t first = have / kBlockRows;  // `have` is always a block multiple
  const std::int64_t last = (n + kBlockRows - 1) / kBlockRows;
  float* region = impl_->allocate_region(last - first);
  for (std::int64_t b = first; b < last; ++b)
    impl_->build_block(b, region + static_cast<std::size_t>(b - first) * impl_->block_floats());
  impl_->size.store(std::min(last * kBlockRows, kMaxRows), std::memory_order_release);
}

std::int64_t CosSinCache::size() const noexcept {
  return impl_->size.load(std::memory_order_acquire);
}
int CosSinCache::pairs() const noexcept { return impl_->pairs; }
std::uint64_t CosSinCache::serial() const noexcept { return impl_->serial; }
AngleMode CosSinCache::angles() const noexcept { return impl_->angles; }
bool CosSinCache::folds_attention_factor() const noexcept { return impl_->fold; }
const std::vector<float>& CosSinCache::inv_freq() const noexcept { return impl_->inv_freq; }
double CosSinCache::max_abs_inv_freq() const noexcept { return impl_->max_abs_inv_freq; }
double CosSinCache::attention_factor() const noexcept { return impl_->attention_factor; }

const float* CosSinCache::cos_row(std::int64_t p) const noexcept {
  if (impl_->is_external) return impl_->external + p * impl_->ext_stride;
  return impl_->owned_row(p);
}
const float* CosSinCache::sin_row(std::int64_t p) const noexcept {
  if (impl_->is_external) return impl_->ext_sin + p * impl_->ext_stride;
  return impl_->owned_row(p) + impl_->pairs;
}

bool CosSinCache::matches(const FrequencyPlan& plan, AngleMode angles, bool fold) const noexcept {
  if (is_external()) return fold && plan.inv_freq.size() == static_cast<std::size_t>(impl_->pairs);
  if (angles != impl_->angles || fold != impl_->fold ||
      (fold && plan.attention_factor != impl_->attention_factor) ||
      plan.inv_freq.size() != impl_->inv_freq.size())
    return false;
  // Checked on every apply_rope call: equal bits first (the usual case, one memcmp), the float
  // comparison (which also equates ±0) only when they differ.
  return std::memcmp(plan.inv_freq.data(), impl_->inv_freq.data(),
                     plan.inv_freq.size() * sizeof(float)) == 0 ||
         plan.inv_freq == impl_->inv_freq;
}

}  // namespace ropekit
