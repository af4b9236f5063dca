// GPU flash prefill attention (cuda/kv/prefill_attention.h) against causal softmax
// attention in double precision over the same fp16/bf16-rounded inputs: many lengths
// (1, odd, tile edges), head_dim 64 and 128, GQA groups 1..8, batches.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "cuda/kv/prefill_attention.h"
#include "cuda/kv/prefill_launch.h"
#include "gpu_test.h"

namespace {

using zc::cuda::DeviceBuffer;
using zc::cuda::Dtype;

uint16_t to_bits(float x, Dtype t) { return t == Dtype::F16 ? zc::float_to_half(x) : zc::float_to_bf16(x); }
double from_bits(uint16_t b, Dtype t) {
  return t == Dtype::F16 ? double(zc::half_to_float(b)) : double(zc::bf16_to_float(b));
}

struct Shape {
  int batch, tokens, n_heads, n_kv, d;
};

// A kernel variant (prefill_launch.h): warps per CTA and query rows per warp; {0, 0}
// goes through the public API (the default variant, 4 x 32).
struct Variant {
  int warps = 0, rows = 0;
};
const Variant kVariants[] = {{4, 16}, {8, 16}, {4, 32}};

// Relative L2 error of the GPU output against the double reference for one variant
// (launched directly unless it is {0, 0}). scale 0 is the
// default 1 / sqrt(d); `spread` is the standard deviation of q and k (larger: peakier
// softmax, more running-max corrections across tiles).
double run_case(const Shape& s, Dtype type, zc::Rng& rng, Variant var = {}, float scale = 0.0f,
                float spread = 1.0f) {
  const size_t qn = size_t(s.batch) * size_t(s.tokens) * size_t(s.n_heads) * size_t(s.d);
  const size_t kn = size_t(s.batch) * size_t(s.tokens) * size_t(s.n_kv) * size_t(s.d);
  std::vector<uint16_t> q(qn), k(kn), v(kn);
  for (auto& x : q) x = to_bits(rng.normal(0.0f, spread), type);
  for (auto& x : k) x = to_bits(rng.normal(0.0f, spread), type);
  for (auto& x : v) x = to_bits(rng.normal(), type);
  DeviceBuffer<uint16_t> dq, dk, dv, dout(qn);
  // Every row's base-2 log-sum-exp (the optional lse output ZipCache's probe pass reads).
  const size_t rows = size_t(s.batch) * size_t(s.tokens) * size_t(s.n_heads);
  DeviceBuffer<float> dlse(rows);
  dlse.fill_bytes(0xff);
  dq.upload(q);
  dk.upload(k);
  dv.upload(v);
  dout.fill_bytes(0xff);  // NaN in both types: every output must be written
  if (var.warps == 0) {
    zc::cuda::PrefillShape shape;
    shape.batch = s.batch, shape.tokens = s.tokens, shape.n_heads = s.n_heads;
    shape.n_kv_heads = s.n_kv, shape.head_dim = s.d, shape.scale = scale;
    zc::cuda::prefill_attention(shape, type, dq.get(), dk.get(), dv.get(), dout.get(), nullptr, dlse.get());
  } else {
    zc::cuda::detail::PrefillParams p;
    p.q = dq.get(), p.k = dk.get(), p.v = dv.get(), p.out = dout.get(), p.lse = dlse.get();
    p.batch = s.batch, p.tokens = s.tokens, p.n_heads = s.n_heads, p.n_kv = s.n_kv, p.d = s.d;
    p.scale_log2 = float((scale > 0.0f ? double(scale) : 1.0 / std::sqrt(double(s.d))) * 1.4426950408889634);
    p.warps = var.warps, p.warp_rows = var.rows;
    zc::cuda::check(zc::cuda::detail::launch_prefill(p, type == Dtype::BF16, nullptr), "prefill launch");
  }
  zc::cuda::check(cudaDeviceSynchronize(), "prefill test");
  const std::vector<uint16_t> out = dout.download();
  const std::vector<float> lse = dlse.download();
  double worst_lse = 0.0;

  const int g = s.n_heads / s.n_kv, d = s.d;
  std::vector<double> qd(qn), kd(kn), vd(kn);
  for (size_t i = 0; i < qn; ++i) qd[i] = from_bits(q[i], type);
  for (size_t i = 0; i < kn; ++i) kd[i] = from_bits(k[i], type), vd[i] = from_bits(v[i], type);
  const double sc_mul = scale > 0.0f ? double(scale) : 1.0 / std::sqrt(double(d));
  double err2 = 0.0, ref2 = 0.0;
  std::vector<double> sc(static_cast<size_t>(s.tokens)), acc(static_cast<size_t>(d));
  for (int b = 0; b < s.batch; ++b) {
    for (int h = 0; h < s.n_heads; ++h) {
      const int kh = h / g;
      for (int i = 0; i < s.tokens; ++i) {
        const size_t qo = ((size_t(b) * size_t(s.tokens) + size_t(i)) * size_t(s.n_heads) + size_t(h)) * size_t(d);
        double m = -INFINITY;
        for (int j = 0; j <= i; ++j) {
          const size_t ko = ((size_t(b) * size_t(s.tokens) + size_t(j)) * size_t(s.n_kv) + size_t(kh)) * size_t(d);
          double dot = 0.0;
          for (int c = 0; c < d; ++c) dot += qd[qo + size_t(c)] * kd[ko + size_t(c)];
          sc[size_t(j)] = dot * sc_mul;
          m = std::max(m, sc[size_t(j)]);
        }
        double l = 0.0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int j = 0; j <= i; ++j) {
          const double p = std::exp(sc[size_t(j)] - m);
          l += p;
          const size_t vo = ((size_t(b) * size_t(s.tokens) + size_t(j)) * size_t(s.n_kv) + size_t(kh)) * size_t(d);
          for (int c = 0; c < d; ++c) acc[size_t(c)] += p * vd[vo + size_t(c)];
        }
        // log2 sum_j exp(sc_j) = (m + ln l) / ln 2.
        const double want_lse = (m + std::log(l)) / std::log(2.0);
        const size_t row = (size_t(b) * size_t(s.tokens) + size_t(i)) * size_t(s.n_heads) + size_t(h);
        const double lse_err = std::abs(double(lse[row]) - want_lse) / (1.0 + std::abs(want_lse));
        worst_lse = std::isnan(lse_err) ? INFINITY : std::max(worst_lse, lse_err);
        for (int c = 0; c < d; ++c) {
          const double want = acc[size_t(c)] / l;
          const double got = from_bits(out[qo + size_t(c)], type);
          EXPECT_FALSE(std::isnan(got)) << "batch " << b << " head " << h << " token " << i;
          if (std::isnan(got)) return 1.0;
          err2 += (got - want) * (got - want);
          ref2 += want * want;
        }
      }
    }
  }
  // fp32 logits of exact inputs, ex2.approx and fp32 sums: far below 1e-4.
  EXPECT_LT(worst_lse, 1e-4) << "row log-sum-exp";
  return std::sqrt(err2 / ref2);
}

