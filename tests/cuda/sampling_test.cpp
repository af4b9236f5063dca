// GPU sampling (cuda/model/sampling.h) against a double-precision reference of HF's
// rule written here (temperature, top-k, top-p, min-p, renormalize; candidates capped at
// the 1024 most likely as sampling.h documents), greedy against a first-index argmax,
// Philox determinism per (seed, step, row), empirical frequencies of 20000 draws within a
// few sigma, NaN rows, and option / shape errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "cuda/model/sampling.h"
#include "gpu_test.h"

using zc::cuda::DeviceBuffer;
using zc::cuda::GpuSampler;
using zc::cuda::GpuSampling;

namespace {

constexpr size_t kCap = 1024;  // sampling.h: at most the 1024 most likely tokens

// HF order: logits / T, sort descending (lower id first on ties), top-k, softmax over
// the kept, top-p (smallest prefix with mass >= top_p), min-p (p >= min_p * p_max),
// renormalize.
std::vector<double> reference(const std::vector<float>& logits, const GpuSampling& o) {
  const size_t n = logits.size();
  std::vector<double> p(n, 0.0);
  if (o.temperature <= 0.0f) {
    size_t best = 0;
    for (size_t i = 1; i < n; ++i)
      if (logits[i] > logits[best]) best = i;
    p[best] = 1.0;
    return p;
  }
  std::vector<double> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = double(logits[i]) / double(o.temperature);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] > x[b]; });
  size_t keep = std::min(n, kCap);
  if (o.top_k > 0) keep = std::min(keep, size_t(o.top_k));
  std::vector<double> q(keep);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += q[i] = std::exp(x[order[i]] - x[order[0]]);
  for (auto& v : q) v /= sum;
  if (o.top_p < 1.0f) {
    double mass = 0;
    for (size_t i = 0; i < keep; ++i) {
      mass += q[i];
      if (mass >= double(o.top_p)) {
        keep = i + 1;
        break;
      }
    }
  }
  if (o.min_p > 0.0f) {
    size_t cut = 1;
    while (cut < keep && q[cut] >= double(o.min_p) * q[0]) ++cut;
    keep = cut;
  }
  double kept = 0;
  for (size_t i = 0; i < keep; ++i) kept += q[i];
  for (size_t i = 0; i < keep; ++i) p[order[i]] = q[i] / kept;
  return p;
}

std::vector<float> random_logits(zc::Rng& rng, size_t n, bool ties) {
  std::vector<float> v(n);
  const float scale = float(0.5 + rng.uniform() * 4.0);
  for (auto& x : v) x = ties ? float(rng.integer(-8, 8)) * 0.5f : rng.normal() * scale;
  return v;
}

using zc_test::dev;

std::vector<int32_t> draw(GpuSampler& s, const DeviceBuffer<float>& logits, int rows, int vocab,
                          uint64_t step) {
  DeviceBuffer<int32_t> out(static_cast<size_t>(rows));
  out.fill_bytes(0xff);
  s.sample(logits.get(), rows, vocab, step, out.get());
  zc::cuda::check(cudaDeviceSynchronize(), "test sync");
  return out.download();
}

TEST(CudaSampling, GreedyIsFirstIndexArgmax) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(31);
  GpuSampler greedy(GpuSampling{});
  for (int vocab : {1, 7, 1000, 50000}) {
    const int rows = 6;
    std::vector<float> x(size_t(rows) * size_t(vocab));
    for (auto& v : x) v = float(rng.integer(-5, 5));  // ties everywhere
    auto dx = dev(x);
    const auto got = draw(greedy, dx, rows, vocab, 0);
    for (int r = 0; r < rows; ++r) {
      const auto row = std::vector<float>(x.begin() + long(r) * vocab, x.begin() + long(r + 1) * vocab);
      const auto want = long(std::max_element(row.begin(), row.end()) - row.begin());  // first max
      EXPECT_EQ(got[size_t(r)], want) << "vocab " << vocab << " row " << r;
    }
    const auto p = greedy.distribution(dx.get(), vocab);
    EXPECT_EQ(p, reference(std::vector<float>(x.begin(), x.begin() + vocab), GpuSampling{}));
  }
}

