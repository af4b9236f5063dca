// GPU probe pass (cuda/saliency/probe_scores.h), both paths (the fused tensor-core
// kernels and the cuBLAS logits path), against the saliency scores of SPEC.md section 3
// computed in double precision here from the same bf16-rounded q and k: lengths
// 1..1000 (tile edges 17, 63, 65), GQA groups 1/2/4/7/8, head_dim 64/128 (and 32/80 on
// the cuBLAS fallback), every fused variant, probe lists of one row, the first and last
// position, all rows; accumulated and normalized (probe-count and full divisors),
// custom scales, peaky attention; unseen tokens exact 0; NaN inputs poison exactly the
// scores their logits reach; bitwise determinism; the CPU saliency::scores as a second
// opinion; argument errors; invalid probes. ZC_TIMING=1 times the Llama-3 shape.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <vector>

#include "common/error_of.h"
#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "cuda/kv/prefill_attention.h"
#include "cuda/saliency/probe_scores.h"
#include "cuda/saliency/saliency_launch.h"
#include "cuda/saliency/top_r.h"
#include "gpu_test.h"
#include "saliency/saliency.h"

namespace {

namespace zs = zc::saliency;
using zc::cuda::DeviceBuffer;
using Path = zc::cuda::detail::ProbePath;

// The paths most tests check: the public entry (fused for d 64 / 128), the fused
// kernels' other variants, and the cuBLAS path.
const std::vector<Path> kAllPaths = {Path{}, Path{Path::Fused, 16, 16}, Path{Path::Fused, 32, 16},
                                     Path{Path::Fused, 32, 32}, Path{Path::Cublas}};

::testing::Message path_name(const Path& p) {
  return ::testing::Message() << "path " << p.kind << " (" << p.row_warp_rows << ", " << p.col_warp_keys << ")";
}

struct Case {
  int L, n_heads, n_kv, d;
  float amp = 1.0f;    // q and k ~ N(0, amp^2): larger amp, peakier attention
  float scale = 0.0f;  // 0: 1 / sqrt(d)
};

struct Inputs {
  std::vector<uint16_t> q, k;  // bf16 bits
  std::vector<int> probes;
};

Inputs make_inputs(const Case& c, zc::Rng& rng, std::vector<int> probes) {
  Inputs in;
  in.q.resize(size_t(c.L) * size_t(c.n_heads) * size_t(c.d));
  in.k.resize(size_t(c.L) * size_t(c.n_kv) * size_t(c.d));
  for (auto& x : in.q) x = zc::float_to_bf16(rng.normal() * c.amp);
  for (auto& x : in.k) x = zc::float_to_bf16(rng.normal() * c.amp);
  in.probes = std::move(probes);
  return in;
}

Inputs make_inputs(const Case& c, zc::Rng& rng, const zs::ProbeConfig& pc) {
  return make_inputs(c, rng, zs::select_probes(c.L, pc));
}

// Column sums of the causal softmax probabilities of the probe rows, summed over the g
// query heads of each KV head: [n_kv][L], all in double.
std::vector<double> reference_sums(const Case& c, const Inputs& in) {
  const int g = c.n_heads / c.n_kv, d = c.d, L = c.L;
  const double scale = c.scale == 0.0f ? 1.0 / std::sqrt(double(d)) : double(c.scale);
  std::vector<double> sums(size_t(c.n_kv) * size_t(L), 0.0);
  std::vector<double> logit(static_cast<size_t>(L));
  for (int h = 0; h < c.n_kv; ++h) {
    for (int t : in.probes) {
      for (int j = 0; j < g; ++j) {
        const size_t qo = (size_t(t) * size_t(c.n_heads) + size_t(h * g + j)) * size_t(d);
        double m = -INFINITY;
        for (int i = 0; i <= t; ++i) {
          const size_t ko = (size_t(i) * size_t(c.n_kv) + size_t(h)) * size_t(d);
          double dot = 0.0;
          for (int e = 0; e < d; ++e) {
            dot += double(zc::bf16_to_float(in.q[qo + size_t(e)])) *
                   double(zc::bf16_to_float(in.k[ko + size_t(e)]));
          }
          logit[size_t(i)] = scale * dot;
          m = std::max(m, logit[size_t(i)]);
        }
        double l = 0.0;
        for (int i = 0; i <= t; ++i) l += std::exp(logit[size_t(i)] - m);
        for (int i = 0; i <= t; ++i) {
          sums[size_t(h) * size_t(L) + size_t(i)] += std::exp(logit[size_t(i)] - m) / l;
        }
      }
    }
  }
  return sums;
}

std::vector<double> reference_scores(const Case& c, const Inputs& in, const std::vector<double>& sums,
                                     zs::Metric metric, zs::Norm norm) {
  std::vector<double> out = sums;
  if (metric == zs::Metric::Accumulated) return out;
  const int L = c.L;
  for (int h = 0; h < c.n_kv; ++h) {
    for (int i = 0; i < L; ++i) {
      double count = double(L - i);
      if (norm == zs::Norm::ProbeCount) {
        count = 0;
        for (int t : in.probes) count += t >= i ? 1 : 0;
      }
      double& s = out[size_t(h) * size_t(L) + size_t(i)];
      s = count > 0 ? s / count : 0.0;
    }
  }
  return out;
}

zc::cuda::ProbeScoreShape shape_of(const Case& c) {
  zc::cuda::ProbeScoreShape shape;
  shape.L = c.L, shape.n_heads = c.n_heads, shape.n_kv_heads = c.n_kv, shape.head_dim = c.d;
  shape.scale = c.scale;
  return shape;
}

// q_offset: elements of padding before q on the device (8 bytes: not 16-byte aligned).
// lse_from_prefill: the rows' log-sum-exp comes from prefill_attention's lse output on
// the same q and k (as the engine's ZipCache prefill passes it), not the row kernel.
std::vector<float> run_gpu(const Case& c, const Inputs& in, zs::Metric metric, zs::Norm norm,
                           zc::cuda::ProbeWorkspace& ws, cudaStream_t stream = nullptr,
                           const Path& path = {}, size_t q_offset = 0, bool lse_from_prefill = false) {
  DeviceBuffer<uint16_t> dq(q_offset + in.q.size()), dk;
  DeviceBuffer<int32_t> dp;
  zc::cuda::check(cudaMemcpy(dq.get() + q_offset, in.q.data(), in.q.size() * 2, cudaMemcpyHostToDevice),
                  "upload q");
  dk.upload(in.k);
  dp.upload(std::vector<int32_t>(in.probes.begin(), in.probes.end()));
  DeviceBuffer<float> out(size_t(c.n_kv) * size_t(c.L));
  out.fill_bytes(0xff);  // NaN: every score must be written
  DeviceBuffer<float> lse;
  if (lse_from_prefill) {
    zc::cuda::PrefillShape ps;
    ps.batch = 1, ps.tokens = c.L, ps.n_heads = c.n_heads, ps.n_kv_heads = c.n_kv, ps.head_dim = c.d;
    ps.scale = c.scale;
    DeviceBuffer<uint16_t> attn(in.q.size());
    lse.resize(size_t(c.L) * size_t(c.n_heads));
    lse.fill_bytes(0xff);
    zc::cuda::prefill_attention(ps, zc::cuda::Dtype::BF16, dq.get() + q_offset, dk.get(), dk.get(), attn.get(), stream,
                                lse.get());
    zc::cuda::check(cudaStreamSynchronize(stream), "prefill for the lse");
  }
  zc::cuda::detail::probe_scores_with(path, shape_of(c), dq.get() + q_offset, dk.get(), dp.get(),
                                      int(in.probes.size()), metric, norm, out.get(), ws, stream,
                                      lse_from_prefill ? lse.get() : nullptr);
  zc::cuda::check(cudaStreamSynchronize(stream), "probe scores test");
  zc::cuda::check(cudaDeviceSynchronize(), "probe scores test");
  return out.download();
}

// Every score within 1e-3 relative of the double reference (GEMM inputs are the same
// bf16 values; fp32 accumulation and expf stay far below that); scores of tokens no
// probe sees are exactly 0.
void expect_close(const Case& c, const Inputs& in, const std::vector<float>& got,
                  const std::vector<double>& want) {
  const int last = in.probes.empty() ? -1 : in.probes.back();
  double worst = 0.0;
  int bad = 0;
  for (int h = 0; h < c.n_kv; ++h) {
    for (int i = 0; i < c.L; ++i) {
      const size_t o = size_t(h) * size_t(c.L) + size_t(i);
      if (i > last) {
        if (got[o] != 0.0f && bad++ < 5) ADD_FAILURE() << "unseen token " << i << " head " << h << ": " << got[o];
        continue;
      }
      const double err = std::fabs(double(got[o]) - want[o]);
      worst = std::max(worst, err / std::max(std::fabs(want[o]), 1e-30));
      if (!(err <= 1e-3 * std::fabs(want[o]) + 1e-12) && bad++ < 5) {
        ADD_FAILURE() << "head " << h << " token " << i << ": got " << got[o] << ", want " << want[o];
      }
    }
  }
  EXPECT_EQ(bad, 0) << "worst relative error " << worst;
}

// Every metric / divisor on every path against one double reference.
void check_inputs(const Case& c, const Inputs& in, zc::cuda::ProbeWorkspace& ws,
                  const std::vector<Path>& paths) {
  SCOPED_TRACE(::testing::Message() << "L " << c.L << ", heads " << c.n_heads << "/" << c.n_kv
                                    << ", d " << c.d << ", amp " << c.amp << ", scale " << c.scale
                                    << ", " << in.probes.size() << " probes from " << in.probes.front()
                                    << " to " << in.probes.back());
  const std::vector<double> sums = reference_sums(c, in);
  for (const Path& path : paths) {
    SCOPED_TRACE(path_name(path));
    for (auto [metric, norm] : {std::pair{zs::Metric::Accumulated, zs::Norm::ProbeCount},
                                std::pair{zs::Metric::Accumulated, zs::Norm::Full},
                                std::pair{zs::Metric::Normalized, zs::Norm::ProbeCount},
                                std::pair{zs::Metric::Normalized, zs::Norm::Full}}) {
      SCOPED_TRACE(zs::metric_name(metric) + " / " + zs::norm_name(norm));
      expect_close(c, in, run_gpu(c, in, metric, norm, ws, nullptr, path),
                   reference_scores(c, in, sums, metric, norm));
      if (path.kind == Path::Auto && (c.d == 64 || c.d == 128)) {  // the flash kernel's head sizes
        SCOPED_TRACE("row log-sum-exp from prefill_attention");
        expect_close(c, in, run_gpu(c, in, metric, norm, ws, nullptr, path, 0, true),
                     reference_scores(c, in, sums, metric, norm));
      }
    }
  }
}

void check_case(const Case& c, zc::Rng& rng, zc::cuda::ProbeWorkspace& ws, const zs::ProbeConfig& pc,
                const std::vector<Path>& paths = {Path{}}) {
  check_inputs(c, make_inputs(c, rng, pc), ws, paths);
}

// Lengths on and off the fused kernels' tile edges (64 keys; 64 or 128 probe rows,
// which g = 7 splits mid-probe), every path and fused variant.
TEST(CudaProbeScores, MatchesDoubleReference) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(44);
  zc::cuda::ProbeWorkspace ws;  // one workspace across all shapes: grows and is reused
  zs::ProbeConfig pc;
  pc.recent_ratio = 0.1, pc.random_ratio = 0.1;
  for (int L : {1, 2, 5, 17, 37, 63, 65, 300, 1000}) {
    for (int g : {1, 2, 4, 7, 8}) {
      for (int d : {64, 128}) {
        const int n_kv = L >= 1000 ? 1 : (L >= 300 ? 2 : 3);
        pc.seed = rng.engine()();
        check_case({L, g * n_kv, n_kv, d}, rng, ws, pc, kAllPaths);
      }
    }
  }
}