TEST(CudaPrefillAttention, MatchesDoubleCausalReference) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(5);
  const std::vector<Shape> shapes = {
      {1, 1, 1, 1, 64},    {1, 2, 2, 1, 128},  {2, 17, 4, 1, 64},   {1, 64, 8, 8, 128},
      {1, 65, 6, 2, 128},  {2, 130, 8, 1, 64}, {1, 257, 16, 2, 128}, {1, 200, 7, 7, 64},
      {1, 333, 32, 8, 128},
  };
  for (const Shape& s : shapes) {
    for (Dtype t : {Dtype::F16, Dtype::BF16}) {
      SCOPED_TRACE(::testing::Message() << "batch " << s.batch << ", " << s.tokens << " tokens, heads "
                                        << s.n_heads << "/" << s.n_kv << ", d " << s.d << ", "
                                        << (t == Dtype::F16 ? "fp16" : "bf16"));
      const double rel = run_case(s, t, rng);
      // Inputs are exact in both; P and the output are rounded to the type.
      EXPECT_LT(rel, t == Dtype::F16 ? 2e-3 : 1.5e-2);
    }
  }
}

// Tile edges of every kernel variant (64 or 128 query rows per CTA, 64-key tiles) and
// every GQA group size, with batches.
TEST(CudaPrefillAttention, TileEdgesAndGroups) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(11);
  for (const Variant& var : kVariants) {
    for (int tokens : {63, 64, 65, 127, 128, 129, 191, 193, 257}) {
      for (int g : {1, 2, 4, 8}) {
        const int d = (tokens + g) % 2 == 0 ? 128 : 64;
        const Shape s{1 + tokens % 2, tokens, 2 * g, 2, d};
        for (Dtype t : {Dtype::F16, Dtype::BF16}) {
          SCOPED_TRACE(::testing::Message() << var.warps << "x" << var.rows << " rows, batch " << s.batch << ", " << tokens
                                            << " tokens, group " << g << ", d " << d << ", "
                                            << (t == Dtype::F16 ? "fp16" : "bf16"));
          EXPECT_LT(run_case(s, t, rng, var), t == Dtype::F16 ? 2e-3 : 1.5e-2);
        }
      }
    }
  }
}

