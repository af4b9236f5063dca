#include <atomic>
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

TEST(ThreadPool, NestedCallsRunInline) {
  zc::ThreadPool pool(3);
  std::atomic<int> total{0};
  pool.parallel_for(8, [&](size_t) { pool.parallel_for(5, [&](size_t) { total++; }); });
  EXPECT_EQ(total.load(), 40);
}
