// A small persistent pool for apply_rope (ropekit/thread_pool.h).
//
// Design, for memory-bound kernels that run from microseconds (decode) to tens of milliseconds:
//   * Workers are created once and wait on an epoch counter (std::atomic wait/notify: a futex on
//     Linux). A parallel_for publishes the job, bumps the epoch and runs chunks itself; chunks
//     are dealt in contiguous ranges (one per thread, stable from call to call for cache
//     locality) and claimed with one fetch_add each; finished threads steal from the others.
//   * After a job, workers spin briefly (~50 µs, with pause) before sleeping, so back-to-back
//     calls (a decode loop, layer after layer) do not pay a futex wake-up each time. The calling
//     thread also spins briefly before sleeping while waiting for the last helper.
//   * One chunk, one thread allowed, or a call from inside a running job (nested, or another
//     thread while the pool is busy): the chunks run on the calling thread, no fork-join.
//   * The first exception thrown by fn is rethrown by parallel_for; remaining chunks are skipped.
#include "ropekit/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ropekit/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ROPEKIT_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define ROPEKIT_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define ROPEKIT_CPU_RELAX() std::this_thread::yield()
#endif

namespace ropekit {
namespace {

constexpr auto kSpin = std::chrono::microseconds(50);
constexpr int kMaxThreads = 4096;  // as ROPEKIT_THREADS

thread_local bool t_in_pool_job = false;  // this thread is running chunks of some pool

// Spins until pred() or the spin budget is spent; true when pred() held.
template <class Pred>
bool spin_until(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      ROPEKIT_CPU_RELAX();
    }
    if (std::chrono::steady_clock::now() >= deadline) return pred();
  }
}

}  // namespace

struct ThreadPool::Impl {
  int size = 1;
  std::vector<std::thread> workers;

  std::atomic<bool> busy{false};  // a parallel_for is running on this pool
  std::atomic<std::uint64_t> epoch{0};
  std::atomic<bool> stop{false};

  // The current job (written before the epoch bump, read after it).
  const std::function<void(std::int64_t)>* fn = nullptr;
  std::int64_t chunks = 0;
  std::atomic<int> slots{0};  // helper places left in the current job (claimed by fetch_sub)
  // Chunks are dealt in contiguous ranges, one per participant (0 = the caller, 1.. = helpers
  // in the order they take a place), so the same thread keeps touching the same part of the
  // data from call to call (cache-hot decode loops stay in each core's L2). A participant that
  // finishes its range steals from the others' (one fetch_add per chunk on the owner's
  // counter), so a helper that is late or preempted costs nothing but its own range.
  struct alignas(64) Range {
    std::atomic<std::int64_t> next{0};
    std::int64_t end = 0;
  };
  std::unique_ptr<Range[]> ranges;
  int participants = 1;
  std::atomic<int> pending{0};  // helpers not yet done
  std::atomic<bool> failed{false};
  std::mutex error_mu;
  std::exception_ptr error;

  void run_range(int r) {
    Range& range = ranges[static_cast<std::size_t>(r)];
    for (;;) {
      const std::int64_t c = range.next.fetch_add(1, std::memory_order_relaxed);
      if (c >= range.end || failed.load(std::memory_order_relaxed)) return;
      try {
        (*fn)(c);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (!error) error = std::current_exception();
        failed.store(true, std::memory_order_relaxed);
      }
    }
  }

  void run_chunks(int self) {
    const bool was_in_job = t_in_pool_job;
    t_in_pool_job = true;
    for (int k = 0; k < participants; ++k) run_range((self + k) % participants);  // own first
    t_in_pool_job = was_in_job;
  }

  void worker_loop() {
    std::uint64_t seen = 0;
    for (;;) {
      if (!spin_until([&] { return epoch.load(std::memory_order_acquire) != seen; })) {
        epoch.wait(seen, std::memory_order_acquire);
      }
      seen = epoch.load(std::memory_order_acquire);
      if (stop.load(std::memory_order_acquire)) return;
      // Any worker may take a helper place; exactly `pending` places exist, so the caller waits
      // for exactly the workers that took one. A late worker finds no place (slots <= 0) and
      // goes back to waiting; the places of the next job are only published (release store of
      // `slots`) after that job's fields are written.
      const int place = slots.fetch_sub(1, std::memory_order_acq_rel);
      if (place > 0) {
        run_chunks(participants - place);  // places n-1 .. 1 -> participants 1 .. n-1
        if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) pending.notify_one();
      }
    }
  }
};

