// Stub: runs every chunk on the calling thread (replaced by the real pool).
#include "ropekit/thread_pool.h"

namespace ropekit {
struct ThreadPool::Impl {
  int threads = 1;
};
ThreadPool::ThreadPool(int threads) : impl_(std::make_unique<Impl>()) { impl_->threads = threads; }
ThreadPool::~ThreadPool() = default;
int ThreadPool::size() const noexcept { return impl_->threads; }
void ThreadPool::parallel_for(std::int64_t chunks, const std::function<void(std::int64_t)>& fn,
                              int) {
  for (std::int64_t c = 0; c < chunks; ++c) fn(c);
}
ThreadPool& default_pool() {
  static ThreadPool pool(1);
  return pool;
}
void set_default_threads(int) {}
}  // namespace ropekit
