// H2O (SPEC.md section 5): attention plumbing, and which tokens survive: the newest
// n - n/2 plus the n/2 heaviest by accumulated attention, recomputed here in double
// precision from the prefill attention and every decode step's probabilities.
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "policy_check.h"

namespace zc::kv {
namespace {

using zc_test::Dims;

// parse_method with record_positions on, so snapshot() can report every token.
constexpr auto& config = zc_test::recording_config;

TEST(H2O, AttentionPlumbing) {
  struct Case {
    int T, steps;
    Dims dims;
  };
  uint64_t seed = 500;
  for (const char* spec : {"h2o:budget=0.3", "h2o:budget=1", "h2o:budget=0.05"}) {
    for (const Case& c : {Case{1, 10, {1, 1, 64}}, Case{2, 8, {2, 1, 128}}, Case{7, 20, {8, 8, 17}},
                          Case{33, 15, {16, 2, 64}}, Case{150, 10, {4, 4, 128}},
                          Case{300, 3, {8, 1, 64}}}) {
      SCOPED_TRACE(testing::Message() << spec << " T=" << c.T << " H=" << c.dims.H
                                      << " kv=" << c.dims.n_kv << " d=" << c.dims.d);
      const auto cfg = config(spec);
      const auto x = zc_test::random_tokens(c.T + c.steps, c.dims, seed++);
      zc_test::run_policy(cfg, x, c.T, [&](const Cache& cache) {
        const auto snap = cache.snapshot();
        const int n = snap.length;
        const int keep = std::clamp(int(std::lround(cfg.budget * n)), 1, n);
        for (int h = 0; h < c.dims.n_kv; ++h) {
          int kept = 0;
          for (int t = 0; t < n; ++t) {
            const uint8_t b = snap.bits[size_t(h) * n + t];
            ASSERT_TRUE(b == 0 || b == 16);
            kept += b == 16;
          }
          ASSERT_EQ(kept, keep);
          ASSERT_EQ(snap.bits[size_t(h) * n + n - 1], 16);  // the newest token stays
        }
        const auto m = cache.memory();
        EXPECT_EQ(m.tokens_kept, size_t(keep));
        EXPECT_EQ(m.window_bytes, size_t(c.dims.n_kv) * keep * c.dims.d * 2 * 2);
        EXPECT_EQ(m.metadata_bytes, size_t(c.dims.n_kv) * keep * 4);
        EXPECT_EQ(m.code_bytes + m.param_bytes, 0u);
      });
    }
  }
}

// The kept set after an eviction from `candidates` (ascending positions) down to n.
void expect_kept(const std::vector<int>& kept, const std::vector<int>& candidates,
                 const std::vector<double>& score, int n) {
  if (int(candidates.size()) <= n) {
    EXPECT_EQ(kept, candidates);
    return;
  }
  const int heavy = n / 2, recent = n - heavy, m = int(candidates.size());
  ASSERT_EQ(int(kept.size()), n);
  const std::set<int> in(kept.begin(), kept.end());
  for (int i = m - recent; i < m; ++i) EXPECT_TRUE(in.count(candidates[size_t(i)])) << "recent";
  double lo = INFINITY, hi = -INFINITY, mx = 0;
  for (int i = 0; i < m - recent; ++i) {
    const double s = score[size_t(candidates[size_t(i)])];
    mx = std::max(mx, s);
    if (in.count(candidates[size_t(i)])) {
      lo = std::min(lo, s);
    } else {
      hi = std::max(hi, s);
    }
  }
  if (heavy > 0) {
    EXPECT_GE(lo, hi - 1e-4 * mx) << "an evicted token outscored a heavy hitter";
  }
}

TEST(H2O, KeepsTheRecentAndTheHeaviestByAccumulatedAttention) {
  for (const char* spec : {"h2o:budget=0.25", "h2o:budget=0.5", "h2o:budget=0.1"}) {
    SCOPED_TRACE(spec);
    const Dims dims{8, 2, 64};
    const int T = 60, steps = 40;
    const auto cfg = config(spec);
    const auto x = zc_test::random_tokens(T + steps, dims, 61, 2.5f);  // peaky attention
    auto cache = make_cache(cfg, zc_test::shape_of(dims));
    const size_t qsz = size_t(dims.H) * dims.d;
    std::vector<float> out(size_t(T) * qsz);
    cache->prefill(x.qt(0), x.kt(0), x.vt(0), T, out.data());

    // Prefill scores: the full attention of every prompt row.
    std::vector<std::vector<double>> score(size_t(dims.n_kv), std::vector<double>(T + steps, 0.0));
    const auto exact = zc_test::store_from_tokens(x, T, false);
    std::vector<double> probs;
    for (int r = 0; r < T; ++r) {
      zc_test::attend(x.qt(r), dims, exact, r + 1, 0, &probs);
      for (int h = 0; h < dims.n_kv; ++h)
        for (int p = 0; p <= r; ++p) score[size_t(h)][size_t(p)] += probs[size_t(h) * T + p];
    }
    const auto kept_of = [](const Snapshot& s, int h) {
      std::vector<int> k;
      for (int p = 0; p < s.length; ++p)
        if (s.bits[size_t(h) * s.length + p]) k.push_back(p);
      return k;
    };
    Snapshot snap = cache->snapshot();
    std::vector<std::vector<int>> kept(size_t(dims.n_kv));
    std::vector<int> all(T);
    for (int p = 0; p < T; ++p) all[size_t(p)] = p;
    for (int h = 0; h < dims.n_kv; ++h) {
      kept[size_t(h)] = kept_of(snap, h);
      expect_kept(kept[size_t(h)], all, score[size_t(h)],
                  std::clamp(int(std::lround(cfg.budget * T)), 1, T));
    }
    for (int t = T; t < T + steps; ++t) {
      std::vector<float> o(qsz);
      cache->append(x.qt(t), x.kt(t), x.vt(t), o.data());
      snap = cache->snapshot();
      const int n = std::clamp(int(std::lround(cfg.budget * (t + 1))), 1, t + 1);
      for (int h = 0; h < dims.n_kv; ++h) {
        auto candidates = kept[size_t(h)];
        candidates.push_back(t);
        kept[size_t(h)] = kept_of(snap, h);
        expect_kept(kept[size_t(h)], candidates, score[size_t(h)], n);
      }
      // The step's query attends over the kept tokens; its probabilities add up.
      const auto ref = zc_test::attend(x.qt(t), dims, zc_test::store_from_snapshot(snap), t + 1, 0, &probs);
      zc_test::expect_close(o.data(), ref, 2e-5, "decode");
      for (int h = 0; h < dims.n_kv; ++h)
        for (int p = 0; p <= t; ++p) score[size_t(h)][size_t(p)] += probs[size_t(h) * (t + 1) + p];
    }
  }
}

TEST(H2O, SnapshotNeedsPositionsAndBudgetIsChecked) {
  const Dims dims{2, 1, 16};
  const auto x = zc_test::random_tokens(4, dims, 1);
  auto cache = make_cache(parse_method("h2o"), zc_test::shape_of(dims));
  std::vector<float> out(4 * 2 * 16);
  cache->prefill(x.qt(0), x.kt(0), x.vt(0), 4, out.data());
  EXPECT_THROW(cache->snapshot(), Error);
  auto cfg = parse_method("h2o");
  cfg.budget = 0.0;
  EXPECT_THROW(make_cache(cfg, zc_test::shape_of(dims)), Error);
}

}  // namespace
}  // namespace zc::kv
