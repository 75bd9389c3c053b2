// ropekit/thread_pool.h — the small pool ropekit splits work over.
//
// apply_rope splits tokens × heads into contiguous chunks and runs them on a pool. Work too
// small to split (below ~256 KiB moved) runs on the calling thread with no fork-join cost.
// The library owns a default pool sized by set_default_threads() or the ROPEKIT_THREADS
// environment variable (default: hardware concurrency); callers may pass their own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace ropekit {

class ThreadPool {
 public:
  // threads >= 1 (the calling thread counts as one), at most 4096. When the system refuses to
  // start a thread (resource limits), the pool keeps the ones it has: size() says how many.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const noexcept;
  // Runs fn(chunk) for chunk in [0, chunks) on up to `max_threads` threads (0: all), the
  // calling thread included; returns when all are done. Rethrows the first exception.
  void parallel_for(std::int64_t chunks, const std::function<void(std::int64_t)>& fn,
                    int max_threads = 0);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The library's pool (created on first use).
ThreadPool& default_pool();
// Sets the default pool's size (recreates it). threads >= 1.
void set_default_threads(int threads);

}  // namespace ropekit