TEST(CudaProbeScores, PeakyAttentionCustomScaleAndAllRows) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(45);
  zc::cuda::ProbeWorkspace ws;
  zs::ProbeConfig pc;
  pc.seed = 9;
  check_case({200, 8, 2, 128, 3.0f}, rng, ws, pc, kAllPaths);       // near one-hot rows
  check_case({129, 4, 4, 64, 1.0f, 0.3f}, rng, ws, pc, kAllPaths);  // explicit scale
  check_case({33, 4, 1, 64, 1.0f, 1e-3f}, rng, ws, pc, kAllPaths);  // almost uniform rows
  pc.recent_ratio = 1.0, pc.random_ratio = 0.0;  // every row a probe (H2O-like)
  check_case({37, 8, 2, 64}, rng, ws, pc, kAllPaths);
}

TEST(CudaProbeScores, AgreesWithCpuScoresOnAStream) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(46);
  zc::cuda::ProbeWorkspace ws;
  cudaStream_t stream = nullptr;
  zc::cuda::check(cudaStreamCreate(&stream), "stream");
  zs::ProbeConfig pc;
  pc.seed = 3;
  for (const Case& c : {Case{77, 8, 2, 64}, Case{250, 4, 4, 128}}) {
    const Inputs in = make_inputs(c, rng, pc);
    std::vector<float> qf(in.q.size()), kf(in.k.size());
    for (size_t i = 0; i < qf.size(); ++i) qf[i] = zc::bf16_to_float(in.q[i]);
    for (size_t i = 0; i < kf.size(); ++i) kf[i] = zc::bf16_to_float(in.k[i]);
    const zs::AttentionShape as{c.L, c.n_heads, c.n_kv, c.d, 0.0f};
    const std::vector<float> cpu = zs::scores(qf.data(), kf.data(), as, in.probes,
                                              zs::Metric::Normalized, zs::Norm::ProbeCount);
    const std::vector<float> gpu =
        run_gpu(c, in, zs::Metric::Normalized, zs::Norm::ProbeCount, ws, stream);
    ASSERT_EQ(gpu.size(), cpu.size());
    for (size_t i = 0; i < cpu.size(); ++i) {
      EXPECT_NEAR(gpu[i], cpu[i], 2e-3 * std::fabs(cpu[i]) + 1e-9) << "index " << i;
    }
  }
  zc::cuda::check(cudaStreamDestroy(stream), "stream");
}