void expect_distribution(const std::vector<float>& logits, const GpuSampling& o) {
  SCOPED_TRACE(::testing::Message() << "vocab " << logits.size() << " T " << o.temperature
                                    << " top_k " << o.top_k << " top_p " << o.top_p << " min_p "
                                    << o.min_p);
  auto dx = dev(logits);
  GpuSampler s(o);
  const auto got = s.distribution(dx.get(), int(logits.size()));
  const auto want = reference(logits, o);
  ASSERT_EQ(got.size(), want.size());
  double total = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    total += got[i];
    ASSERT_NEAR(got[i], want[i], 1e-9) << "token " << i;
    if (want[i] == 0.0) {
      ASSERT_EQ(got[i], 0.0) << "removed token " << i;
    }
  }
  EXPECT_NEAR(total, 1.0, 1e-9);
}

TEST(CudaSampling, DistributionMatchesDoubleReference) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(32);
  for (size_t vocab : {size_t(1), size_t(7), size_t(1000), size_t(50000)}) {
    for (bool ties : {false, true}) {
      const auto logits = random_logits(rng, vocab, ties);
      for (float t : {0.3f, 1.0f, 1.7f}) {
        for (int k : {0, 1, 5, 40, 1024, 2000}) {
          for (float tp : {1.0f, 0.95f, 0.6f, 0.05f}) {
            for (float mp : {0.0f, 0.05f, 0.3f}) {
              expect_distribution(logits, GpuSampling{t, k, tp, mp, 7});
            }
          }
        }
      }
    }
  }
}

TEST(CudaSampling, LargeVocabTopKThroughTies) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(33);
  // 256k logits on a coarse grid: the top-k threshold falls inside a run of ties, which
  // must keep the lowest ids (the CPU's stable sort).
  std::vector<float> logits(262144);
  for (auto& v : logits) v = float(rng.integer(0, 400)) * 0.05f;
  for (int k : {1, 50, 333, 1024}) expect_distribution(logits, GpuSampling{1.0f, k, 1.0f, 0.0f, 1});
  expect_distribution(logits, GpuSampling{0.8f, 100, 0.9f, 0.02f, 1});
  // Negative, -inf and a single spike.
  std::vector<float> spike(5000, -std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < spike.size(); i += 3) spike[i] = -float(i) * 1e-3f;
  spike[4321] = 5.0f;
  expect_distribution(spike, GpuSampling{1.0f, 0, 0.999f, 0.0f, 1});
  expect_distribution(spike, GpuSampling{2.0f, 20, 1.0f, 0.0f, 1});
}

TEST(CudaSampling, SameSeedAndStepSameDrawsOtherStepsDiffer) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(34);
  const int vocab = 1000, rows = 512;
  const auto one = random_logits(rng, size_t(vocab), false);
  std::vector<float> x;
  for (int r = 0; r < rows; ++r) x.insert(x.end(), one.begin(), one.end());
  auto dx = dev(x);
  const GpuSampling o{1.0f, 0, 1.0f, 0.0f, 1234};
  GpuSampler a(o), b(o);
  GpuSampling other_seed = o;
  other_seed.seed = 1235;
  GpuSampler c(other_seed);
  const auto s5 = draw(a, dx, rows, vocab, 5);
  EXPECT_EQ(draw(b, dx, rows, vocab, 5), s5);
  EXPECT_EQ(draw(a, dx, rows, vocab, 5), s5);
  const auto s6 = draw(a, dx, rows, vocab, 6);
  const auto c5 = draw(c, dx, rows, vocab, 5);
  int diff_step = 0, diff_seed = 0, diff_rows = 0;
  for (int r = 0; r < rows; ++r) {
    ASSERT_GE(s5[size_t(r)], 0);
    ASSERT_LT(s5[size_t(r)], vocab);
    diff_step += s5[size_t(r)] != s6[size_t(r)];
    diff_seed += s5[size_t(r)] != c5[size_t(r)];
    diff_rows += r > 0 && s5[size_t(r)] != s5[size_t(r - 1)];
  }
  // Identical rows draw independently; collisions are rare (sum p^2 << 1 here).
  const auto p = reference(one, o);
  double collide = 0;
  for (double v : p) collide += v * v;
  SCOPED_TRACE(::testing::Message() << "collision probability " << collide);
  EXPECT_GT(diff_step, int(rows * (1.0 - collide) * 0.8));
  EXPECT_GT(diff_seed, int(rows * (1.0 - collide) * 0.8));
  EXPECT_GT(diff_rows, int(rows * (1.0 - collide) * 0.8));
}

