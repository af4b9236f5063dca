// Saliency scores (SPEC.md section 3) against a double-precision reference of
// causal softmax attention, over many shapes, every metric and norm, with all rows
// and with probe rows; plus the accumulated-vs-normalized bias on known patterns.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/error_of.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "saliency/saliency.h"

namespace zs = zc::saliency;

namespace {

struct Inputs {
  zs::AttentionShape shape;
  std::vector<float> q, k;  // [L, n_heads, d], [L, n_kv, d]
};

Inputs make_inputs(int L, int n_kv, int g, int d, double spread, uint32_t seed) {
  Inputs in;
  in.shape = {L, n_kv * g, n_kv, d, float(1.0 / std::sqrt(double(d)))};
  std::mt19937 gen(seed);
  std::normal_distribution<float> nd(0.0f, float(spread));
  in.q.resize(size_t(L) * size_t(n_kv * g) * size_t(d));
  in.k.resize(size_t(L) * size_t(n_kv) * size_t(d));
  for (auto& v : in.q) v = nd(gen);
  for (auto& v : in.k) v = nd(gen);
  return in;
}

// Column sums of the causal softmax probabilities, [n_kv][L], straight from the
// definition in double: query head j of KV head h is h * g + j.
std::vector<std::vector<double>> ref_column_sums(const Inputs& in, const std::vector<int>& rows) {
  const auto& s = in.shape;
  const int g = s.n_heads / s.n_kv_heads;
  std::vector<std::vector<double>> sums(size_t(s.n_kv_heads),
                                        std::vector<double>(size_t(s.L), 0.0));
  for (int h = 0; h < s.n_kv_heads; ++h) {
    for (int t : rows) {
      for (int j = 0; j < g; ++j) {
        const int qh = h * g + j;
        std::vector<double> z(size_t(t) + 1);
        for (int i = 0; i <= t; ++i) {
          double dot = 0;
          for (int c = 0; c < s.head_dim; ++c) {
            dot += double(in.q[(size_t(t) * size_t(s.n_heads) + size_t(qh)) * size_t(s.head_dim) +
                               size_t(c)]) *
                   double(in.k[(size_t(i) * size_t(s.n_kv_heads) + size_t(h)) * size_t(s.head_dim) +
                               size_t(c)]);
          }
          z[size_t(i)] = double(s.scale) * dot;
        }
        const double m = *std::max_element(z.begin(), z.end());
        double denom = 0;
        for (double v : z) denom += std::exp(v - m);
        for (int i = 0; i <= t; ++i)
          sums[size_t(h)][size_t(i)] += std::exp(z[size_t(i)] - m) / denom;
      }
    }
  }
  return sums;
}

std::vector<double> ref_scores(const std::vector<std::vector<double>>& sums,
                               const std::vector<int>& rows, int L, zs::Metric metric,
                               zs::Norm norm) {
  std::vector<double> out;
  for (const auto& col : sums) {
    for (int i = 0; i < L; ++i) {
      double v = col[size_t(i)];
      if (metric == zs::Metric::Normalized) {
        double n = 0;
        if (norm == zs::Norm::Full) {
          n = L - i;
        } else {
          for (int t : rows) n += t >= i ? 1 : 0;
        }
        v = n > 0 ? v / n : 0.0;
      }
      out.push_back(v);
    }
  }
  return out;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(double(got[i]), want[i], 2e-5 * std::fabs(want[i]) + 1e-7)
        << what << " index " << i;
  }
}

TEST(Scores, MatchTheReferenceOverShapes) {
  uint32_t seed = 1;
  int combo = 0;
  const int dims[] = {64, 128, 3, 5, 1, 17};
  for (int L : {1, 2, 7, 33, 100}) {
    for (int c = 0; c < 8; ++c, ++combo) {
      const int n_kv = c + 1, g = (combo * 3) % 8 + 1, d = dims[combo % 6];
      // Larger L with big shapes dominates the runtime; keep those few.
      if (L == 100 && n_kv * g * d > 8192) continue;
      const Inputs in = make_inputs(L, n_kv, g, d, combo % 2 ? 2.0 : 0.7, seed++);
      const auto probes = zs::select_probes(L, zs::ProbeConfig{0.1, 0.1, uint64_t(combo)});
      std::vector<int> all(static_cast<size_t>(L));
      for (int t = 0; t < L; ++t) all[size_t(t)] = t;
      for (const std::vector<int>* rows :
           std::initializer_list<const std::vector<int>*>{&all, &probes}) {
        const auto sums = ref_column_sums(in, *rows);
        const std::vector<int> given = rows == &all ? std::vector<int>{} : *rows;
        for (auto metric : {zs::Metric::Accumulated, zs::Metric::Normalized}) {
          for (auto norm : {zs::Norm::ProbeCount, zs::Norm::Full}) {
            const std::string what = "L=" + std::to_string(L) + " n_kv=" + std::to_string(n_kv) +
                                     " g=" + std::to_string(g) + " d=" + std::to_string(d) + " " +
                                     zs::metric_name(metric) + "/" + zs::norm_name(norm) +
                                     (rows == &all ? " all rows" : " probes");
            const auto got = zs::scores(in.q.data(), in.k.data(), in.shape, given, metric, norm);
            expect_close(got, ref_scores(sums, *rows, L, metric, norm), what);
          }
        }
      }
    }
  }
}