TEST(CudaProbeScores, RecentIsThePosition) {
  ZC_REQUIRE_GPU();
  zc::cuda::ProbeWorkspace ws;
  DeviceBuffer<float> out(3 * 5);
  zc::cuda::probe_scores({5, 6, 3, 64}, nullptr, nullptr, nullptr, 0, zs::Metric::Recent,
                         zs::Norm::ProbeCount, out.get(), ws);
  const std::vector<float> got = out.download();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], float(i % 5));
}

TEST(CudaProbeScores, InvalidProbesGiveNaNThatTopRReports) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(47);
  const Case c{20, 4, 2, 64};
  Inputs in = make_inputs(c, rng, zs::ProbeConfig{});
  zc::cuda::ProbeWorkspace ws;
  for (const Path& path : kAllPaths) {
    for (const std::vector<int>& probes : {std::vector<int>{3, 3}, std::vector<int>{5, 2},
                                           std::vector<int>{4, 20}, std::vector<int>{-1, 19}}) {
      in.probes = probes;
      const std::vector<float> got =
          run_gpu(c, in, zs::Metric::Normalized, zs::Norm::ProbeCount, ws, nullptr, path);
      for (float v : got) ASSERT_TRUE(std::isnan(v)) << probes[0] << ", " << probes[1] << ", path " << path.kind;
      DeviceBuffer<float> scores;
      scores.upload(got);
      DeviceBuffer<int32_t> sal(2 * 10), reg(2 * 10);
      EXPECT_NE(zc::test::error_of([&] {
                  zc::cuda::top_r_split(scores.get(), 2, 20, 10, sal.get(), reg.get());
                }).find("list 0, token 0 is NaN"),
                std::string::npos);
    }
    // The same workspace still computes valid probes correctly afterwards.
    in.probes = {4, 19};
    expect_close(c, in, run_gpu(c, in, zs::Metric::Accumulated, zs::Norm::ProbeCount, ws, nullptr, path),
                 reference_sums(c, in));
  }
}

