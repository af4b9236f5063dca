// ZipCache and MiKV (SPEC.md sections 3-5): attention plumbing over many shapes, which
// tokens are salient (given, recent, accumulated/normalized from all rows or probes,
// each recomputed here in double precision), error bounds per set and block.
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "policy_check.h"
#include "saliency/saliency.h"

namespace zc::kv {
namespace {

using zc_test::Dims;

// parse_method with record_positions on, so snapshot() can report every token.
constexpr auto& config = zc_test::recording_config;

std::vector<float> prefill(Cache& cache, const zc_test::Tokens& x, int T) {
  std::vector<float> out(size_t(T) * x.dims.H * x.dims.d);
  cache.prefill(x.qt(0), x.kt(0), x.vt(0), T, out.data());
  return out;
}

// Positions of KV head h stored at `bits`.
std::vector<int> at_bits(const Snapshot& s, int h, int bits) {
  std::vector<int> out;
  for (int t = 0; t < s.length; ++t)
    if (s.bits[size_t(h) * s.length + t] == bits) out.push_back(t);
  return out;
}

// `chosen` must be round(ratio * n) of `candidates` and hold their highest scores (up
// to float noise in the scores the cache computed).
void expect_top(const std::vector<int>& chosen, const std::vector<int>& candidates,
                const std::vector<double>& score, double ratio) {
  ASSERT_EQ(chosen.size(), size_t(std::lround(ratio * double(candidates.size()))));
  const std::set<int> in(chosen.begin(), chosen.end());
  double lo = INFINITY, hi = -INFINITY, mx = 0;
  for (int i : candidates) {
    const double s = score[size_t(i)];
    if (in.count(i)) {
      lo = std::min(lo, s);
    } else {
      hi = std::max(hi, s);
    }
    mx = std::max(mx, std::fabs(s));
  }
  EXPECT_GE(lo, hi - 1e-5 * mx) << "a non-salient token scores above a salient one";
}

struct Case {
  int T, steps;
  Dims dims;
};

const Case kCases[] = {
    {1, 12, {1, 1, 64}},  {2, 9, {2, 1, 128}},    {7, 20, {8, 8, 64}},  {33, 20, {16, 2, 64}},
    {150, 12, {4, 4, 128}}, {300, 3, {8, 1, 64}}, {33, 20, {3, 3, 17}}, {7, 25, {6, 2, 5}},
};

TEST(ZipCache, AttentionPlumbingAndBitLayout) {
  uint64_t seed = 300;
  for (const char* spec : {"zipcache:gap=8", "mikv:gap=8", "zipcache:gap=5,block=4,seed=3"}) {
    for (const auto& c : kCases) {
      const bool mikv = std::string(spec).rfind("mikv", 0) == 0;
      if (mikv && c.dims.d % 32 != 0) continue;  // groupwise needs G | d
      SCOPED_TRACE(testing::Message() << spec << " T=" << c.T << " H=" << c.dims.H
                                      << " kv=" << c.dims.n_kv << " d=" << c.dims.d);
      const auto cfg = config(spec);
      const auto x = zc_test::random_tokens(c.T + c.steps, c.dims, seed++);
      zc_test::run_policy(cfg, x, c.T, [&](const Cache& cache) {
        const auto snap = cache.snapshot();
        const int n = snap.length;
        // Prefill quantizes every prompt token; decode tokens wait in fp16 until gap
        // of them have gathered and the next token arrives.
        const int window = n == c.T ? 0 : (n - c.T - 1) % cfg.stream_gap + 1;
        for (int h = 0; h < c.dims.n_kv; ++h) {
          const auto hi = at_bits(snap, h, 4), lo = at_bits(snap, h, 2), fp = at_bits(snap, h, 16);
          ASSERT_EQ(int(fp.size()), window) << "n=" << n;
          for (int j = 0; j < window; ++j) ASSERT_EQ(fp[size_t(j)], n - window + j);
          ASSERT_EQ(hi.size() + lo.size() + fp.size(), size_t(n));
          if (n == c.T) {
            ASSERT_EQ(hi.size(), size_t(std::lround(0.4 * c.T)));
          }
        }
      });
    }
  }
}

TEST(ZipCache, GivenSalientTokensAreTheHighPrecisionOnes) {
  const Dims dims{4, 2, 64};
  const auto x = zc_test::random_tokens(20, dims, 5);
  auto cfg = config("zipcache");
  cfg.given_salient = {{0, 3, 19}, {5, 6}};
  auto cache = make_cache(cfg, zc_test::shape_of(dims));
  prefill(*cache, x, 20);
  const auto snap = cache->snapshot();
  EXPECT_EQ(at_bits(snap, 0, 4), (std::vector<int>{0, 3, 19}));
  EXPECT_EQ(at_bits(snap, 1, 4), (std::vector<int>{5, 6}));
  EXPECT_EQ(at_bits(snap, 1, 2).size(), 18u);

  cfg.given_salient = {{2, 4}};  // one list for every head
  cache = make_cache(cfg, zc_test::shape_of(dims));
  prefill(*cache, x, 20);
  EXPECT_EQ(at_bits(cache->snapshot(), 1, 4), (std::vector<int>{2, 4}));

  for (const auto& bad : std::vector<std::vector<std::vector<int>>>{{{3, 20}}, {{4, 2}}, {{1, 1}}}) {
    cfg.given_salient = bad;
    cache = make_cache(cfg, zc_test::shape_of(dims));
    EXPECT_THROW(prefill(*cache, x, 20), Error);
  }
  cfg.given_salient = {{1}, {2}, {3}};  // 3 lists for 2 KV heads
  EXPECT_THROW(make_cache(cfg, zc_test::shape_of(dims)), Error);
}

// Per-token prompt scores recomputed in double from the exact prefill attention:
// accumulated (sum over the rows) or normalized (divided by the rows that see it).
std::vector<double> prompt_scores(const zc_test::Tokens& x, int T, const std::vector<int>& rows,
                                  bool normalized, bool full_norm) {
  const auto exact = zc_test::store_from_tokens(x, T, false);
  const int n_kv = x.dims.n_kv;
  std::vector<double> sum(size_t(n_kv) * T, 0.0), count(size_t(T), 0.0), probs;
  for (int r : rows) {
    zc_test::attend(x.qt(r), x.dims, exact, r + 1, 0, &probs);
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += probs[i];
    for (int i = 0; i <= r; ++i) count[size_t(i)] += 1;
  }
  if (normalized) {
    for (int h = 0; h < n_kv; ++h)
      for (int i = 0; i < T; ++i)
        sum[size_t(h) * T + i] /= full_norm ? double(T - i) : count[size_t(i)];
  }
  return sum;
}

TEST(ZipCache, PromptSaliencyMatchesADoubleReference) {
  const Dims dims{8, 2, 64};
  const int T = 120;
  const auto x = zc_test::random_tokens(T, dims, 6, 2.0f);  // peaky attention
  std::vector<int> all(T), candidates(T);
  for (int i = 0; i < T; ++i) all[size_t(i)] = candidates[size_t(i)] = i;
  struct Variant {
    std::string spec;
    bool normalized, full_norm, probes;
  };
  for (const auto& v : std::vector<Variant>{
           {"zipcache:metric=accumulated,probe-kind=all", false, false, false},
           {"mikv", false, false, false},
           {"zipcache:probe-kind=all", true, false, false},
           {"zipcache:ratio=0.3", true, false, true},
           {"zipcache:norm=full,seed=9,probe=0.2", true, true, true},
       }) {
    SCOPED_TRACE(v.spec);
    const auto cfg = config(v.spec);
    const auto rows = v.probes ? saliency::select_probes(T, cfg.probes) : all;
    const auto score = prompt_scores(x, T, rows, v.normalized, v.full_norm);
    auto cache = make_cache(cfg, zc_test::shape_of(dims));
    prefill(*cache, x, T);
    const auto snap = cache->snapshot();
    for (int h = 0; h < dims.n_kv; ++h) {
      const std::vector<double> head(score.begin() + h * T, score.begin() + (h + 1) * T);
      expect_top(at_bits(snap, h, 4), candidates, head, cfg.saliency_ratio);
    }
  }
  // Locality: the newest tokens are the salient ones.
  auto cache = make_cache(config("zipcache:metric=recent"), zc_test::shape_of(dims));
  prefill(*cache, x, T);
  const auto hi = at_bits(cache->snapshot(), 1, 4);
  ASSERT_EQ(hi.size(), 48u);
  EXPECT_EQ(hi.front(), T - 48);
}

// Keys channelwise over each set (or block of it), values CSTQ: c_j = sqrt(max|x_j|)
// over the set, tokenwise on x / c (SPEC.md section 2); MiKV groupwise.
double check_error_bounds(const MethodConfig& cfg, const zc_test::Tokens& x) {
  const int T = x.T, d = x.dims.d;
  auto cache = make_cache(cfg, zc_test::shape_of(x.dims));
  prefill(*cache, x, T);
  const auto snap = cache->snapshot();
  const auto orig = zc_test::store_from_tokens(x, T, false);
  double total_err = 0;
  for (int h = 0; h < x.dims.n_kv; ++h) {
    const auto snap_at = [&](int t, int c) { return (size_t(h) * T + t) * d + c; };
    for (int bits : {cfg.bits_high, cfg.bits_low}) {
      const auto set = at_bits(snap, h, bits);
      const int per = cfg.stats_block > 0 ? cfg.stats_block : std::max<int>(1, int(set.size()));
      for (size_t b0 = 0; b0 < set.size(); b0 += size_t(per)) {
        const std::vector<int> blk(set.begin() + long(b0),
                                   set.begin() + long(std::min(set.size(), b0 + size_t(per))));
        const auto group_check = [&](bool key, int t, int c0, int c1) {
          const auto val = [&](int c) { return key ? orig.kr(h, t)[c] : orig.vr(h, t)[c]; };
          double mn = INFINITY, mx = -INFINITY;
          for (int c = c0; c < c1; ++c) mn = std::min(mn, val(c)), mx = std::max(mx, val(c));
          for (int c = c0; c < c1; ++c) {
            const double e = std::fabs((key ? snap.k : snap.v)[snap_at(t, c)] - val(c));
            ASSERT_LE(e, zc_test::quant_bound(mn, mx, bits)) << "t=" << t << " c=" << c;
            total_err += e;
          }
        };
        if (cfg.key_scheme == quant::Scheme::Groupwise) {
          for (int t : blk)
            for (int c0 = 0; c0 < d; c0 += cfg.key_group) group_check(true, t, c0, c0 + cfg.key_group);
        } else {
          for (int c = 0; c < d; ++c) {
            double mn = INFINITY, mx = -INFINITY;
            for (int t : blk) mn = std::min(mn, orig.kr(h, t)[c]), mx = std::max(mx, orig.kr(h, t)[c]);
            for (int t : blk) {
              const double e = std::fabs(snap.k[snap_at(t, c)] - orig.kr(h, t)[c]);
              EXPECT_LE(e, zc_test::quant_bound(mn, mx, bits)) << "key t=" << t << " c=" << c;
              total_err += e;
            }
          }
        }
        if (cfg.value_scheme == quant::Scheme::Groupwise) {
          for (int t : blk)
            for (int c0 = 0; c0 < d; c0 += cfg.value_group) group_check(false, t, c0, c0 + cfg.value_group);
        } else if (cfg.value_scheme == quant::Scheme::Tokenwise) {
          for (int t : blk) group_check(false, t, 0, d);
        } else {
          EXPECT_EQ(cfg.value_scheme, quant::Scheme::Cstq);
          std::vector<double> scale(size_t(d), 0.0);
          for (int c = 0; c < d; ++c) {
            for (int t : blk) scale[size_t(c)] = std::max(scale[size_t(c)], std::fabs(orig.vr(h, t)[c]));
            scale[size_t(c)] = std::sqrt(scale[size_t(c)]);
          }
          for (int t : blk) {
            double mn = INFINITY, mx = -INFINITY;
            for (int c = 0; c < d; ++c) {
              const double y = scale[size_t(c)] > 0 ? orig.vr(h, t)[c] / scale[size_t(c)] : 0.0;
              mn = std::min(mn, y), mx = std::max(mx, y);
            }
            for (int c = 0; c < d; ++c) {
              const double e = std::fabs(snap.v[snap_at(t, c)] - orig.vr(h, t)[c]);
              EXPECT_LE(e, scale[size_t(c)] * zc_test::quant_bound(mn, mx, bits))
                  << "value t=" << t << " c=" << c;
              total_err += e;
            }
          }
        }
      }
    }
  }
  return total_err;
}

TEST(ZipCache, QuantizationErrorWithinTheBoundOfItsBits) {
  const auto x = zc_test::random_tokens(97, Dims{4, 2, 64}, 12);
  for (const char* spec : {"zipcache", "zipcache:hi=8,lo=4", "zipcache:block=16",
                           "zipcache:values=tokenwise", "mikv", "zipcache:ratio=1",
                           "zipcache:ratio=0"}) {
    SCOPED_TRACE(spec);
    check_error_bounds(config(spec), x);
  }
  // Blocks of channel statistics are finer: not less accurate (SPEC.md section 4).
  const double whole = check_error_bounds(config("zipcache"), x);
  const double blocks = check_error_bounds(config("zipcache:block=16"), x);
  EXPECT_LT(blocks, whole);
}

}  // namespace
}  // namespace zc::kv