TEST(Scores, AllRowsGivenExplicitlyEqualsEmptyAndScaleDefaults) {
  const Inputs in = make_inputs(20, 2, 3, 8, 1.0, 77);
  std::vector<int> all(20);
  for (int t = 0; t < 20; ++t) all[size_t(t)] = t;
  const auto a = zs::scores(in.q.data(), in.k.data(), in.shape, {}, zs::Metric::Normalized,
                            zs::Norm::ProbeCount);
  const auto b = zs::scores(in.q.data(), in.k.data(), in.shape, all, zs::Metric::Normalized,
                            zs::Norm::ProbeCount);
  EXPECT_EQ(a, b);
  zs::AttentionShape unset = in.shape;
  unset.scale = 0.0f;  // 0 means 1/sqrt(head_dim)
  const auto c =
      zs::scores(in.q.data(), in.k.data(), unset, {}, zs::Metric::Normalized, zs::Norm::ProbeCount);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], c[i], 1e-6f * std::fabs(a[i]) + 1e-9f);
}

TEST(Scores, SameResultWithOneOrManyThreads) {
  const Inputs in = make_inputs(50, 8, 2, 16, 1.5, 5);
  zc::ThreadPool::set_default_threads(1);
  const auto one =
      zs::scores(in.q.data(), in.k.data(), in.shape, {}, zs::Metric::Accumulated, zs::Norm::Full);
  zc::ThreadPool::set_default_threads(4);
  const auto four =
      zs::scores(in.q.data(), in.k.data(), in.shape, {}, zs::Metric::Accumulated, zs::Norm::Full);
  zc::ThreadPool::set_default_threads(0);
  EXPECT_EQ(one, four);
}

TEST(Scores, RecentAndRandomIgnoreAttention) {
  zs::AttentionShape s{9, 4, 2, 8, 0.3f};
  const auto rec = zs::scores(nullptr, nullptr, s, {}, zs::Metric::Recent, zs::Norm::ProbeCount);
  ASSERT_EQ(rec.size(), 18u);
  for (int h = 0; h < 2; ++h) {
    for (int i = 1; i < 9; ++i) EXPECT_GT(rec[size_t(h * 9 + i)], rec[size_t(h * 9 + i - 1)]);
  }
  EXPECT_EQ(zs::top_r(rec.data(), 9, 1.0 / 3), (std::vector<int>{6, 7, 8}));
  const auto r1 = zs::scores(nullptr, nullptr, s, {}, zs::Metric::Random, zs::Norm::ProbeCount, 3);
  const auto r2 = zs::scores(nullptr, nullptr, s, {}, zs::Metric::Random, zs::Norm::ProbeCount, 3);
  const auto r3 = zs::scores(nullptr, nullptr, s, {}, zs::Metric::Random, zs::Norm::ProbeCount, 4);
  EXPECT_EQ(r1, r2);
  EXPECT_NE(r1, r3);
  for (float v : r1) EXPECT_TRUE(v >= 0.0f && v < 1.0f);
}

// Uniform attention (q = 0): A[t, i] = 1 / (t + 1). Accumulated s_i = H_L - H_i grows
// with the number of queries that see i; normalized divides that out.
TEST(Scores, UniformAttentionBias) {
  const int L = 64, g = 2;
  Inputs in = make_inputs(L, 1, g, 8, 1.0, 3);
  std::fill(in.q.begin(), in.q.end(), 0.0f);
  const auto acc = zs::scores(in.q.data(), in.k.data(), in.shape, {}, zs::Metric::Accumulated,
                              zs::Norm::ProbeCount);
  const auto nrm = zs::scores(in.q.data(), in.k.data(), in.shape, {}, zs::Metric::Normalized,
                              zs::Norm::ProbeCount);
  double harmonic = 0;
  for (int t = 1; t <= L; ++t) harmonic += 1.0 / t;
  EXPECT_NEAR(acc[0], g * harmonic, 1e-4);
  EXPECT_NEAR(acc[L - 1], g * 1.0 / L, 1e-6);
  EXPECT_NEAR(acc[0] / acc[L - 1], L * harmonic, 1e-2);  // ~300x for L = 64
  EXPECT_NEAR(nrm[0] / nrm[L - 1], harmonic, 1e-3);      // ~4.7x
  // Accumulated keeps only the oldest tokens.
  std::vector<int> oldest(16);
  for (int i = 0; i < 16; ++i) oldest[size_t(i)] = i;
  EXPECT_EQ(zs::top_r(acc.data(), L, 0.25), oldest);
}