// Probe lists select_probes does not make: one row (first, middle or last position),
// the first and the last position, every position (P = L: 4 and 7 row tiles of 65 at
// g = 4 and 7).
TEST(CudaProbeScores, OneRowEdgeRowsAndAllRows) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(49);
  zc::cuda::ProbeWorkspace ws;
  for (int L : {1, 17, 65, 130}) {
    std::vector<int> all(static_cast<size_t>(L));
    std::iota(all.begin(), all.end(), 0);
    const std::vector<std::vector<int>> lists = {
        {0}, {L - 1}, {L / 2}, L > 1 ? std::vector<int>{0, L - 1} : std::vector<int>{0}, all};
    for (size_t li = 0; li < lists.size(); ++li) {
      for (int g : {1, 4, 7}) {
        const Case c{L, g * 2, 2, (li + size_t(g)) % 2 ? 64 : 128};
        check_inputs(c, make_inputs(c, rng, lists[li]), ws, kAllPaths);
      }
    }
  }
}

// head_dim other than 64 / 128, or q not 16-byte aligned: the public entry takes the
// cuBLAS path (same results); forcing the fused path there is an error.
TEST(CudaProbeScores, CublasFallbackForOtherHeadSizesAndUnalignedRows) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(50);
  zc::cuda::ProbeWorkspace ws;
  zs::ProbeConfig pc;
  pc.seed = 5;
  check_case({70, 8, 2, 80}, rng, ws, pc);
  check_case({33, 3, 3, 32}, rng, ws, pc);
  const Case c{65, 8, 2, 128};
  const Inputs in = make_inputs(c, rng, pc);
  expect_close(c, in, run_gpu(c, in, zs::Metric::Accumulated, zs::Norm::ProbeCount, ws, nullptr, Path{}, 4),
               reference_sums(c, in));
  const auto err = [&](const Case& cc, const Inputs& ii, const Path& path, size_t offset) {
    return zc::test::error_of(
        [&] { run_gpu(cc, ii, zs::Metric::Normalized, zs::Norm::Full, ws, nullptr, path, offset); });
  };
  const Case c80{70, 8, 2, 80};
  const std::string why = "fused path needs head_dim 64 or 128 and 16-byte aligned";
  EXPECT_NE(err(c80, make_inputs(c80, rng, pc), Path{Path::Fused}, 0).find(why), std::string::npos);
  EXPECT_NE(err(c, in, Path{Path::Fused}, 4).find(why), std::string::npos);
  EXPECT_NE(err(c, in, Path{Path::Fused, 24, 0}, 0).find("fused variant 24 rows per warp"), std::string::npos);
}

