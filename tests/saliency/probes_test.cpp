// Probe selection (SPEC.md section 3): counts, order, distinctness, uniformity and
// seeded determinism.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "core/error.h"
#include "saliency/saliency.h"

namespace zs = zc::saliency;

namespace {

int round_half_up(double x) { return int(std::floor(x + 0.5)); }

void check_probes(int L, const zs::ProbeConfig& cfg) {
  const auto p = zs::select_probes(L, cfg);
  ASSERT_TRUE(std::is_sorted(p.begin(), p.end())) << L;
  ASSERT_EQ(std::set<int>(p.begin(), p.end()).size(), p.size()) << "distinct, L=" << L;
  for (int t : p) ASSERT_TRUE(t >= 0 && t < L) << t;
  if (L == 1) {
    EXPECT_EQ(p, std::vector<int>{0});
    return;
  }
  // Expected counts, written out from the rule: round half up, at least one of each
  // kind whose ratio is > 0.
  int recent = round_half_up(cfg.recent_ratio * L), random = round_half_up(cfg.random_ratio * L);
  if (cfg.recent_ratio > 0) recent = std::max(recent, 1);
  if (cfg.random_ratio > 0) random = std::max(random, 1);
  recent = std::min(recent, cfg.random_ratio > 0 ? L - 1 : L);
  random = std::min(random, L - recent);
  ASSERT_EQ(int(p.size()), recent + random) << "L=" << L;
  // The newest `recent` positions are all there; the rest are older ones.
  for (int i = 0; i < recent; ++i) ASSERT_EQ(p[p.size() - 1 - size_t(i)], L - 1 - i) << L;
  for (size_t i = 0; i + size_t(recent) < p.size(); ++i) ASSERT_LT(p[i], L - recent) << L;
}

TEST(Probes, CountsAndShapeForManyLengths) {
  zs::ProbeConfig cfg;  // defaults: 5% recent + 5% random
  for (int L : {1, 2, 3, 4, 9, 10, 19, 20, 29, 30, 31, 100, 257, 1000, 4096}) {
    cfg.seed = uint64_t(L);
    check_probes(L, cfg);
  }
  EXPECT_EQ(zs::select_probes(2, cfg), (std::vector<int>{0, 1}));
  EXPECT_EQ(zs::select_probes(1000, cfg).size(), 100u);
  EXPECT_EQ(zs::select_probes(30, cfg).size(), 4u);  // 1.5 -> 2 of each kind
  const auto three = zs::select_probes(3, cfg);
  ASSERT_EQ(three.size(), 2u);
  EXPECT_EQ(three[1], 2);
  EXPECT_TRUE(zs::select_probes(0, cfg).empty());
}

TEST(Probes, OtherRatios) {
  for (double rec : {0.0, 0.1, 0.5, 1.0}) {
    for (double rnd : {0.0, 0.02, 0.3, 1.0}) {
      if (rec == 0 && rnd == 0) continue;
      for (int L : {1, 2, 3, 17, 1000}) check_probes(L, zs::ProbeConfig{rec, rnd, 5});
    }
  }
  // Recent only: exactly the newest tokens.
  EXPECT_EQ(zs::select_probes(10, zs::ProbeConfig{0.3, 0.0, 1}), (std::vector<int>{7, 8, 9}));
  // Everything recent: every row.
  EXPECT_EQ(zs::select_probes(4, zs::ProbeConfig{1.0, 0.0, 1}), (std::vector<int>{0, 1, 2, 3}));
}

TEST(Probes, SeededAndUniform) {
  const zs::ProbeConfig a{0.05, 0.05, 42};
  EXPECT_EQ(zs::select_probes(1000, a), zs::select_probes(1000, a));
  EXPECT_NE(zs::select_probes(1000, a), zs::select_probes(1000, zs::ProbeConfig{0.05, 0.05, 43}));
  // L = 20: one recent (19) and one random from 0..18; every position equally likely.
  std::vector<int> hist(19, 0);
  const int trials = 19000;
  for (int s = 0; s < trials; ++s) {
    const auto p = zs::select_probes(20, zs::ProbeConfig{0.05, 0.05, uint64_t(s)});
    ASSERT_EQ(p.size(), 2u);
    ASSERT_EQ(p[1], 19);
    ++hist[size_t(p[0])];
  }
  double chi2 = 0;
  for (int h : hist) chi2 += (h - 1000.0) * (h - 1000.0) / 1000.0;
  EXPECT_LT(chi2, 50.0);  // 18 degrees of freedom: p < 1e-4 for a fair draw
}

TEST(Probes, RejectsBadConfig) {
  EXPECT_THROW(zs::select_probes(-1, {}), zc::Error);
  EXPECT_THROW(zs::select_probes(10, zs::ProbeConfig{-0.1, 0.05, 0}), zc::Error);
  EXPECT_THROW(zs::select_probes(10, zs::ProbeConfig{0.05, 1.5, 0}), zc::Error);
  EXPECT_THROW(zs::select_probes(10, zs::ProbeConfig{NAN, 0.05, 0}), zc::Error);
  EXPECT_THROW(zs::select_probes(10, zs::ProbeConfig{0.0, 0.0, 0}), zc::Error);
}

TEST(Names, RoundTripAndReject) {
  for (auto m :
       {zs::Metric::Accumulated, zs::Metric::Normalized, zs::Metric::Recent, zs::Metric::Random}) {
    EXPECT_EQ(zs::parse_metric(zs::metric_name(m)), m);
  }
  EXPECT_EQ(zs::metric_name(zs::Metric::Normalized), "normalized");
  EXPECT_EQ(zs::parse_norm("probes"), zs::Norm::ProbeCount);
  EXPECT_EQ(zs::parse_norm("full"), zs::Norm::Full);
  EXPECT_EQ(zs::norm_name(zs::Norm::Full), "full");
  EXPECT_THROW(zs::parse_metric("h2o"), zc::Error);
  EXPECT_THROW(zs::parse_norm(""), zc::Error);
}

}  // namespace
