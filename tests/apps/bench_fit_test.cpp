// The largest-batch search of `zipcache bench --budget` (apps/zipcache/bench_fit.h)
// against a stand-in run whose pool holds a known number of sequences: no GPU needed.
#include "../../apps/zipcache/bench_fit.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace {

using zc::app::FitTry;
using zc::app::run_largest_fit;

// A run that fits up to `holds` sequences and otherwise fails as the KV pool does.
std::function<int(int)> pool_of(int holds, std::vector<int>* runs) {
  return [holds, runs](int batch) {
    runs->push_back(batch);
    if (batch > holds) zc::fail("kv pool: out of memory: a 4224 B chunk does not fit (batch {})", batch);
    return batch;
  };
}

TEST(BenchFit, TheEstimateRunsWhenItFits) {
  std::vector<int> runs;
  std::vector<FitTry> failed;
  EXPECT_EQ(run_largest_fit<int>(574, 6, pool_of(600, &runs), &failed), 574);
  EXPECT_EQ(runs, std::vector<int>({574}));
  EXPECT_TRUE(failed.empty());
}

TEST(BenchFit, AnExhaustedPoolStepsDownTwoPercent) {
  std::vector<int> runs;
  std::vector<FitTry> failed;
  // 536 -> 526 -> 516 -> 506 -> 496: 2% of the batch (rounded down) each time.
  EXPECT_EQ(run_largest_fit<int>(536, 6, pool_of(500, &runs), &failed), 496);
  EXPECT_EQ(runs, std::vector<int>({536, 526, 516, 506, 496}));
  ASSERT_EQ(failed.size(), 4u);
  EXPECT_EQ(failed[0].batch, 536);
  EXPECT_NE(failed[0].error.find("out of memory"), std::string::npos);
  // Small batches step down by one sequence.
  runs.clear();
  EXPECT_EQ(run_largest_fit<int>(3, 6, pool_of(1, &runs), nullptr), 1);
  EXPECT_EQ(runs, std::vector<int>({3, 2, 1}));
}

TEST(BenchFit, NoFitAfterTheLastRunIsAClearError) {
  std::vector<int> runs;
  try {
    (void)run_largest_fit<int>(100, 3, pool_of(10, &runs), nullptr);
    ADD_FAILURE() << "no error";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("tried 100, 98, 97"), std::string::npos) << e.what();
  }
  EXPECT_EQ(runs, std::vector<int>({100, 98, 97}));
  // Nothing to try at all, and one sequence that does not fit.
  EXPECT_THROW((void)run_largest_fit<int>(0, 6, pool_of(10, &runs), nullptr), zc::Error);
  runs.clear();
  EXPECT_THROW((void)run_largest_fit<int>(1, 6, pool_of(0, &runs), nullptr), zc::Error);
  EXPECT_EQ(runs, std::vector<int>({1}));
}

TEST(BenchFit, OtherErrorsPropagateAtOnce) {
  int calls = 0;
  const std::function<int(int)> broken = [&calls](int) -> int {
    ++calls;
    throw std::runtime_error("cuda: an illegal memory access");
  };
  EXPECT_THROW((void)run_largest_fit<int>(574, 6, broken, nullptr), std::runtime_error);
  EXPECT_EQ(calls, 1);
}

}  // namespace
