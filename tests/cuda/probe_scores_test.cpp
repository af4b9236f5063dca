// GPU probe pass (cuda/saliency/probe_scores.h) against the saliency scores of SPEC.md
// section 3 computed in double precision here from the same bf16-rounded q and k:
// lengths 1..1000, GQA groups 1/4/8, head_dim 64/128, accumulated and normalized
// (probe-count and full divisors), custom scales, peaky attention; unseen tokens exact
// 0; the CPU saliency::scores as a second opinion; argument errors; invalid probes.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "common/error_of.h"
#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "cuda/saliency/probe_scores.h"
#include "cuda/saliency/top_r.h"
#include "gpu_test.h"
#include "saliency/saliency.h"

namespace {

namespace zs = zc::saliency;
using zc::cuda::DeviceBuffer;

struct Case {
  int L, n_heads, n_kv, d;
  float amp = 1.0f;    // q and k ~ N(0, amp^2): larger amp, peakier attention
  float scale = 0.0f;  // 0: 1 / sqrt(d)
};

struct Inputs {
  std::vector<uint16_t> q, k;  // bf16 bits
  std::vector<int> probes;
};

Inputs make_inputs(const Case& c, zc::Rng& rng, const zs::ProbeConfig& pc) {
  Inputs in;
  in.q.resize(size_t(c.L) * size_t(c.n_heads) * size_t(c.d));
  in.k.resize(size_t(c.L) * size_t(c.n_kv) * size_t(c.d));
  for (auto& x : in.q) x = zc::float_to_bf16(rng.normal() * c.amp);
  for (auto& x : in.k) x = zc::float_to_bf16(rng.normal() * c.amp);
  in.probes = zs::select_probes(c.L, pc);
  return in;
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

std::vector<float> run_gpu(const Case& c, const Inputs& in, zs::Metric metric, zs::Norm norm,
                           zc::cuda::ProbeWorkspace& ws, cudaStream_t stream = nullptr) {
  DeviceBuffer<uint16_t> dq, dk;
  DeviceBuffer<int32_t> dp;
  dq.upload(in.q);
  dk.upload(in.k);
  dp.upload(std::vector<int32_t>(in.probes.begin(), in.probes.end()));
  DeviceBuffer<float> out(size_t(c.n_kv) * size_t(c.L));
  out.fill_bytes(0xff);  // NaN: every score must be written
  zc::cuda::ProbeScoreShape shape;
  shape.L = c.L, shape.n_heads = c.n_heads, shape.n_kv_heads = c.n_kv, shape.head_dim = c.d;
  shape.scale = c.scale;
  zc::cuda::probe_scores(shape, dq.get(), dk.get(), dp.get(), int(in.probes.size()), metric, norm,
                         out.get(), ws, stream);
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

void check_case(const Case& c, zc::Rng& rng, zc::cuda::ProbeWorkspace& ws, const zs::ProbeConfig& pc) {
  SCOPED_TRACE(::testing::Message() << "L " << c.L << ", heads " << c.n_heads << "/" << c.n_kv
                                    << ", d " << c.d << ", amp " << c.amp << ", scale " << c.scale);
  const Inputs in = make_inputs(c, rng, pc);
  const std::vector<double> sums = reference_sums(c, in);
  for (auto [metric, norm] : {std::pair{zs::Metric::Accumulated, zs::Norm::ProbeCount},
                              std::pair{zs::Metric::Accumulated, zs::Norm::Full},
                              std::pair{zs::Metric::Normalized, zs::Norm::ProbeCount},
                              std::pair{zs::Metric::Normalized, zs::Norm::Full}}) {
    SCOPED_TRACE(zs::metric_name(metric) + " / " + zs::norm_name(norm));
    expect_close(c, in, run_gpu(c, in, metric, norm, ws), reference_scores(c, in, sums, metric, norm));
  }
}

TEST(CudaProbeScores, MatchesDoubleReference) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(44);
  zc::cuda::ProbeWorkspace ws;  // one workspace across all shapes: grows and is reused
  zs::ProbeConfig pc;
  pc.recent_ratio = 0.1, pc.random_ratio = 0.1;
  for (int L : {1, 2, 5, 37, 300, 1000}) {
    for (int g : {1, 2, 4, 8}) {
      for (int d : {64, 128}) {
        const int n_kv = L >= 1000 ? 1 : (L >= 300 ? 2 : 3);
        pc.seed = rng.engine()();
        check_case({L, g * n_kv, n_kv, d}, rng, ws, pc);
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
  check_case({200, 8, 2, 128, 3.0f}, rng, ws, pc);         // near one-hot rows
  check_case({129, 4, 4, 64, 1.0f, 0.3f}, rng, ws, pc);    // explicit scale
  check_case({33, 4, 1, 64, 1.0f, 1e-3f}, rng, ws, pc);    // almost uniform rows
  pc.recent_ratio = 1.0, pc.random_ratio = 0.0;            // every row a probe (H2O-like)
  check_case({37, 8, 2, 64}, rng, ws, pc);
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
  for (const std::vector<int>& probes : {std::vector<int>{3, 3}, std::vector<int>{5, 2},
                                         std::vector<int>{4, 20}, std::vector<int>{-1, 19}}) {
    in.probes = probes;
    const std::vector<float> got = run_gpu(c, in, zs::Metric::Normalized, zs::Norm::ProbeCount, ws);
    for (float v : got) ASSERT_TRUE(std::isnan(v)) << probes[0] << ", " << probes[1];
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
  expect_close(c, in, run_gpu(c, in, zs::Metric::Accumulated, zs::Norm::ProbeCount, ws),
               reference_sums(c, in));
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

}  // namespace
