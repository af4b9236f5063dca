// GPU draws (cuda/model/sampling.h) against a double-precision reference of HF's rule
// written here (temperature, the whole vocabulary sorted with ties by id, top-k, top-p,
// min-p, renormalize) and the walk in id order to the uniform, which is what
// engine::Sampler draws: the kept probabilities within 1e-5 relative, the same tokens
// kept, and the drawn token that walk's unless u lies within 1e-6 of a boundary. Many
// vocabularies (1 to Qwen's 151936) and shapes (peaked, flat, tied, masked), rows with
// their own options in one launch, NaN and infinite rows, the same token whatever the
// batch, the same draws by every count of CTAs per row (thread block clusters of 1 to 16
// CTAs), and the checks of bad draws.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include "common/sampling_reference.h"
#include "core/error.h"
#include "core/rng.h"
#include "cuda/model/sampling.h"
#include "gpu_test.h"

using zc::cuda::DeviceBuffer;
using zc::cuda::GpuDraw;
using zc::cuda::GpuSampler;

namespace {

using zc_test::dev;

std::vector<double> reference(const std::vector<float>& logits, const GpuDraw& d) {
  return zc_test::hf_sampling_reference(logits, d.temperature, d.top_k, d.top_p, d.min_p);
}

// The walk in id order to u; *margin: how far u lies from the nearest boundary of the
// cumulative probabilities around the token.
int32_t walk(const std::vector<double>& p, double u, double* margin) {
  double below = 0;
  int32_t last = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    last = int32_t(i);
    if (u < below + p[i]) {
      *margin = std::min(u - below, below + p[i] - u);
      return int32_t(i);
    }
    below += p[i];
  }
  *margin = 0;
  return last;
}

using zc_test::shaped_logits;

// The counts of CTAs per row to draw with: automatic, one, and clusters of an odd size,
// the portable largest and the non-portable largest, those the GPU's clusters hold.
std::vector<int> ctas_counts() {
  int device = 0, clusters = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&clusters, cudaDevAttrClusterLaunch, device) != cudaSuccess)
    clusters = 0;
  std::vector<int> counts = {0, 1};
  for (const int c : {3, 8, 16}) {
    if (!clusters) break;
    GpuSampler probe;
    probe.set_ctas_per_row(c);
    try {
      (void)probe.ctas_per_row(1, 1 << 17);
      counts.push_back(c);
    } catch (const zc::Error& e) {
      std::printf("[note] %s: not drawn with\n", e.what());
    }
  }
  return counts;
}

// f() once per count of ctas_counts(), with s drawing by it.
template <class F>
void by_every_group_size(GpuSampler& s, const F& f) {
  for (const int ctas : ctas_counts()) {
    SCOPED_TRACE("CTAs per row " + std::to_string(ctas));
    s.set_ctas_per_row(ctas);
    f();
  }
}

// n logits on a grid of `levels` values `step` apart: runs of ties at every value.
std::vector<float> grid_logits(zc::Rng& rng, size_t n, int levels, float step) {
  std::vector<float> logits(n);
  for (auto& v : logits) v = float(rng.integer(0, levels)) * step;
  return logits;
}

GpuDraw random_draw(zc::Rng& rng, size_t n, int32_t row) {
  GpuDraw d;
  d.row = row;
  d.temperature = float(0.3 + 1.4 * rng.uniform());
  const int64_t ks[] = {0, 0, 1, 40, int64_t(n), int64_t(n) + 5, 1000};
  d.top_k = int32_t(ks[rng.integer(0, 6)]);
  const float ps[] = {1.0f, 1.0f, 0.5f, 0.9f, 0.95f, 0.999f};
  d.top_p = ps[rng.integer(0, 5)];
  d.min_p = rng.uniform() < 0.5 ? 0.0f : float(0.2 * rng.uniform());
  d.u = rng.uniform();
  return d;
}

