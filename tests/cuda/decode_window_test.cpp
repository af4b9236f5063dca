// ZipCache's streaming saliency inside GPU decode attention (WindowSums in
// cuda/kv/decode_attention.h) against double precision: after a call, each fp16 window
// token's sum has grown by the softmax probability it received, summed over the g query
// heads of its KV head (SPEC.md section 4, the accumulated attention of the streaming
// window). Windows of 1..cap tokens starting on a page boundary after quantized blocks
// (or alone: the fp16-only kernel), groups 1..8, head_dim 64/128/256, forced and
// automatic splits; two calls in a row (the merge's arrival counters must be ready for
// the next call) and tokens past the window untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "cuda/kv/decode_attention.h"
#include "gpu_test.h"
#include "kv_fixture.h"

namespace {

using zc::cuda::DeviceBuffer;

struct WindowCase {
  int batch, n_heads, n_kv, d;
  std::vector<int> prefix;  // quantized tokens before the window, per sequence (cycled)
  std::vector<int> window;  // fp16 window tokens, per sequence (cycled)
  int cap;                  // tracked window capacity (tokens past it are not tracked)
  int splits;               // 0: auto
  int whole = -1;           // >= 0: a plan (SplitPlan) of `whole` whole pairs, the rest `splits` each
};

// Probability of every row for head j's query, in double.
std::vector<double> probabilities(const zc_test::RefRows& ref, const float* q, int d) {
  std::vector<double> s(size_t(ref.rows));
  double m = -INFINITY;
  for (int t = 0; t < ref.rows; ++t) {
    double dot = 0.0;
    for (int c = 0; c < d; ++c) dot += double(q[c]) * double(ref.k[size_t(t) * size_t(d) + size_t(c)]);
    s[size_t(t)] = dot / std::sqrt(double(d));
    m = std::max(m, s[size_t(t)]);
  }
  double l = 0.0;
  for (double& x : s) l += (x = std::exp(x - m));
  for (double& x : s) x /= l;
  return s;
}

void run_window_case(const WindowCase& cs, zc::Rng& rng) {
  using zc::quant::Scheme;
  const int g = cs.n_heads / cs.n_kv, d = cs.d, lists = cs.batch * cs.n_kv;
  SCOPED_TRACE(::testing::Message() << "batch " << cs.batch << ", heads " << cs.n_heads << "/" << cs.n_kv
                                    << ", d " << d << ", cap " << cs.cap << ", splits " << cs.splits
                                    << ", whole pairs " << cs.whole);
  zc::cuda::PagedKvBuilder b(d);
  std::vector<zc_test::RefRows> refs;
  std::vector<int32_t> first_page(size_t(cs.batch)), count(size_t(cs.batch));
  for (int s = 0; s < cs.batch; ++s) {
    const int prefix = cs.prefix[size_t(s) % cs.prefix.size()];
    const int window = cs.window[size_t(s) % cs.window.size()];
    count[size_t(s)] = window;
    for (int h = 0; h < cs.n_kv; ++h) {
      // Every KV head of a sequence has the same layout, as in the cache: salient and
      // regular blocks, then the window from slot 0 of a page on.
      zc_test::RefRows ref;
      ref.d = d;
      b.begin_list();
      const int salient = prefix * 2 / 5;
      zc_test::add_quant(b, ref, rng, salient, 4, 4, Scheme::Cstq);
      zc_test::add_quant(b, ref, rng, prefix - salient, 2, 2, Scheme::Cstq);
      first_page[size_t(s)] = b.offsets().back() - b.offsets()[size_t(b.lists() - 1)];
      zc_test::add_fp16(b, ref, rng, window);
      refs.push_back(std::move(ref));
    }
  }
  const zc::cuda::DevicePagedKv kv = zc::cuda::upload(b);
  std::vector<float> q(size_t(cs.batch) * size_t(cs.n_heads) * size_t(d));
  for (float& x : q) x = rng.normal();
  // Sums start from arbitrary values: the call adds to them.
  std::vector<float> sums0(size_t(lists) * size_t(cs.cap));
  for (float& x : sums0) x = rng.uniform();
  DeviceBuffer<float> dq, dout(q.size()), dsums, dscores(size_t(lists) * size_t(g) * size_t(zc::cuda::window_scores_stride(cs.cap)));
  DeviceBuffer<float> dml(size_t(lists) * size_t(g) * 2);
  DeviceBuffer<unsigned> darrivals{size_t(lists)};
  DeviceBuffer<int32_t> dfirst, dcount;
  dq.upload(q), dsums.upload(sums0), dfirst.upload(first_page), dcount.upload(count);
  darrivals.fill_bytes(0);
  zc::cuda::WindowSums window;
  window.first_page = dfirst.get(), window.count = dcount.get(), window.sums = dsums.get();
  window.scores = dscores.get(), window.ml = dml.get(), window.arrivals = darrivals.get(), window.cap = cs.cap;
  zc::cuda::DecodeShape shape;
  shape.batch = cs.batch, shape.n_heads = cs.n_heads, shape.n_kv_heads = cs.n_kv, shape.head_dim = d;
  zc::cuda::DecodeWorkspace ws;
  for (int call = 0; call < 2; ++call) {
    if (cs.whole < 0) {
      (void)zc::cuda::decode_attention(shape, kv.view(), dq.get(), dout.get(), ws, cs.splits, nullptr, nullptr,
                                       nullptr, &window);
    } else {
      (void)zc::cuda::decode_attention(shape, kv.view(), dq.get(), dout.get(), ws,
                                       zc::cuda::SplitPlan{cs.splits, cs.whole}, nullptr, nullptr, nullptr, &window);
    }
  }
  const std::vector<float> sums = zc_test::sync_download(dsums);
  EXPECT_EQ(zc_test::sync_download(darrivals), std::vector<unsigned>(size_t(lists), 0u))
      << "arrival counters not back at zero";

  double worst = 0.0;
  for (int s = 0; s < cs.batch; ++s) {
    for (int h = 0; h < cs.n_kv; ++h) {
      const int list = s * cs.n_kv + h;
      const zc_test::RefRows& ref = refs[size_t(list)];
      std::vector<double> want(size_t(cs.cap), 0.0);
      for (int j = 0; j < g; ++j) {
        const std::vector<double> p = probabilities(ref, &q[(size_t(s) * size_t(cs.n_heads) + size_t(h * g + j)) * size_t(d)], d);
        for (int w = 0; w < std::min(count[size_t(s)], cs.cap); ++w) want[size_t(w)] += 2.0 * p[size_t(ref.rows - count[size_t(s)] + w)];
      }
      for (int w = 0; w < cs.cap; ++w) {
        const size_t at = size_t(list) * size_t(cs.cap) + size_t(w);
        const double got = double(sums[at]) - double(sums0[at]);
        ASSERT_FALSE(std::isnan(got)) << "list " << list << " token " << w;
        if (w >= count[size_t(s)]) {
          ASSERT_EQ(sums[at], sums0[at]) << "list " << list << " token " << w << " is past the window";
        }
        worst = std::max(worst, std::fabs(got - want[size_t(w)]));
      }
    }
  }
  // fp32 softmax and sums of values up to 1 + 2g: a few float ulps.
  EXPECT_LT(worst, 2e-6 * (1 + 2 * g)) << "worst |sum - reference|";
}

TEST(CudaDecodeAttention, WindowSumsMatchDoubleProbabilities) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(7);
  const std::vector<WindowCase> cases = {
      {1, 1, 1, 128, {0}, {1}, 32, 0},                  // one token, fp16 only
      {2, 4, 1, 128, {300, 64}, {31, 33}, 65, 0},        // window across a page edge
      {3, 8, 2, 64, {500}, {1, 64, 100}, 132, 3},        // the default gap's capacity; forced splits
      {2, 32, 8, 128, {4000, 1000}, {128, 7}, 160, 0},   // Llama-3 grouping, long prefix
      {1, 8, 1, 128, {2048}, {97}, 97, 1},               // g 8, one split, a 1-token last page
      {2, 10, 2, 256, {333, 90}, {40, 17}, 64, 0},       // d 256, g 5
      {2, 6, 6, 64, {0, 0}, {70, 5}, 96, 2},             // fp16 only, g 1
      {2, 4, 2, 128, {64, 0}, {90, 40}, 70, 0},          // more window than capacity
      {4, 8, 4, 128, {129, 1, 40, 900}, {32, 1, 65, 127}, 128, 0},
      // Whole pairs (window sums in their CTA) beside split ones (in the merge).
      {4, 8, 4, 128, {129, 1, 40, 900}, {32, 1, 65, 127}, 128, 3, 5},
      {3, 32, 8, 128, {4000, 300, 64}, {100, 7, 33}, 132, 2, 16},
  };
  for (const WindowCase& c : cases) run_window_case(c, rng);
}

TEST(CudaDecodeAttention, IncompleteWindowTrackingIsRefused) {
  const zc::cuda::DevicePagedKv empty;
  zc::cuda::DecodeWorkspace ws;
  zc::cuda::DecodeShape shape;
  shape.batch = 1, shape.n_heads = 4, shape.n_kv_heads = 1, shape.head_dim = 128;
  float dummy = 0.0f;
  zc::cuda::WindowSums window;  // no buffers
  window.cap = 64;
  try {
    (void)zc::cuda::decode_attention(shape, empty.view(), &dummy, &dummy, ws, 0, nullptr, nullptr, nullptr, &window);
    ADD_FAILURE() << "no error for window tracking without buffers";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("window tracking"), std::string::npos) << e.what();
  }
}

}  // namespace
