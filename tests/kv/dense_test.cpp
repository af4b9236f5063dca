// fp16 and fp32 policies against double-precision softmax attention: prefill (exact
// k/v), decode (over what they store), prefill into a non-empty cache, grouped-query
// attention, the sliding window, snapshots and memory.
#include <gtest/gtest.h>

#include "core/error.h"
#include "kv_reference.h"

namespace zc::kv {
namespace {

using zc_test::Dims;

struct Case {
  int T;
  Dims dims;
};

const Case kCases[] = {
    {1, {1, 1, 64}},  {2, {2, 1, 128}},  {7, {8, 8, 17}},  {33, {16, 2, 64}},
    {150, {4, 4, 128}}, {300, {8, 1, 64}}, {33, {3, 3, 5}}, {7, {6, 2, 128}},
};

KvShape shape_of(const Dims& d, int window = 0) {
  KvShape s;
  s.n_heads = d.H, s.n_kv_heads = d.n_kv, s.head_dim = d.d, s.sliding_window = window;
  return s;
}

// The stored (fp16-rounded) tokens, except the exact ones from `exact_from` on.
zc_test::Store fp16_store(const zc_test::Tokens& x, int n, int exact_from) {
  auto s = zc_test::store_from_tokens(x, n, true);
  const auto e = zc_test::store_from_tokens(x, n, false);
  for (int h = 0; h < s.n_kv; ++h)
    for (int j = exact_from; j < n; ++j)
      for (int c = 0; c < s.d; ++c) {
        s.k[(size_t(h) * n + j) * s.d + c] = e.kr(h, j)[c];
        s.v[(size_t(h) * n + j) * s.d + c] = e.vr(h, j)[c];
      }
  return s;
}

TEST(DenseCache, Fp16PrefillAndDecodeMatchDoubleAttention) {
  uint64_t seed = 1;
  for (const auto& c : kCases) {
    SCOPED_TRACE(testing::Message() << "T=" << c.T << " H=" << c.dims.H << " kv=" << c.dims.n_kv
                                    << " d=" << c.dims.d);
    const int steps = 5;
    const auto x = zc_test::random_tokens(c.T + steps, c.dims, seed++);
    auto cache = make_cache(parse_method("fp16"), shape_of(c.dims));
    const size_t qsz = size_t(c.dims.H) * c.dims.d;
    std::vector<float> out(size_t(c.T) * qsz);
    cache->prefill(x.qt(0), x.kt(0), x.vt(0), c.T, out.data());
    // Prefill attention uses the exact k/v given.
    const auto exact = zc_test::store_from_tokens(x, c.T, false);
    for (int t = 0; t < c.T; ++t) {
      zc_test::expect_close(&out[size_t(t) * qsz], zc_test::attend(x.qt(t), c.dims, exact, t + 1),
                            2e-5, "prefill");
    }
    for (int s = 0; s < steps; ++s) {
      const int t = c.T + s;
      std::vector<float> o(qsz);
      cache->append(x.qt(t), x.kt(t), x.vt(t), o.data());
      // Decode reads the stored fp16 keys and values: tight against the rounded
      // reference, loose against the exact one (fp16 rounding only).
      const auto stored = zc_test::store_from_tokens(x, t + 1, true);
      zc_test::expect_close(o.data(), zc_test::attend(x.qt(t), c.dims, stored, t + 1), 2e-5,
                            "decode vs fp16");
      const auto ex = zc_test::store_from_tokens(x, t + 1, false);
      zc_test::expect_close(o.data(), zc_test::attend(x.qt(t), c.dims, ex, t + 1), 1e-2,
                            "decode vs exact");
    }
    EXPECT_EQ(cache->length(), c.T + steps);
    const auto m = cache->memory();
    const size_t L = size_t(c.T + steps);
    EXPECT_EQ(m.tokens_seen, L);
    EXPECT_EQ(m.tokens_kept, L);
    EXPECT_EQ(m.window_bytes, 2 * 2 * size_t(c.dims.n_kv) * c.dims.d * L);
    EXPECT_EQ(m.fp16_bytes, m.window_bytes);
    EXPECT_EQ(m.code_bytes + m.param_bytes + m.metadata_bytes, 0u);
    EXPECT_DOUBLE_EQ(m.ratio(), 1.0);
    EXPECT_DOUBLE_EQ(m.bits_per_value(), 16.0);
  }
}

TEST(DenseCache, PrefillIntoANonEmptyCache) {
  const Dims dims{8, 2, 64};
  const auto x = zc_test::random_tokens(40, dims, 77);
  for (const char* spec : {"fp16", "fp32"}) {
    SCOPED_TRACE(spec);
    const bool half = std::string(spec) == "fp16";
    auto cache = make_cache(parse_method(spec), shape_of(dims));
    const size_t qsz = size_t(dims.H) * dims.d;
    std::vector<float> out(40 * qsz);
    cache->prefill(x.qt(0), x.kt(0), x.vt(0), 13, out.data());
    cache->prefill(x.qt(13), x.kt(13), x.vt(13), 27, out.data());
    // Tokens 0..12 as stored, 13..39 exact.
    const auto s = half ? fp16_store(x, 40, 13) : zc_test::store_from_tokens(x, 40, false);
    for (int t = 13; t < 40; ++t) {
      zc_test::expect_close(&out[size_t(t - 13) * qsz], zc_test::attend(x.qt(t), dims, s, t + 1),
                            2e-5, "second prefill");
    }
  }
}

TEST(DenseCache, SnapshotHoldsTheStoredValues) {
  const Dims dims{4, 2, 17};
  const auto x = zc_test::random_tokens(9, dims, 5);
  for (const char* spec : {"fp16", "fp32"}) {
    const bool half = std::string(spec) == "fp16";
    auto cache = make_cache(parse_method(spec), shape_of(dims));
    std::vector<float> out(9 * size_t(dims.H) * dims.d);
    cache->prefill(x.qt(0), x.kt(0), x.vt(0), 6, out.data());
    for (int t = 6; t < 9; ++t) cache->append(x.qt(t), x.kt(t), x.vt(t), out.data());
    const auto snap = cache->snapshot();
    ASSERT_EQ(snap.length, 9);
    ASSERT_EQ(snap.n_kv_heads, 2);
    ASSERT_EQ(snap.head_dim, 17);
    for (int h = 0; h < 2; ++h)
      for (int t = 0; t < 9; ++t) {
        EXPECT_EQ(snap.bits[size_t(h) * 9 + t], half ? 16 : 32);
        for (int c = 0; c < 17; ++c) {
          const float k = x.kt(t)[h * 17 + c], v = x.vt(t)[h * 17 + c];
          EXPECT_EQ(snap.k[(size_t(h) * 9 + t) * 17 + c], half ? round_to_half(k) : k);
          EXPECT_EQ(snap.v[(size_t(h) * 9 + t) * 17 + c], half ? round_to_half(v) : v);
        }
      }
    const auto m = cache->memory();
    EXPECT_EQ(m.window_bytes, (half ? 2u : 4u) * 2 * 2 * 17 * 9);
    EXPECT_DOUBLE_EQ(m.ratio(), half ? 1.0 : 0.5);
  }
}

TEST(DenseCache, Fp32DecodeIsExact) {
  const Dims dims{6, 3, 32};
  const auto x = zc_test::random_tokens(20, dims, 9);
  auto cache = make_cache(parse_method("fp32"), shape_of(dims));
  std::vector<float> out(20 * size_t(dims.H) * dims.d);
  cache->prefill(x.qt(0), x.kt(0), x.vt(0), 10, out.data());
  for (int t = 10; t < 20; ++t) {
    std::vector<float> o(size_t(dims.H) * dims.d);
    cache->append(x.qt(t), x.kt(t), x.vt(t), o.data());
    const auto s = zc_test::store_from_tokens(x, t + 1, false);
    zc_test::expect_close(o.data(), zc_test::attend(x.qt(t), dims, s, t + 1), 2e-5, "fp32 decode");
  }
}

TEST(DenseCache, SlidingWindowSeesOnlyTheLastWTokensAndFreesTheRest) {
  const Dims dims{4, 2, 64};
  const int W = 5;
  const auto x = zc_test::random_tokens(30, dims, 11);
  auto cache = make_cache(parse_method("fp16"), shape_of(dims, W));
  const size_t qsz = size_t(dims.H) * dims.d;
  std::vector<float> out(30 * qsz);
  cache->prefill(x.qt(0), x.kt(0), x.vt(0), 12, out.data());
  const auto exact = zc_test::store_from_tokens(x, 12, false);
  for (int t = 0; t < 12; ++t) {
    zc_test::expect_close(&out[size_t(t) * qsz],
                          zc_test::attend(x.qt(t), dims, exact, t + 1, std::max(0, t - W + 1)),
                          2e-5, "window prefill");
  }
  EXPECT_EQ(cache->memory().tokens_kept, size_t(W - 1));
  for (int t = 12; t < 20; ++t) {
    std::vector<float> o(qsz);
    cache->append(x.qt(t), x.kt(t), x.vt(t), o.data());
    const auto s = zc_test::store_from_tokens(x, t + 1, true);
    zc_test::expect_close(o.data(), zc_test::attend(x.qt(t), dims, s, t + 1, t - W + 1), 2e-5,
                          "window decode");
    const auto m = cache->memory();
    EXPECT_EQ(m.tokens_kept, size_t(W - 1));
    EXPECT_EQ(m.window_bytes, size_t(W - 1) * 2 * 2 * 2 * 64);
    EXPECT_EQ(m.tokens_seen, size_t(t + 1));
  }
  // A prefill on top: its queries see the stored tokens still inside their window.
  cache->prefill(x.qt(20), x.kt(20), x.vt(20), 10, out.data());
  const auto s = fp16_store(x, 30, 20);
  for (int t = 20; t < 30; ++t) {
    zc_test::expect_close(&out[size_t(t - 20) * qsz],
                          zc_test::attend(x.qt(t), dims, s, t + 1, t - W + 1), 2e-5,
                          "window second prefill");
  }
  const auto snap = cache->snapshot();
  for (int t = 0; t < 30; ++t) EXPECT_EQ(snap.bits[t], t >= 30 - (W - 1) ? 16 : 0) << t;
}

TEST(DenseCache, RejectsBadShapesAndCalls) {
  const auto bad = [](KvShape s) { EXPECT_THROW(make_cache(parse_method("fp16"), s), Error); };
  bad({0, 1, 64, 0.0f, 0});
  bad({4, 3, 64, 0.0f, 0});
  bad({4, 2, 0, 0.0f, 0});
  bad({4, 2, 64, -1.0f, 0});
  bad({4, 2, 64, 0.0f, -3});
  auto cache = make_cache(parse_method("fp16"), {2, 1, 8, 0.0f, 0});
  std::vector<float> buf(64, 0.0f);
  EXPECT_THROW(cache->prefill(buf.data(), buf.data(), buf.data(), 0, buf.data()), Error);
  EXPECT_THROW(cache->append(nullptr, buf.data(), buf.data(), buf.data()), Error);
}

}  // namespace
}  // namespace zc::kv
