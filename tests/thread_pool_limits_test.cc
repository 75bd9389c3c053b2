// ThreadPool when the system refuses threads: the constructor used to throw while its
// first workers were running, and std::terminate ended the process. Each case runs in a child
// process (a death-test fork) whose address space is limited so that thread stacks cannot be
// mapped: the limit stops root too (RLIMIT_NPROC does not), and nothing depends on the machine's
// core count or load. Sanitizer builds reserve terabytes of shadow memory, so there the cases
// are skipped.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "ropekit/thread_pool.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ROPEKIT_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define ROPEKIT_TEST_SANITIZED 1
#endif
#endif

namespace {

// Limits this process's address space to what it maps now plus `extra` bytes.
bool limit_address_space(long extra) {
  long pages = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return false;
  const bool ok = std::fscanf(f, "%ld", &pages) == 1;
  std::fclose(f);
  if (!ok) return false;
  const rlim_t limit = static_cast<rlim_t>(pages) * 4096 + static_cast<rlim_t>(extra);
  rlimit r{limit, limit};
  return setrlimit(RLIMIT_AS, &r) == 0;
}

// In a child: a pool of 256 threads under a 64 MiB address-space headroom (each thread stack
// reserves 2-8 MiB) gets fewer threads, and runs every chunk exactly once.
void pool_under_limit() {
  if (!limit_address_space(64L << 20)) std::_Exit(3);
  ropekit::ThreadPool pool(256);
  if (pool.size() < 1 || pool.size() >= 256) std::_Exit(4);
  std::vector<std::atomic<int>> hits(1000);
  pool.parallel_for(1000, [&](std::int64_t c) { hits[static_cast<std::size_t>(c)]++; });
  for (auto& h : hits) {
    if (h.load() != 1) std::_Exit(5);
  }
  std::fprintf(stderr, "pool of %d threads\n", pool.size());
  std::_Exit(0);
}

TEST(ThreadPoolLimits, FewerThreadsWhenTheSystemRefusesThem) {
#ifdef ROPEKIT_TEST_SANITIZED
  GTEST_SKIP() << "address-space limits do not apply to sanitizer builds";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(pool_under_limit(), ::testing::ExitedWithCode(0), "pool of [0-9]+ threads");
#endif
}

TEST(ThreadPoolLimits, AtMost4096Threads) {
#ifdef ROPEKIT_TEST_SANITIZED
  GTEST_SKIP() << "address-space limits do not apply to sanitizer builds";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // A count no system grants: the pool neither aborts nor allocates for a billion threads.
  EXPECT_EXIT(
      {
        if (!limit_address_space(64L << 20)) std::_Exit(3);
        ropekit::ThreadPool pool(1000000000);
        std::_Exit(pool.size() >= 1 && pool.size() <= 4096 ? 0 : 4);
      },
      ::testing::ExitedWithCode(0), "");
#endif
}

TEST(ThreadPoolLimits, DefaultPoolUnderLimit) {
#ifdef ROPEKIT_TEST_SANITIZED
  GTEST_SKIP() << "address-space limits do not apply to sanitizer builds";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        if (!limit_address_space(64L << 20)) std::_Exit(3);
        ropekit::set_default_threads(4096);
        std::atomic<std::int64_t> sum{0};
        ropekit::default_pool().parallel_for(100, [&](std::int64_t c) { sum += c; });
        std::_Exit(sum.load() == 4950 ? 0 : 4);
      },
      ::testing::ExitedWithCode(0), "");
#endif
}

}  // namespace