std::string describe(const GpuDraw& d, size_t n, int shape) {
  return ::testing::PrintToString(n) + " tokens, shape " + std::to_string(shape) + ", T " +
         std::to_string(d.temperature) + ", top_k " + std::to_string(d.top_k) + ", top_p " +
         std::to_string(d.top_p) + ", min_p " + std::to_string(d.min_p) + ", u " + std::to_string(d.u);
}

void expect_distribution(GpuSampler& s, const std::vector<float>& logits, const GpuDraw& d, int shape) {
  SCOPED_TRACE(describe(d, logits.size(), shape));
  auto dx = dev(logits);
  int32_t token = -9;
  const auto got = s.distribution(dx.get(), int(logits.size()), d, &token);
  const auto want = reference(logits, d);
  ASSERT_EQ(got.size(), want.size());
  size_t wrong = 0, first = want.size();
  for (size_t i = 0; i < want.size(); ++i) {
    // Terms in float (~1e-7 relative to |argument| <= 32), fixed point at 2^-45: 1e-5.
    if ((got[i] == 0) != (want[i] == 0) || std::abs(got[i] - want[i]) > 1e-5 * want[i] + 1e-13) {
      if (wrong++ == 0) first = i;
    }
  }
  EXPECT_EQ(wrong, 0u) << "first at token " << first << ": " << (first < got.size() ? got[first] : 0) << " vs "
                       << (first < want.size() ? want[first] : 0);
  double margin = 0;
  const int32_t expect = walk(want, d.u, &margin);
  if (margin > 1e-6) {
    EXPECT_EQ(token, expect) << "margin " << margin;
  }
}

TEST(CudaSampling, DistributionsAndDrawsMatchTheDoubleReference) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(41);
  GpuSampler s;
  const auto counts = ctas_counts();
  size_t next = 0;
  for (const size_t n : {size_t(1), size_t(2), size_t(7), size_t(1000), size_t(32000), size_t(128256),
                         size_t(151936)}) {
    for (int shape = 0; shape < 4; ++shape) {
      const auto logits = shaped_logits(rng, n, shape);
      for (int combo = 0; combo < (n >= 32000 ? 3 : 8); ++combo) {
        const int ctas = counts[next++ % counts.size()];
        SCOPED_TRACE("CTAs per row " + std::to_string(ctas));
        s.set_ctas_per_row(ctas);
        expect_distribution(s, logits, random_draw(rng, n, 0), shape);
      }
    }
  }
  // Every filter alone and the CLI's defaults, at Llama 3's vocabulary.
  const auto peaked = shaped_logits(rng, 128256, 0), tied = shaped_logits(rng, 128256, 2);
  for (const auto& logits : {peaked, tied}) {
    s.set_ctas_per_row(counts[next++ % counts.size()]);
    SCOPED_TRACE("CTAs per row " + std::to_string(s.ctas_per_row(1, 128256)));
    expect_distribution(s, logits, GpuDraw{0, 1.0f, 0, 1.0f, 0.0f, 0.37}, 0);
    expect_distribution(s, logits, GpuDraw{0, 1.0f, 40, 1.0f, 0.0f, 0.37}, 0);
    expect_distribution(s, logits, GpuDraw{0, 1.0f, 0, 0.9f, 0.0f, 0.37}, 0);
    expect_distribution(s, logits, GpuDraw{0, 1.0f, 0, 1.0f, 0.05f, 0.37}, 0);
    expect_distribution(s, logits, GpuDraw{0, 0.8f, 40, 0.95f, 0.05f, 0.37}, 0);
  }
}

// 256k logits on a coarse grid: the top-k and top-p cuts fall inside runs of ties, which
// keep their lowest ids (the CPU's stable sort).
TEST(CudaSampling, CutsInsideRunsOfTies) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(42);
  GpuSampler s;
  const auto logits = grid_logits(rng, 262144, 400, 0.05f);
  by_every_group_size(s, [&] {
    for (int k : {1, 50, 333, 1024, 5000}) expect_distribution(s, logits, GpuDraw{0, 1.0f, k, 1.0f, 0.0f, 0.5}, 2);
    for (float p : {0.001f, 0.3f, 0.9f}) expect_distribution(s, logits, GpuDraw{0, 1.0f, 0, p, 0.0f, 0.25}, 2);
    expect_distribution(s, logits, GpuDraw{0, 0.8f, 100, 0.9f, 0.02f, 0.75}, 2);
  });
}