ThreadPool::ThreadPool(int threads) : impl_(std::make_unique<Impl>()) {
  if (threads < 1) {
    throw ArgumentError("[ropekit.thread_pool] threads: expected >= 1, got " +
                        std::to_string(threads));
  }
  // At most kMaxThreads; fewer when the system refuses to start more (RLIMIT_NPROC, address
  // space for the stacks, cgroup pids.max): the pool then runs with the threads it has, and
  // size() says how many. Nothing below may throw once a worker runs (a joinable std::thread
  // destroyed during unwinding would terminate the process).
  threads = std::min(threads, kMaxThreads);
  impl_->ranges = std::make_unique<Impl::Range[]>(static_cast<std::size_t>(threads));
  impl_->workers.reserve(static_cast<std::size_t>(threads - 1));
  for (int i = 0; i < threads - 1; ++i) {
    try {
      impl_->workers.emplace_back([impl = impl_.get()] { impl->worker_loop(); });
    } catch (const std::exception&) {  // std::system_error (EAGAIN), or no memory for its state
      break;
    }
  }
  impl_->size = 1 + static_cast<int>(impl_->workers.size());
}

ThreadPool::~ThreadPool() {
  impl_->stop.store(true, std::memory_order_release);
  impl_->epoch.fetch_add(1, std::memory_order_acq_rel);
  impl_->epoch.notify_all();
  for (std::thread& t : impl_->workers) t.join();
}

int ThreadPool::size() const noexcept { return impl_->size; }

void ThreadPool::parallel_for(std::int64_t chunks, const std::function<void(std::int64_t)>& fn,
                              int max_threads) {
  if (chunks <= 0) return;
  Impl& im = *impl_;
  int n = max_threads > 0 ? std::min(max_threads, im.size) : im.size;
  if (static_cast<std::int64_t>(n) > chunks) n = static_cast<int>(chunks);
  bool expected = false;
  if (n <= 1 || t_in_pool_job ||
      !im.busy.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
    for (std::int64_t c = 0; c < chunks; ++c) fn(c);  // inline: no fork-join
    return;
  }

  im.fn = &fn;
  im.chunks = chunks;
  im.participants = n;
  for (int r = 0; r < n; ++r) {
    im.ranges[static_cast<std::size_t>(r)].next.store(chunks * r / n, std::memory_order_relaxed);
    im.ranges[static_cast<std::size_t>(r)].end = chunks * (r + 1) / n;
  }
  im.failed.store(false, std::memory_order_relaxed);
  im.error = nullptr;
  im.pending.store(n - 1, std::memory_order_relaxed);
  im.slots.store(n - 1, std::memory_order_release);  // publishes the job to helpers
  im.epoch.fetch_add(1, std::memory_order_acq_rel);  // wakes the workers
  im.epoch.notify_all();                             // cheap when every worker is still spinning

  im.run_chunks(0);

  // Every chunk is claimed now. Places no worker has taken yet are withdrawn, so a worker that
  // was not scheduled in time (2 shared cores) does not make the caller wait for nothing.
  const int unclaimed = im.slots.exchange(0, std::memory_order_acq_rel);
  if (unclaimed > 0) im.pending.fetch_sub(unclaimed, std::memory_order_acq_rel);

  for (;;) {
    if (spin_until([&] { return im.pending.load(std::memory_order_acquire) == 0; })) break;
    const int left = im.pending.load(std::memory_order_acquire);
    if (left == 0) break;
    im.pending.wait(left, std::memory_order_acquire);
  }
  std::exception_ptr error = im.error;
  im.error = nullptr;
  im.fn = nullptr;
  im.busy.store(false, std::memory_order_release);
  if (error) std::rethrow_exception(error);
}

// ---- the default pool --------------------------------------------------------------------------
namespace {

std::mutex g_pool_mu;
std::unique_ptr<ThreadPool> g_pool;

int default_thread_count() {
  if (const char* env = std::getenv("ROPEKIT_THREADS"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 4096) return static_cast<int>(v);
    std::fprintf(stderr, "ropekit: ignoring ROPEKIT_THREADS=%s (expected an integer >= 1)\n", env);
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(std::min(hc, 4096u));
}

}  // namespace

ThreadPool& default_pool() {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  if (!g_pool) g_pool = std::make_unique<ThreadPool>(default_thread_count());
  return *g_pool;
}

void set_default_threads(int threads) {
  if (threads < 1) {
    throw ArgumentError("[ropekit.thread_pool] threads: expected >= 1, got " +
                        std::to_string(threads));
  }
  std::lock_guard<std::mutex> lock(g_pool_mu);
  if (g_pool && g_pool->size() == threads) return;
  g_pool = std::make_unique<ThreadPool>(threads);
}

}  // namespace ropekit