// Peaky softmax (q, k with standard deviation 2.5: the running max moves across tiles
// and most probabilities underflow) and a caller-given scale.
TEST(CudaPrefillAttention, PeakyScoresAndCustomScale) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(12);
  for (const Variant& var : {Variant{}, Variant{4, 16}, Variant{8, 16}}) {
    for (float scale : {0.0f, 0.3f}) {
      for (Dtype t : {Dtype::F16, Dtype::BF16}) {
        for (const Shape& s : {Shape{1, 300, 4, 2, 128}, Shape{2, 161, 8, 1, 64}}) {
          SCOPED_TRACE(::testing::Message() << var.warps << "x" << var.rows << " rows, scale " << scale << ", " << s.tokens
                                            << " tokens, d " << s.d << ", "
                                            << (t == Dtype::F16 ? "fp16" : "bf16"));
          EXPECT_LT(run_case(s, t, rng, var, scale, 2.5f), t == Dtype::F16 ? 2e-3 : 1.5e-2);
        }
      }
    }
  }
}

// Timing at the Llama-3-8B prefill shape (32 query heads, 8 KV heads, d 128, bf16,
// batch 1), only with ZC_TIMING=1: the median of 20 cudaEvent-timed runs per kernel
// variant, and TFLOPS counting the causal half of 4 L^2 d flops per head.
TEST(CudaPrefill, TimingLlama3Shape) {
  const char* on = std::getenv("ZC_TIMING");
  if (on == nullptr || std::strcmp(on, "1") != 0) GTEST_SKIP() << "set ZC_TIMING=1 to time";
  ZC_REQUIRE_GPU();
  constexpr int kHeads = 32, kKv = 8, kD = 128, kRuns = 20;
  for (int tokens : {4096, 8192}) {
    const size_t qn = size_t(tokens) * kHeads * kD, kn = size_t(tokens) * kKv * kD;
    std::vector<uint16_t> host(qn);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (auto& h : host) {  // xorshift: uniform in [-2, 2), fast for 2^25 values
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      h = zc::float_to_bf16(float(x >> 40) * (4.0f / 16777216.0f) - 2.0f);
    }
    DeviceBuffer<uint16_t> dq, dk, dv, dout(qn);
    dq.upload(host);
    dk.upload(host.data(), kn);
    dv.upload(host.data() + kn, kn);
    for (const Variant& var : kVariants) {
      zc::cuda::detail::PrefillParams p;
      p.q = dq.get(), p.k = dk.get(), p.v = dv.get(), p.out = dout.get();
      p.batch = 1, p.tokens = tokens, p.n_heads = kHeads, p.n_kv = kKv, p.d = kD;
      p.scale_log2 = float(1.4426950408889634 / std::sqrt(double(kD)));
      p.warps = var.warps, p.warp_rows = var.rows;
      const std::vector<float> ms = zc_test::event_times_ms(kRuns, 3, [&](int) {  // 3 warm-up runs
        zc::cuda::check(zc::cuda::detail::launch_prefill(p, true, nullptr), "prefill launch");
      });
      const double med = 0.5 * (double(ms[kRuns / 2 - 1]) + double(ms[kRuns / 2]));
      const double flops = 4.0 * double(tokens) * double(tokens) * kD * kHeads / 2.0;
      std::printf("prefill bf16 L=%d heads 32/8 d=128, %d warps x %d rows: median %.3f ms (min %.3f), %.1f TFLOPS\n",
                  tokens, var.warps, var.rows, med, double(ms.front()), flops / (med * 1e-3) / 1e12);
    }
  }
}

TEST(CudaPrefillAttention, BadShapesThrow) {
  zc::cuda::PrefillShape s;
  s.batch = 1, s.tokens = 4, s.n_heads = 4, s.n_kv_heads = 3, s.head_dim = 64;
  int dummy = 0;
  EXPECT_THROW(zc::cuda::prefill_attention(s, Dtype::F16, &dummy, &dummy, &dummy, &dummy), zc::Error);
  s.n_kv_heads = 2, s.head_dim = 96;
  EXPECT_THROW(zc::cuda::prefill_attention(s, Dtype::F16, &dummy, &dummy, &dummy, &dummy), zc::Error);
  s.head_dim = 64, s.tokens = 0;
  EXPECT_THROW(zc::cuda::prefill_attention(s, Dtype::F16, &dummy, &dummy, &dummy, &dummy), zc::Error);
}

}  // namespace