// The same on rows of 5000: all equal (every cut inside the one run of ties), and a spike
// among -inf. (Small enough for compute-sanitizer's racecheck of the CTA groups.)
TEST(CudaSampling, CutsInsideRunsOfTiesOnSmallRows) {
  ZC_REQUIRE_GPU();
  GpuSampler s;
  const std::vector<float> equal(5000, 1.5f);
  std::vector<float> spike(5000, -std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < spike.size(); i += 3) spike[i] = -float(i) * 1e-3f;
  spike[4321] = 5.0f;
  by_every_group_size(s, [&] {
    // (top-p not at a multiple of 1/5000: there the double reference's running sum falls
    // a rounding short of the exact one and keeps one tie more.)
    for (int k : {0, 1, 7, 4999}) expect_distribution(s, equal, GpuDraw{0, 1.0f, k, 0.4321f, 0.0f, 0.6}, 2);
    expect_distribution(s, spike, GpuDraw{0, 1.0f, 0, 0.999f, 0.0f, 0.999}, 3);
    expect_distribution(s, spike, GpuDraw{0, 2.0f, 20, 1.0f, 0.0f, 0.1}, 3);
  });
}

// One draw with both selects and a cut inside a run of ties, by each count of CTAs per
// row: the smallest case of the groups' exchanges, for compute-sanitizer's racecheck
// (which takes minutes over the tests above).
TEST(CudaSampling, OneDrawByEveryGroupSize) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(46);
  GpuSampler s;
  const auto logits = grid_logits(rng, 3001, 60, 0.1f);
  by_every_group_size(s, [&] { expect_distribution(s, logits, GpuDraw{0, 1.0f, 120, 0.7f, 0.01f, 0.3}, 2); });
}

// One launch over rows of their own logits and options, some rows not drawn: each
// drawn row's token is its walk's, the others untouched; NaN, +inf and all -inf rows
// give -1, -2, -2; a row's token is the same alone and in any batch, and by any count of
// CTAs per row.
TEST(CudaSampling, RowsOfABatchDrawOnTheirOwn) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(43);
  GpuSampler s;
  const auto counts = ctas_counts();
  size_t next = 0;
  for (const int vocab : {3, 1000, 128256}) {
    const int rows = 37;
    std::vector<float> x;
    std::vector<std::vector<float>> row(static_cast<size_t>(rows));
    for (int r = 0; r < rows; ++r) {
      row[size_t(r)] = shaped_logits(rng, size_t(vocab), r % 4);
      x.insert(x.end(), row[size_t(r)].begin(), row[size_t(r)].end());
    }
    const float inf = std::numeric_limits<float>::infinity();
    x[size_t(5) * size_t(vocab) + size_t(vocab / 2)] = std::nanf("");
    x[size_t(6) * size_t(vocab) + size_t(vocab - 1)] = inf;
    std::fill(x.begin() + long(7) * vocab, x.begin() + long(8) * vocab, -inf);
    auto dx = dev(x);
    std::vector<GpuDraw> draws;
    for (int r = rows - 1; r >= 0; --r) {  // out of row order
      if (r % 5 == 4) continue;        // not drawn
      draws.push_back(random_draw(rng, size_t(vocab), r));
    }
    DeviceBuffer<int32_t> out(static_cast<size_t>(rows));
    out.fill_bytes(0x7f);
    s.set_ctas_per_row(0);
    s.draw(dx.get(), rows, vocab, draws, out.get());
    const auto got = zc_test::sync_download(out);
    for (const GpuDraw& d : draws) {
      SCOPED_TRACE(describe(d, size_t(vocab), d.row % 4) + ", row " + std::to_string(d.row));
      const int32_t t = got[size_t(d.row)];
      if (d.row == 5) {
        EXPECT_EQ(t, -1);
      } else if (d.row == 6 || d.row == 7) {
        EXPECT_EQ(t, -2);
      } else {
        double margin = 0;
        const int32_t want = walk(reference(row[size_t(d.row)], d), d.u, &margin);
        if (margin > 1e-6) {
          EXPECT_EQ(t, want) << "margin " << margin;
        }
        // Alone, the same token, whatever the count of CTAs drawing it.
        const int ctas = counts[next++ % counts.size()];
        SCOPED_TRACE("alone, CTAs per row " + std::to_string(ctas));
        s.set_ctas_per_row(ctas);
        DeviceBuffer<int32_t> one(static_cast<size_t>(rows));
        GpuDraw alone = d;
        s.draw(dx.get(), rows, vocab, std::vector<GpuDraw>{alone}, one.get());
        EXPECT_EQ(zc_test::sync_download(one)[size_t(d.row)], t);
        s.set_ctas_per_row(0);
      }
    }
    for (int r = 4; r < rows; r += 5) EXPECT_EQ(got[size_t(r)], 0x7f7f7f7f) << "row " << r << " was not drawn";
  }
}