// A NaN in k at token i poisons every probe row that sees i, hence every score of that
// KV head up to the last probe (tokens past it stay 0); a NaN in the query of one probe
// row poisons the scores of the tokens that row sees; a NaN in a query row that is not
// a probe changes nothing. Other KV heads stay finite.
TEST(CudaProbeScores, NaNInputsPoisonExactlyWhatTheyReach) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(51);
  zc::cuda::ProbeWorkspace ws;
  zs::ProbeConfig pc;
  pc.seed = 11;
  const Case c{150, 8, 2, 64};
  const Inputs clean = make_inputs(c, rng, pc);
  const int first = clean.probes.front(), last = clean.probes.back(), g = c.n_heads / c.n_kv;
  ASSERT_LT(first, last);
  int not_probe = 0;
  while (std::find(clean.probes.begin(), clean.probes.end(), not_probe) != clean.probes.end()) ++not_probe;
  const uint16_t nan = 0x7fc0;  // bf16 quiet NaN
  for (const Path& path : kAllPaths) {
    SCOPED_TRACE(path_name(path));
    for (int kind = 0; kind < 3; ++kind) {
      Inputs in = clean;
      int nan_upto = -1;  // head 1 scores NaN at tokens 0..nan_upto
      if (kind == 0) {    // k of KV head 1 at a token inside the first probe's prefix
        in.k[(size_t(first / 2) * size_t(c.n_kv) + 1) * size_t(c.d) + 5] = nan;
        nan_upto = last;
      } else if (kind == 1) {  // query head g + 2 (KV head 1) of the first probe
        in.q[(size_t(first) * size_t(c.n_heads) + size_t(g + 2)) * size_t(c.d) + 7] = nan;
        nan_upto = first;
      } else {
        in.q[(size_t(not_probe) * size_t(c.n_heads) + size_t(g + 2)) * size_t(c.d)] = nan;
      }
      for (zs::Metric metric : {zs::Metric::Accumulated, zs::Metric::Normalized}) {
        const std::vector<float> got = run_gpu(c, in, metric, zs::Norm::ProbeCount, ws, nullptr, path);
        for (int h = 0; h < c.n_kv; ++h) {
          for (int i = 0; i < c.L; ++i) {
            const float v = got[size_t(h) * size_t(c.L) + size_t(i)];
            const bool want_nan = h == 1 && i <= nan_upto;
            ASSERT_EQ(std::isnan(v), want_nan) << "case " << kind << ", head " << h << ", token " << i;
            ASSERT_TRUE(i <= last || v == 0.0f) << "case " << kind << ", unseen token " << i << ": " << v;
          }
        }
      }
    }
  }
}