TEST(CudaSampling, EmpiricalFrequenciesWithinFiveSigma) {
  ZC_REQUIRE_GPU();
  const std::vector<float> small = {1.0f, 2.5f, 0.2f, 2.5f, -1.0f, 1.8f, 0.9f, 3.0f};
  const int n = 20000, vocab = int(small.size());
  std::vector<float> x;
  for (int r = 0; r < n; ++r) x.insert(x.end(), small.begin(), small.end());
  auto dx = dev(x);
  for (const GpuSampling& o : {GpuSampling{1.0f, 0, 1.0f, 0.0f, 1}, GpuSampling{0.7f, 5, 1.0f, 0.0f, 2},
                               GpuSampling{1.3f, 0, 0.8f, 0.0f, 3}, GpuSampling{1.0f, 0, 1.0f, 0.1f, 4},
                               GpuSampling{2.0f, 6, 0.9f, 0.05f, 5}}) {
    SCOPED_TRACE(::testing::Message() << "T " << o.temperature << " top_k " << o.top_k << " top_p "
                                      << o.top_p << " min_p " << o.min_p);
    GpuSampler s(o);
    const auto tokens = draw(s, dx, n, vocab, 77);
    std::vector<int> count(size_t(vocab), 0);
    for (int32_t t : tokens) {
      ASSERT_GE(t, 0);
      ASSERT_LT(t, vocab);
      ++count[size_t(t)];
    }
    const auto p = reference(small, o);
    for (int i = 0; i < vocab; ++i) {
      const double mean = n * p[size_t(i)];
      const double sigma = std::sqrt(n * p[size_t(i)] * (1.0 - p[size_t(i)]));
      if (p[size_t(i)] == 0.0) {
        EXPECT_EQ(count[size_t(i)], 0) << "removed token " << i;
      } else {
        EXPECT_NEAR(count[size_t(i)], mean, 5.0 * sigma + 1.0) << "token " << i << " p " << p[size_t(i)];
      }
    }
  }
}

TEST(CudaSampling, NanRowGivesMinusOne) {
  ZC_REQUIRE_GPU();
  std::vector<float> x = {0.5f, 1.0f, 2.0f, 0.1f, std::numeric_limits<float>::quiet_NaN(), 3.0f};
  auto dx = dev(x);
  for (const GpuSampling& o : {GpuSampling{}, GpuSampling{1.0f, 2, 0.9f, 0.0f, 3}}) {
    GpuSampler s(o);
    const auto got = draw(s, dx, 2, 3, 0);  // row 0 clean, row 1 has the NaN
    EXPECT_EQ(got[1], -1);
    EXPECT_GE(got[0], 0);
    EXPECT_LT(got[0], 3);
    EXPECT_THROW(s.distribution(dx.get() + 3, 3), zc::Error);
  }
}

// Option and shape checks happen before any CUDA call: these need no GPU.
TEST(CudaSampling, BadOptionsAreErrors) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_THROW(GpuSampler(GpuSampling{nan, 0, 1.0f, 0.0f, 0}), zc::Error);
  EXPECT_THROW(GpuSampler(GpuSampling{inf, 0, 1.0f, 0.0f, 0}), zc::Error);
  EXPECT_THROW(GpuSampler(GpuSampling{1.0f, 0, 0.0f, 0.0f, 0}), zc::Error);
  EXPECT_THROW(GpuSampler(GpuSampling{1.0f, 0, -0.5f, 0.0f, 0}), zc::Error);
  EXPECT_THROW(GpuSampler(GpuSampling{1.0f, 0, nan, 0.0f, 0}), zc::Error);
  EXPECT_THROW(GpuSampler(GpuSampling{1.0f, 0, 1.0f, -0.1f, 0}), zc::Error);
  EXPECT_THROW(GpuSampler(GpuSampling{1.0f, 0, 1.0f, 1.5f, 0}), zc::Error);
  EXPECT_THROW(GpuSampler(GpuSampling{1.0f, 0, 1.0f, nan, 0}), zc::Error);
  EXPECT_NO_THROW(GpuSampler(GpuSampling{1.0f, -3, 2.0f, 1.0f, 0}));  // off values are fine
  GpuSampler s(GpuSampling{1.0f, 0, 1.0f, 0.0f, 0});
  float* f = reinterpret_cast<float*>(16);
  int32_t* o = reinterpret_cast<int32_t*>(16);
  EXPECT_THROW(s.sample(f, 1, 0, 0, o), zc::Error);
  EXPECT_THROW(s.sample(f, -1, 8, 0, o), zc::Error);
  EXPECT_THROW(s.sample(nullptr, 1, 8, 0, o), zc::Error);
  EXPECT_THROW(s.sample(f, 1, 8, 0, nullptr), zc::Error);
  EXPECT_NO_THROW(s.sample(nullptr, 0, 8, 0, nullptr));
}

}  // namespace