// 20000 draws of one small row with u from a seeded generator: the frequencies follow
// the reference probabilities within five sigma.
TEST(CudaSampling, FrequenciesFollowTheReference) {
  ZC_REQUIRE_GPU();
  const std::vector<float> small = {1.0f, 2.5f, 0.2f, 2.5f, -1.0f, 1.8f, 0.9f, 3.0f};
  const int n = 20000, vocab = int(small.size());
  std::vector<float> x;
  for (int r = 0; r < n; ++r) x.insert(x.end(), small.begin(), small.end());
  auto dx = dev(x);
  GpuSampler s;
  zc::Rng rng(44);
  for (const GpuDraw& o : {GpuDraw{0, 1.0f, 0, 1.0f, 0.0f, 0}, GpuDraw{0, 0.7f, 5, 1.0f, 0.0f, 0},
                           GpuDraw{0, 1.3f, 0, 0.8f, 0.0f, 0}, GpuDraw{0, 1.0f, 0, 1.0f, 0.1f, 0},
                           GpuDraw{0, 2.0f, 6, 0.9f, 0.05f, 0}}) {
    SCOPED_TRACE(describe(o, small.size(), -1));
    std::vector<GpuDraw> draws(size_t(n), o);
    for (int r = 0; r < n; ++r) draws[size_t(r)].row = r, draws[size_t(r)].u = rng.uniform();
    DeviceBuffer<int32_t> out(static_cast<size_t>(n));
    s.draw(dx.get(), n, vocab, draws, out.get());
    const auto tokens = zc_test::sync_download(out);
    std::vector<int> count(size_t(vocab), 0);
    for (int32_t t : tokens) {
      ASSERT_GE(t, 0);
      ASSERT_LT(t, vocab);
      ++count[size_t(t)];
    }
    const auto p = reference(small, o);
    for (int i = 0; i < vocab; ++i) {
      const double mean = n * p[size_t(i)], sigma = std::sqrt(n * p[size_t(i)] * (1.0 - p[size_t(i)]));
      if (p[size_t(i)] == 0.0)
        EXPECT_EQ(count[size_t(i)], 0) << "removed token " << i;
      else
        EXPECT_NEAR(count[size_t(i)], mean, 5.0 * sigma + 1.0) << "token " << i << " p " << p[size_t(i)];
    }
  }
}

