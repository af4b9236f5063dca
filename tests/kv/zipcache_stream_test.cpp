// ZipCache streaming (SPEC.md section 4, "Decode"): decode tokens wait in fp16 until
// gap of them have gathered; the chunk's salient tokens follow from the attention
// they received since they arrived (tracked here in double precision from the
// snapshots); quantized tokens are never re-quantized; a prefill into a non-empty
// cache joins the window.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "policy_check.h"

namespace zc::kv {
namespace {

using zc_test::Dims;

// parse_method with record_positions on, so snapshot() can report every token.
constexpr auto& config = zc_test::recording_config;

bool quantized(uint8_t bits) { return bits == 2 || bits == 4 || bits == 8; }

void stream(const std::string& spec, bool normalized, bool recent) {
  SCOPED_TRACE(spec);
  const Dims dims{8, 2, 64};
  const int T = 30, steps = 45;
  const auto cfg = config(spec);
  const int gap = cfg.stream_gap;
  const auto x = zc_test::random_tokens(T + steps, dims, 41, 2.0f);
  auto cache = make_cache(cfg, zc_test::shape_of(dims));
  const size_t qsz = size_t(dims.H) * dims.d;
  std::vector<float> out(size_t(T) * qsz);
  cache->prefill(x.qt(0), x.kt(0), x.vt(0), T, out.data());
  Snapshot prev = cache->snapshot();
  // Attention each token has received since it arrived, per KV head (double).
  std::vector<std::vector<double>> received(size_t(dims.n_kv), std::vector<double>(T + steps));
  int chunks = 0;
  for (int t = T; t < T + steps; ++t) {
    std::vector<float> o(qsz);
    cache->append(x.qt(t), x.kt(t), x.vt(t), o.data());
    const Snapshot snap = cache->snapshot();
    const int n = snap.length;
    for (int h = 0; h < dims.n_kv; ++h) {
      std::vector<int> chunk;  // fp16 before this step, quantized now
      for (int p = 0; p < prev.length; ++p) {
        const size_t a = size_t(h) * prev.length + p, b = size_t(h) * n + p;
        if (quantized(prev.bits[a])) {
          // Never re-quantized: bits and dequantized values stay bit-identical.
          ASSERT_EQ(snap.bits[b], prev.bits[a]) << "position " << p;
          ASSERT_EQ(0, std::memcmp(&snap.k[b * dims.d], &prev.k[a * dims.d], dims.d * sizeof(float)));
          ASSERT_EQ(0, std::memcmp(&snap.v[b * dims.d], &prev.v[a * dims.d], dims.d * sizeof(float)));
        } else if (quantized(snap.bits[b])) {
          chunk.push_back(p);
        }
      }
      if (chunk.empty()) continue;
      // The chunk is the whole previous window of gap tokens, quantized at once.
      ASSERT_EQ(int(chunk.size()), gap);
      ASSERT_EQ(chunk.back(), t - 1);
      if (h == 0) ++chunks;
      const int m = int(chunk.size());
      std::vector<double> score(size_t(prev.length), 0.0);
      std::vector<int> hi;
      for (int j = 0; j < m; ++j) {
        const int p = chunk[size_t(j)];
        // Token j of the chunk was seen by the m - j queries since its arrival.
        score[size_t(p)] = recent ? double(j)
                                  : received[size_t(h)][size_t(p)] / (normalized ? m - j : 1);
        if (snap.bits[size_t(h) * n + p] == cfg.bits_high) hi.push_back(p);
      }
      ASSERT_EQ(hi.size(), size_t(std::lround(cfg.saliency_ratio * m)));
      double lo_hi = INFINITY, hi_lo = -INFINITY;
      for (int p : chunk) {
        const bool salient = std::find(hi.begin(), hi.end(), p) != hi.end();
        if (salient) lo_hi = std::min(lo_hi, score[size_t(p)]);
        else hi_lo = std::max(hi_lo, score[size_t(p)]);
      }
      EXPECT_GE(lo_hi, hi_lo - 1e-5) << "chunk ending at " << t - 1;
    }
    // This step's attention, over what the cache holds now, feeds the fp16 tokens.
    std::vector<double> probs;
    const auto ref = zc_test::attend(x.qt(t), dims, zc_test::store_from_snapshot(snap), n, 0, &probs);
    zc_test::expect_close(o.data(), ref, 2e-5, "decode");
    for (int h = 0; h < dims.n_kv; ++h)
      for (int p = 0; p < n; ++p)
        if (snap.bits[size_t(h) * n + p] == 16) received[size_t(h)][size_t(p)] += probs[size_t(h) * n + p];
    prev = snap;
  }
  EXPECT_EQ(chunks, (steps - 1) / gap);
}

TEST(ZipCacheStream, ChunksFollowTheAttentionTheyReceivedAndAreNeverRequantized) {
  stream("zipcache:gap=10", true, false);
  stream("zipcache:gap=7,ratio=0.3,norm=full", true, false);  // L - i = queries seen here
  stream("mikv:gap=10", false, false);
  stream("zipcache:gap=10,metric=recent", false, true);
  stream("zipcache:gap=4,block=3,hi=8,lo=2", true, false);
}

TEST(ZipCacheStream, WindowMemoryAndMetadataAreCounted) {
  const Dims dims{2, 2, 64};
  const auto x = zc_test::random_tokens(60, dims, 2);
  auto cache = make_cache(config("zipcache:gap=16"), zc_test::shape_of(dims));
  std::vector<float> out(50 * size_t(dims.H) * dims.d);
  cache->prefill(x.qt(0), x.kt(0), x.vt(0), 50, out.data());
  const auto m0 = cache->memory();
  EXPECT_EQ(m0.window_bytes, 0u);
  EXPECT_EQ(m0.metadata_bytes, 0u);
  for (int t = 50; t < 60; ++t) cache->append(x.qt(t), x.kt(t), x.vt(t), out.data());
  const auto m1 = cache->memory();
  EXPECT_EQ(m1.code_bytes, m0.code_bytes);  // nothing new quantized yet
  EXPECT_EQ(m1.param_bytes, m0.param_bytes);
  EXPECT_EQ(m1.window_bytes, 2u * 10 * 64 * 2 * 2);  // 10 fp16 tokens per head
  EXPECT_EQ(m1.metadata_bytes, 2u * 10 * 4);          // one fp32 attention sum each
  EXPECT_EQ(m1.tokens_seen, 60u);
  EXPECT_EQ(m1.tokens_kept, 60u);
  // Recent/random saliency needs no sums.
  auto r = make_cache(config("zipcache:gap=16,metric=recent"), zc_test::shape_of(dims));
  r->prefill(x.qt(0), x.kt(0), x.vt(0), 50, out.data());
  for (int t = 50; t < 60; ++t) r->append(x.qt(t), x.kt(t), x.vt(t), out.data());
  EXPECT_EQ(r->memory().metadata_bytes, 0u);
}

// A prefill into a non-empty cache attends over what is stored plus its own exact
// tokens; its tokens join the window, quantized at its end once gap have gathered.
TEST(ZipCacheStream, PrefillIntoANonEmptyCache) {
  const Dims dims{4, 2, 64};
  const auto x = zc_test::random_tokens(80, dims, 17);
  for (const char* spec : {"zipcache:gap=16", "h2o:budget=0.5", "kivi2:group=8,residual=16"}) {
    SCOPED_TRACE(spec);
    auto cache = make_cache(config(spec), zc_test::shape_of(dims));
    const size_t qsz = size_t(dims.H) * dims.d;
    std::vector<float> out(80 * qsz);
    cache->prefill(x.qt(0), x.kt(0), x.vt(0), 30, out.data());
    for (int t = 30; t < 35; ++t) cache->append(x.qt(t), x.kt(t), x.vt(t), out.data());
    const auto before = cache->snapshot();
    cache->prefill(x.qt(35), x.kt(35), x.vt(35), 45, out.data());
    // Reference: the stored tokens as the snapshot shows them, the new ones exact.
    auto s = zc_test::store_from_tokens(x, 80, false);
    for (int h = 0; h < dims.n_kv; ++h)
      for (int p = 0; p < 35; ++p) {
        s.visible[size_t(h) * 80 + p] = before.bits[size_t(h) * 35 + p] != 0;
        for (int c = 0; c < dims.d; ++c) {
          s.k[(size_t(h) * 80 + p) * dims.d + c] = before.k[(size_t(h) * 35 + p) * dims.d + c];
          s.v[(size_t(h) * 80 + p) * dims.d + c] = before.v[(size_t(h) * 35 + p) * dims.d + c];
        }
      }
    for (int t = 35; t < 80; ++t) {
      zc_test::expect_close(&out[size_t(t - 35) * qsz], zc_test::attend(x.qt(t), dims, s, t + 1),
                            2e-5, "second prefill");
    }
    if (std::string(spec).rfind("zipcache", 0) == 0) {
      const auto after = cache->snapshot();
      for (uint8_t b : after.bits) EXPECT_TRUE(quantized(b));  // 50 >= gap: all quantized
    }
  }
}

}  // namespace
}  // namespace zc::kv