// The column sums run in a fixed order: repeated calls (same or fresh workspace, other
// calls in between) give the same bits.
TEST(CudaProbeScores, BitwiseDeterministic) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(52);
  zs::ProbeConfig pc;
  pc.seed = 13;
  const Case c{1000, 8, 2, 128};
  const Inputs in = make_inputs(c, rng, pc);
  const Case other{300, 4, 4, 64};
  const Inputs other_in = make_inputs(other, rng, pc);
  for (const Path& path : kAllPaths) {
    zc::cuda::ProbeWorkspace ws, fresh;
    const std::vector<float> a = run_gpu(c, in, zs::Metric::Normalized, zs::Norm::ProbeCount, ws, nullptr, path);
    run_gpu(other, other_in, zs::Metric::Accumulated, zs::Norm::Full, ws, nullptr, path);
    const std::vector<float> b = run_gpu(c, in, zs::Metric::Normalized, zs::Norm::ProbeCount, ws, nullptr, path);
    const std::vector<float> f = run_gpu(c, in, zs::Metric::Normalized, zs::Norm::ProbeCount, fresh, nullptr, path);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << "path " << path.kind;
    EXPECT_EQ(std::memcmp(a.data(), f.data(), a.size() * sizeof(float)), 0) << "path " << path.kind;
  }
}

TEST(CudaProbeScores, BadArgumentsAreErrors) {
  ZC_REQUIRE_GPU();
  zc::cuda::ProbeWorkspace ws;
  DeviceBuffer<uint16_t> q(8 * 4 * 64), k(8 * 2 * 64);
  DeviceBuffer<int32_t> p(2);
  DeviceBuffer<float> out(2 * 8);
  const auto err = [&](zc::cuda::ProbeScoreShape s, int n_probes, zs::Metric m, const void* qq) {
    return zc::test::error_of([&] {
      zc::cuda::probe_scores(s, static_cast<const uint16_t*>(qq), k.get(), p.get(), n_probes, m,
                             zs::Norm::ProbeCount, out.get(), ws);
    });
  };
  const auto N = zs::Metric::Normalized;
  EXPECT_NE(err({8, 4, 2, 64}, 2, zs::Metric::Random, q.get()).find("computed on the host"), std::string::npos);
  EXPECT_NE(err({8, 5, 2, 64}, 2, N, q.get()).find("multiple of n_kv_heads"), std::string::npos);
  EXPECT_NE(err({8, 4, 0, 64}, 2, N, q.get()).find("n_kv_heads = 0"), std::string::npos);
  EXPECT_NE(err({-1, 4, 2, 64}, 2, N, q.get()).find("L = -1"), std::string::npos);
  EXPECT_NE(err({8, 4, 2, 0}, 2, N, q.get()).find("head_dim = 0"), std::string::npos);
  EXPECT_NE(err({8, 4, 2, 64, -1.0f}, 2, N, q.get()).find("scale"), std::string::npos);
  EXPECT_NE(err({8, 4, 2, 64}, 0, N, q.get()).find("0 probe rows"), std::string::npos);
  EXPECT_NE(err({8, 4, 2, 64}, 9, N, q.get()).find("9 probe rows"), std::string::npos);
  EXPECT_NE(err({8, 4, 2, 64}, 2, N, nullptr).find("null q"), std::string::npos);
  EXPECT_EQ(err({0, 4, 2, 64}, 0, N, nullptr), "<no error>");  // empty prompt: nothing to do
}

