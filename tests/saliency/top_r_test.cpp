// The top-r split (SPEC.md section 4): sizes, ties to the later token, bad ratios.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "core/error.h"
#include "saliency/saliency.h"

namespace zs = zc::saliency;

namespace {

std::vector<int> top(const std::vector<float>& s, double r) {
  return zs::top_r(s.data(), int(s.size()), r);
}

TEST(TopR, SizesRoundHalfUp) {
  const std::vector<float> s(10, 1.0f);
  EXPECT_EQ(top(s, 0.4).size(), 4u);
  EXPECT_EQ(top(s, 0.25).size(), 3u);  // 2.5 -> 3
  EXPECT_EQ(top(s, 0.24).size(), 2u);
  EXPECT_TRUE(top(s, 0.0).empty());
  EXPECT_EQ(top(s, 1.0).size(), 10u);
  EXPECT_TRUE(zs::top_r(nullptr, 0, 0.4).empty());
  EXPECT_EQ(top({3.0f}, 0.5), std::vector<int>{0});
  EXPECT_TRUE(top({3.0f}, 0.49).empty());
}

TEST(TopR, TiesGoToTheLaterToken) {
  EXPECT_EQ(top(std::vector<float>(10, 0.5f), 0.3), (std::vector<int>{7, 8, 9}));
  EXPECT_EQ(top({1, 5, 5, 2, 5}, 0.4), (std::vector<int>{2, 4}));
  EXPECT_EQ(top({9, 1, 1, 1}, 0.5), (std::vector<int>{0, 3}));
}

TEST(TopR, MatchesAFullSortOnRandomScores) {
  std::mt19937 gen(11);
  for (int L : {1, 2, 7, 33, 100, 1001}) {
    for (double r : {0.1, 0.4, 0.5, 0.9}) {
      std::vector<float> s(static_cast<size_t>(L));
      // Few distinct values so that ties are common.
      for (auto& v : s) v = float(gen() % 7);
      std::vector<int> order(static_cast<size_t>(L));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        return s[size_t(a)] != s[size_t(b)] ? s[size_t(a)] > s[size_t(b)] : a > b;
      });
      order.resize(size_t(std::floor(r * L + 0.5)));
      std::sort(order.begin(), order.end());
      EXPECT_EQ(top(s, r), order) << "L=" << L << " r=" << r;
    }
  }
}

TEST(TopR, RejectsBadInput) {
  const std::vector<float> s(4, 1.0f);
  EXPECT_THROW(top(s, -0.1), zc::Error);
  EXPECT_THROW(top(s, 1.01), zc::Error);
  EXPECT_THROW(top(s, NAN), zc::Error);
  EXPECT_THROW(top({1, NAN, 2}, 0.5), zc::Error);
  EXPECT_THROW(zs::top_r(s.data(), -1, 0.5), zc::Error);
}

}  // namespace
