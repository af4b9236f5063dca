// KIVI (SPEC.md section 2): attention plumbing, which tokens are quantized (the newest
// R..R+G-1 stay fp16), prefill == streaming, error bounds per group, memory.
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "policy_check.h"

namespace zc::kv {
namespace {

using zc_test::Dims;

struct Case {
  int T, steps;
  Dims dims;
  int bits, G, R;
};

const Case kCases[] = {
    {1, 40, {1, 1, 64}, 2, 32, 128},   {2, 10, {2, 1, 128}, 4, 32, 128},
    {7, 30, {8, 8, 64}, 2, 4, 8},      {33, 20, {16, 2, 64}, 4, 8, 16},
    {150, 40, {4, 4, 128}, 2, 32, 32}, {300, 5, {8, 1, 64}, 2, 32, 128},
    {33, 20, {3, 3, 15}, 8, 3, 6},     {7, 12, {6, 2, 64}, 2, 4, 0},
};

MethodConfig kivi(int bits, int G, int R) {
  return parse_method(fmt::format("kivi{}:group={},residual={}", bits == 4 ? 4 : 2, G, R) +
                      (bits == 8 ? ",bits=8" : ""));
}

// Tokens in the fp16 window after n tokens: the streaming rule's fixed point.
int window_after(int n, int G, int R) { return n < R + G ? n : R + (n - R) % G; }

TEST(Kivi, AttentionPlumbingAndBitLayout) {
  uint64_t seed = 100;
  for (const auto& c : kCases) {
    SCOPED_TRACE(testing::Message() << "T=" << c.T << " H=" << c.dims.H << " kv=" << c.dims.n_kv
                                    << " d=" << c.dims.d << " G=" << c.G << " R=" << c.R);
    const auto x = zc_test::random_tokens(c.T + c.steps, c.dims, seed++);
    zc_test::run_policy(kivi(c.bits, c.G, c.R), x, c.T, [&](const Cache& cache) {
      const auto snap = cache.snapshot();
      const int n = snap.length, w = window_after(n, c.G, c.R);
      for (int h = 0; h < c.dims.n_kv; ++h)
        for (int t = 0; t < n; ++t)
          ASSERT_EQ(snap.bits[size_t(h) * n + t], t >= n - w ? 16 : c.bits)
              << "n=" << n << " token " << t;
    });
  }
}

TEST(Kivi, PrefillStoresWhatStreamingWouldStore) {
  const Dims dims{4, 2, 64};
  const auto x = zc_test::random_tokens(100, dims, 3);
  const auto config = kivi(2, 8, 16);
  auto a = make_cache(config, zc_test::shape_of(dims));
  auto b = make_cache(config, zc_test::shape_of(dims));
  std::vector<float> out(100 * size_t(dims.H) * dims.d);
  a->prefill(x.qt(0), x.kt(0), x.vt(0), 100, out.data());
  b->prefill(x.qt(0), x.kt(0), x.vt(0), 1, out.data());
  for (int t = 1; t < 100; ++t) b->append(x.qt(t), x.kt(t), x.vt(t), out.data());
  const auto sa = a->snapshot(), sb = b->snapshot();
  EXPECT_EQ(sa.bits, sb.bits);
  EXPECT_EQ(0, std::memcmp(sa.k.data(), sb.k.data(), sa.k.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(sa.v.data(), sb.v.data(), sa.v.size() * sizeof(float)));
  const auto ma = a->memory(), mb = b->memory();
  EXPECT_EQ(ma.total(), mb.total());
}

// Keys per channel over each group of G tokens, values per token over groups of G
// channels: every dequantized value within the error bound of its group's range.
TEST(Kivi, ErrorWithinTheBoundOfEachGroup) {
  for (int bits : {2, 4, 8}) {
    SCOPED_TRACE(bits);
    const Dims dims{2, 2, 64};
    const int G = 16, R = 16, n = 90;
    const auto x = zc_test::random_tokens(n, dims, 20 + bits);
    auto cache = make_cache(kivi(bits, G, R), zc_test::shape_of(dims));
    std::vector<float> out(n * size_t(dims.H) * dims.d);
    cache->prefill(x.qt(0), x.kt(0), x.vt(0), 50, out.data());
    for (int t = 50; t < n; ++t) cache->append(x.qt(t), x.kt(t), x.vt(t), out.data());
    const auto snap = cache->snapshot();
    const auto orig = zc_test::store_from_tokens(x, n, true);  // the window holds fp16
    const int quantized = n - window_after(n, G, R), d = dims.d;
    ASSERT_EQ(quantized % G, 0);
    double worst_k = 0, worst_v = 0;
    for (int h = 0; h < dims.n_kv; ++h) {
      const auto at = [&](int t, int c) { return (size_t(h) * n + t) * d + c; };
      for (int g0 = 0; g0 < quantized; g0 += G) {
        for (int c = 0; c < d; ++c) {  // keys: one group per channel of G tokens
          double mn = INFINITY, mx = -INFINITY;
          for (int t = g0; t < g0 + G; ++t) mn = std::min(mn, orig.kr(h, t)[c]), mx = std::max(mx, orig.kr(h, t)[c]);
          const double bound = zc_test::quant_bound(mn, mx, bits);
          for (int t = g0; t < g0 + G; ++t) {
            const double e = std::fabs(snap.k[at(t, c)] - orig.kr(h, t)[c]);
            ASSERT_LE(e, bound) << "key t=" << t << " c=" << c;
            worst_k = std::max(worst_k, e / bound);
          }
        }
        for (int t = g0; t < g0 + G; ++t) {  // values: groups of G channels per token
          for (int c0 = 0; c0 < d; c0 += G) {
            double mn = INFINITY, mx = -INFINITY;
            for (int c = c0; c < c0 + G; ++c) mn = std::min(mn, orig.vr(h, t)[c]), mx = std::max(mx, orig.vr(h, t)[c]);
            const double bound = zc_test::quant_bound(mn, mx, bits);
            for (int c = c0; c < c0 + G; ++c) {
              const double e = std::fabs(snap.v[at(t, c)] - orig.vr(h, t)[c]);
              ASSERT_LE(e, bound) << "value t=" << t << " c=" << c;
              worst_v = std::max(worst_v, e / bound);
            }
          }
        }
      }
      for (int t = quantized; t < n; ++t)  // the window: exactly the fp16 values
        for (int c = 0; c < d; ++c) ASSERT_EQ(snap.k[at(t, c)], orig.kr(h, t)[c]);
    }
    // The bound is tight enough to matter: real errors come close to it.
    EXPECT_GT(worst_k, 0.5);
    EXPECT_GT(worst_v, 0.5);
  }
}

TEST(Kivi, MemoryIsCountedExactly) {
  // d = 64, G = 32, R = 32, 4 bits, 2 KV heads, 100 tokens: window 32 + 68 % 32 = 36,
  // two quantized groups. Per group and head: key codes 32*64/2 = 1024 B, key params
  // 64 channels x (lo, step) x 2 B = 256 B, value codes 1024 B, value params 32 tokens
  // x 2 groups x 4 B = 256 B.
  const Dims dims{4, 2, 64};
  const auto x = zc_test::random_tokens(100, dims, 4);
  auto cache = make_cache(kivi(4, 32, 32), zc_test::shape_of(dims));
  std::vector<float> out(100 * size_t(dims.H) * dims.d);
  cache->prefill(x.qt(0), x.kt(0), x.vt(0), 100, out.data());
  const auto m = cache->memory();
  EXPECT_EQ(m.tokens_seen, 100u);
  EXPECT_EQ(m.tokens_kept, 100u);
  EXPECT_EQ(m.code_bytes, 2u * 2 * 2 * 1024);
  EXPECT_EQ(m.param_bytes, 2u * 2 * (256 + 256));
  EXPECT_EQ(m.window_bytes, 2u * 36 * 64 * 2 * 2);
  EXPECT_EQ(m.metadata_bytes, 0u);
  EXPECT_EQ(m.fp16_bytes, 2u * 2 * 2 * 64 * 100);
  EXPECT_EQ(m.total(), 28672u);
}

TEST(Kivi, Kivi2At4096TokensReportsItsTrueRatio) {
  // One KV head, d = 128, G = 32, R = 128: 124 groups (3968 tokens) quantized, 128 in
  // fp16. Per group: codes 2 x 32*128/4 = 2048 B, key params 128 x 4 = 512 B, value
  // params 32 x 4 groups x 4 = 512 B. Window: 128 x 128 x 2 B x 2 = 65536 B.
  const Dims dims{1, 1, 128};
  const auto x = zc_test::random_tokens(4096, dims, 8);
  auto cache = make_cache(parse_method("kivi2"), zc_test::shape_of(dims));
  std::vector<float> out(4096 * size_t(128));
  cache->prefill(x.qt(0), x.kt(0), x.vt(0), 4096, out.data());
  const auto m = cache->memory();
  EXPECT_EQ(m.code_bytes, 124u * 2048);
  EXPECT_EQ(m.param_bytes, 124u * 1024);
  EXPECT_EQ(m.window_bytes, 65536u);
  EXPECT_EQ(m.total(), 446464u);
  EXPECT_EQ(m.fp16_bytes, 2097152u);
  EXPECT_DOUBLE_EQ(m.ratio(), 2097152.0 / 446464.0);  // 4.697
}

TEST(Kivi, RejectsBadConfigurations) {
  const KvShape shape{4, 2, 48, 0.0f, 0};
  auto c = parse_method("kivi2");  // group 32 does not divide 48
  EXPECT_THROW(make_cache(c, shape), Error);
  c.group = 16, c.residual = 40;  // not a multiple
  EXPECT_THROW(make_cache(c, shape), Error);
  c.residual = 32, c.kivi_bits = 3;
  EXPECT_THROW(make_cache(c, shape), Error);
  c.kivi_bits = 2;
  EXPECT_NO_THROW(make_cache(c, shape));
  // Only fp16/fp32 evict by sliding window: a longer sequence is refused, not mis-attended.
  auto cache = make_cache(c, KvShape{4, 2, 48, 0.0f, 8});
  std::vector<float> buf(16 * 4 * 48, 0.5f);
  cache->prefill(buf.data(), buf.data(), buf.data(), 8, buf.data());
  EXPECT_THROW(cache->append(buf.data(), buf.data(), buf.data(), buf.data()), Error);
}

}  // namespace
}  // namespace zc::kv