// Timing at the Llama-3-8B prefill shape (L 4096, 32 query heads, 8 KV heads, d 128,
// bf16, the default probes: 5% recent + 5% random), only with ZC_TIMING=1: the median
// of 20 cudaEvent-timed runs of the public entry (fused), of each fused variant's row
// and column kernels, and of the cuBLAS path; TFLOPS count 2 d flops per (probe row,
// visible key) and pass.
TEST(CudaProbeScores, TimingLlama3Shape) {
  const char* on = std::getenv("ZC_TIMING");
  if (on == nullptr || std::strcmp(on, "1") != 0) GTEST_SKIP() << "set ZC_TIMING=1 to time";
  ZC_REQUIRE_GPU();
  constexpr int kL = 4096, kHeads = 32, kKv = 8, kD = 128, kRuns = 20;
  const std::vector<int> probes = zs::select_probes(kL, zs::ProbeConfig{});
  std::vector<uint16_t> host(size_t(kL) * kHeads * kD);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (auto& h : host) {  // xorshift: uniform in [-2, 2)
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    h = zc::float_to_bf16(float(x >> 40) * (4.0f / 16777216.0f) - 2.0f);
  }
  DeviceBuffer<uint16_t> dq, dk;
  DeviceBuffer<int32_t> dp;
  DeviceBuffer<float> out(size_t(kKv) * kL);
  dq.upload(host);
  dk.upload(host.data(), size_t(kL) * kKv * kD);
  dp.upload(std::vector<int32_t>(probes.begin(), probes.end()));
  double visible = 0.0;  // (probe row, key) pairs per KV head
  for (int t : probes) visible += double(kHeads / kKv) * (t + 1);
  const double flops = 2.0 * kD * visible * kKv;  // per pass
  zc::cuda::ProbeWorkspace ws;
  const zc::cuda::ProbeScoreShape shape{kL, kHeads, kKv, kD};
  const auto call = [&](const Path& path) {
    zc::cuda::detail::probe_scores_with(path, shape, dq.get(), dk.get(), dp.get(), int(probes.size()),
                                        zs::Metric::Normalized, zs::Norm::ProbeCount, out.get(), ws);
  };
  // Median of kRuns event-timed runs after 3 warm-up runs.
  const auto time_ms = [&](const std::function<void()>& fn) {
    const std::vector<float> ms = zc_test::event_times_ms(kRuns, 3, [&](int) { fn(); });
    return 0.5 * (double(ms[kRuns / 2 - 1]) + double(ms[kRuns / 2]));
  };
  // Whole calls (host checks and launches included).
  for (const Path& path : {Path{}, Path{Path::Cublas}}) {
    std::printf("probe scores L=%d heads 32/8 d=128, %zu probes, %s path: median %.3f ms\n", kL,
                probes.size(), path.kind == Path::Cublas ? "cuBLAS" : "fused (default)",
                time_ms([&] { call(path); }));
  }
  // Each fused kernel alone, per variant (the calls above have grown the workspace; the
  // column kernel reads the records its variant's row kernel wrote).
  zc::cuda::detail::ProbeFusedParams p;
  p.q = dq.get(), p.k = dk.get(), p.probes = dp.get();
  p.L = kL, p.n_heads = kHeads, p.n_kv = kKv, p.d = kD, p.n_probes = int(probes.size());
  p.scale_log2 = float(1.4426950408889634 / std::sqrt(double(kD)));
  p.norm = zc::cuda::detail::ScoreNorm::ProbeCount;
  p.rows = reinterpret_cast<zc::cuda::detail::ProbeRowInfo*>(ws.row_info.get());
  p.tile_bad = ws.tile_bad.get(), p.out = out.get();
  for (int rows : {16, 32}) {
    for (int keys : {16, 32}) {
      p.row_warp_rows = rows, p.col_warp_keys = keys;
      ASSERT_LE(size_t(zc::cuda::detail::probe_row_tiles(p)), ws.tile_bad.size());
      const double r = time_ms([&] { zc::cuda::check(zc::cuda::detail::launch_probe_rows(p, nullptr), "rows"); });
      const double c = time_ms([&] { zc::cuda::check(zc::cuda::detail::launch_probe_columns(p, nullptr), "columns"); });
      std::printf("  fused %2d rows / %2d keys per warp: rows %.3f ms (%.0f TFLOPS) + columns %.3f ms "
                  "(%.0f TFLOPS) = %.3f ms\n",
                  rows, keys, r, flops / (r * 1e-3) / 1e12, c, flops / (c * 1e-3) / 1e12, r + c);
    }
  }
}

}  // namespace
