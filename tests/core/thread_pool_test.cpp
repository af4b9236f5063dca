#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/thread_pool.h"

TEST(ThreadPool, RunsEveryIndexOnce) {
  for (int threads : {1, 2, 4}) {
    zc::ThreadPool pool(threads);
    for (size_t n : {0u, 1u, 3u, 1000u}) {
      std::vector<std::atomic<int>> hits(n);
      pool.parallel_for(n, [&](size_t i) { hits[i]++; });
      for (size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1);
    }
  }
}

// Loops nested three deep, from several threads at once: every (outer, middle, inner)
// index runs exactly once, whichever thread takes it.
TEST(ThreadPool, NestedAndConcurrentLoopsRunEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    zc::ThreadPool pool(threads);
    constexpr size_t kA = 6, kB = 5, kC = 7;
    std::vector<std::atomic<int>> hits(4 * kA * kB * kC);
    std::vector<std::thread> callers;
    for (size_t caller = 0; caller < 4; ++caller) {
      callers.emplace_back([&, caller] {
        pool.parallel_for(kA, [&](size_t a) {
          pool.parallel_for(kB, [&](size_t b) {
            pool.parallel_for(kC, [&](size_t c) { hits[((caller * kA + a) * kB + b) * kC + c]++; });
          });
        });
      });
    }
    for (auto& t : callers) t.join();
    for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << threads << " threads, index " << i;
  }
}

// An exception from an index reaches the caller after every other index ran, and the
// pool serves the next loop.
TEST(ThreadPool, ExceptionsReachTheCaller) {
  for (int threads : {1, 4}) {
    zc::ThreadPool pool(threads);
    std::atomic<int> ran{0};
    EXPECT_THROW(pool.parallel_for(50,
                                   [&](size_t i) {
                                     ran++;
                                     if (i == 17) throw std::runtime_error("index 17");
                                   }),
                 std::runtime_error);
    EXPECT_EQ(ran.load(), threads == 1 ? 18 : 50);  // inline stops at the throw
    std::atomic<int> after{0};
    pool.parallel_for(20, [&](size_t) { after++; });
    EXPECT_EQ(after.load(), 20);
  }
}