// A pattern where every token gets the same mean attention from the queries that
// see it: with one-hot keys, query t puts logit log(L + 1 - t) on itself and 0 on
// older tokens, so A[t, i] = 1 / (L + 1) for i < t and A[t, t] = (L + 1 - t) / (L + 1).
// Column i then sums to 2 (L - i) / (L + 1): accumulated favours early tokens
// linearly, normalized is exactly flat at 2 / (L + 1).
TEST(Scores, EqualMeanAttentionIsFlatOnlyWhenNormalized) {
  for (int L : {2, 7, 33, 100}) {
    const int g = 3, d = L + 1;  // one-hot keys need d >= L; odd and even d
    Inputs in = make_inputs(L, 1, g, d, 1.0, 9);
    std::fill(in.q.begin(), in.q.end(), 0.0f);
    std::fill(in.k.begin(), in.k.end(), 0.0f);
    for (int i = 0; i < L; ++i) in.k[size_t(i) * size_t(d) + size_t(i)] = 1.0f;
    for (int t = 0; t < L; ++t) {
      for (int j = 0; j < g; ++j) {
        in.q[(size_t(t) * size_t(g) + size_t(j)) * size_t(d) + size_t(t)] =
            float(std::log(L + 1.0 - t) / in.shape.scale);
      }
    }
    const auto acc = zs::scores(in.q.data(), in.k.data(), in.shape, {}, zs::Metric::Accumulated,
                                zs::Norm::ProbeCount);
    for (auto norm : {zs::Norm::ProbeCount, zs::Norm::Full}) {
      const auto nrm =
          zs::scores(in.q.data(), in.k.data(), in.shape, {}, zs::Metric::Normalized, norm);
      for (int i = 0; i < L; ++i) {
        EXPECT_NEAR(nrm[size_t(i)], g * 2.0 / (L + 1), 1e-5) << "L=" << L << " i=" << i;
        EXPECT_NEAR(acc[size_t(i)], g * 2.0 * (L - i) / (L + 1), 1e-4) << "L=" << L << " i=" << i;
      }
    }
  }
}

using zc::test::error_of;

TEST(Scores, RejectsBadInput) {
  Inputs in = make_inputs(6, 2, 2, 4, 1.0, 1);
  auto run = [&](zs::AttentionShape s, std::vector<int> rows) {
    zs::scores(in.q.data(), in.k.data(), s, rows, zs::Metric::Normalized, zs::Norm::ProbeCount);
  };
  zs::AttentionShape bad = in.shape;
  bad.n_heads = 3;
  EXPECT_THROW(run(bad, {}), zc::Error);
  bad = in.shape;
  bad.head_dim = 0;
  EXPECT_THROW(run(bad, {}), zc::Error);
  bad = in.shape;
  bad.scale = NAN;
  EXPECT_THROW(run(bad, {}), zc::Error);
  EXPECT_THROW(run(in.shape, {1, 6}), zc::Error);
  EXPECT_THROW(run(in.shape, {-1}), zc::Error);
  EXPECT_THROW(run(in.shape, {2, 2}), zc::Error);
  in.k[(3 * 2 + 1) * 4 + 2] = INFINITY;
  const std::string msg = error_of([&] { run(in.shape, {}); });
  EXPECT_NE(msg.find("key"), std::string::npos) << msg;
  EXPECT_NE(msg.find("token 3, head 1, dim 2"), std::string::npos) << msg;
  // Finite inputs whose logits overflow fp32.
  Inputs big = make_inputs(4, 1, 1, 2, 1.0, 2);
  std::fill(big.q.begin(), big.q.end(), 3e38f);
  std::fill(big.k.begin(), big.k.end(), 3e38f);
  EXPECT_THROW(zs::scores(big.q.data(), big.k.data(), big.shape, {}, zs::Metric::Accumulated,
                          zs::Norm::Full),
               zc::Error);
}

}  // namespace