// Time per launch of 8 rows of Llama 3's vocabulary (ZC_TIMING=1 prints it; the figure
// for docs/benchmarks.md, not a check).
TEST(CudaSampling, TimingLlama3Vocab) {
  ZC_REQUIRE_GPU();
  if (!std::getenv("ZC_TIMING")) GTEST_SKIP() << "timing: set ZC_TIMING=1";
  zc::Rng rng(45);
  const int rows = 8, vocab = 128256;
  std::vector<float> x;
  for (int r = 0; r < rows; ++r) {
    const auto row = shaped_logits(rng, size_t(vocab), 0);
    x.insert(x.end(), row.begin(), row.end());
  }
  auto dx = dev(x);
  DeviceBuffer<int32_t> out(static_cast<size_t>(rows));
  GpuSampler s;
  const struct {
    const char* name;
    GpuDraw d;
  } cases[] = {{"T 1 (OpenAI's default)", {0, 1.0f, 0, 1.0f, 0.0f, 0.5}},
               {"top-p 0.9", {0, 1.0f, 0, 0.9f, 0.0f, 0.5}},
               {"CLI defaults (T 0.8, top-k 40, top-p 0.95, min-p 0.05)", {0, 0.8f, 40, 0.95f, 0.05f, 0.5}}};
  for (const int ctas : ctas_counts()) {
    s.set_ctas_per_row(ctas);
    for (const auto& c : cases) {
      std::vector<GpuDraw> draws(size_t(rows), c.d);
      for (int r = 0; r < rows; ++r) draws[size_t(r)].row = r;
      const auto ms = zc_test::event_times_ms(50, 5, [&](int) { s.draw(dx.get(), rows, vocab, draws, out.get()); });
      std::printf("[timing] GpuSampler::draw, %d rows x %d, %d CTAs a row, %s: median %.1f us (min %.1f)\n", rows,
                  vocab, s.ctas_per_row(rows, vocab), c.name, 1e3 * ms[ms.size() / 2], 1e3 * ms.front());
    }
  }
}

// The draws' checks come before any CUDA call: these need no GPU.
TEST(CudaSampling, BadDrawsAreErrors) {
  GpuSampler s;
  float* f = reinterpret_cast<float*>(16);
  int32_t* o = reinterpret_cast<int32_t*>(16);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const GpuDraw ok{0, 1.0f, 0, 1.0f, 0.0f, 0.5};
  const auto bad = [&](GpuDraw d) {
    EXPECT_THROW(s.draw(f, 2, 8, std::vector<GpuDraw>{d}, o), zc::Error);
  };
  for (float t : {0.0f, -1.0f, nan, inf}) bad(GpuDraw{0, t, 0, 1.0f, 0.0f, 0.5});
  for (float p : {0.0f, -0.5f, 1.5f, nan}) bad(GpuDraw{0, 1.0f, 0, p, 0.0f, 0.5});
  for (float m : {-0.1f, 1.5f, nan}) bad(GpuDraw{0, 1.0f, 0, 1.0f, m, 0.5});
  for (double u : {-0.1, 1.0, 2.0, double(nan)}) bad(GpuDraw{0, 1.0f, 0, 1.0f, 0.0f, u});
  for (int32_t r : {-1, 2}) bad(GpuDraw{r, 1.0f, 0, 1.0f, 0.0f, 0.5});
  EXPECT_THROW(s.draw(f, 2, 8, std::vector<GpuDraw>{ok, ok}, o), zc::Error);  // row 0 twice
  EXPECT_THROW(s.draw(f, 2, 0, std::vector<GpuDraw>{ok}, o), zc::Error);
  EXPECT_THROW(s.draw(f, -1, 8, std::vector<GpuDraw>{ok}, o), zc::Error);
  EXPECT_THROW(s.draw(nullptr, 2, 8, std::vector<GpuDraw>{ok}, o), zc::Error);
  EXPECT_THROW(s.draw(f, 2, 8, std::vector<GpuDraw>{ok}, nullptr), zc::Error);
  EXPECT_NO_THROW(s.draw(nullptr, 0, 8, {}, nullptr));  // nothing to draw
  EXPECT_THROW(s.distribution(nullptr, 8, ok), zc::Error);
  EXPECT_THROW(s.distribution(f, 0, ok), zc::Error);
  EXPECT_THROW(s.set_ctas_per_row(-1), zc::Error);
  EXPECT_THROW(s.set_ctas_per_row(17), zc::Error);
}

}  // namespace
