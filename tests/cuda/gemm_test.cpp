// The forward pass's products (cuda/model/gemm.h) against double precision: the
// skinny kernel (gemv.cu, up to 8 rows) and cuBLAS (every shape, with the skinny kernel
// off; cuBLASLt for the bf16 output, its plans made for the operands' alignment), fp32
// output with beta 1 and 0, bf16 output; odd sizes, one row, one output, `in` not a
// multiple of 8 and misaligned x (both cuBLAS), many rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "cuda/model/gemm.h"
#include "cuda/model/layer_kernels.h"
#include "gpu_test.h"

namespace {

using zc::cuda::DeviceBuffer;

std::vector<uint16_t> random_bf16(zc::Rng& rng, size_t n, float scale) {
  std::vector<uint16_t> x(n);
  for (auto& v : x) v = zc::float_to_bf16(float(rng.normal()) * scale);
  return x;
}

// y = x W^T (+ beta y0) in double; the tolerance scales with sum |x_i w_i|.
void reference(const std::vector<uint16_t>& x, const std::vector<uint16_t>& w, int n, int in, int out,
               std::vector<double>& y, std::vector<double>& mag) {
  y.assign(size_t(n) * size_t(out), 0.0);
  mag.assign(y.size(), 0.0);
  for (int r = 0; r < n; ++r) {
    for (int o = 0; o < out; ++o) {
      double s = 0, m = 0;
      for (int i = 0; i < in; ++i) {
        const double p = double(zc::bf16_to_float(x[size_t(r) * size_t(in) + size_t(i)])) *
                         double(zc::bf16_to_float(w[size_t(o) * size_t(in) + size_t(i)]));
        s += p, m += std::abs(p);
      }
      y[size_t(r) * size_t(out) + size_t(o)] = s;
      mag[size_t(r) * size_t(out) + size_t(o)] = m;
    }
  }
}

TEST(CudaGemm, LinearMatchesDoubleForSkinnyAndWideInputs) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(41);
  zc::cuda::Gemm skinny(8), cublas_only(0);
  struct Shape { int n, in, out; };
  for (const Shape s : {Shape{1, 8, 1}, Shape{1, 64, 33}, Shape{3, 200, 7}, Shape{8, 4096, 70}, Shape{5, 1032, 129},
                        Shape{7, 24, 2}, Shape{8, 520, 1000}, Shape{9, 64, 17}, Shape{17, 136, 40}, Shape{2, 30, 5},
                        Shape{4, 14336, 3}, Shape{16, 4096, 70}, Shape{13, 256, 31}, Shape{2, 96, 1},
                        Shape{5, 32, 20}, Shape{1100, 72, 24}}) {
    for (zc::cuda::Gemm* gp : {&skinny, &cublas_only}) {
      zc::cuda::Gemm& gemm = *gp;
      SCOPED_TRACE(::testing::Message() << s.n << " x " << s.in << " -> " << s.out
                                        << (gp == &skinny ? " (skinny up to 8 rows)" : " (cuBLAS)"));
      const auto x = random_bf16(rng, size_t(s.n) * size_t(s.in), 1.0f);
      const auto w = random_bf16(rng, size_t(s.out) * size_t(s.in), 0.05f);
      std::vector<double> want, mag;
      reference(x, w, s.n, s.in, s.out, want, mag);
      DeviceBuffer<uint16_t> dx, dw;
      dx.upload(x), dw.upload(w);
      // fp32, beta 1 (adds into y0) and beta 0. Beta 1 first: the first product of a shape
      // times cuBLASLt's candidates (gemm.h), which must not touch y.
      std::vector<float> y0(want.size());
      for (auto& v : y0) v = float(rng.normal());
      for (float beta : {1.0f, 0.0f}) {
        DeviceBuffer<float> dy;
        dy.upload(y0);
        gemm.linear(dx.get(), s.n, s.in, dw.get(), s.out, dy.get(), beta, nullptr);
        const auto got = dy.download();
        for (size_t e = 0; e < want.size(); ++e) {
          const double ref = want[e] + (beta != 0.0f ? double(y0[e]) : 0.0);
          ASSERT_NEAR(got[e], ref, 1e-5 * (mag[e] + std::abs(ref)) + 1e-6) << "beta " << beta << " element " << e;
        }
      }
      // bf16 output: within one bf16 rounding of the reference.
      DeviceBuffer<uint16_t> dy16(want.size());
      dy16.fill_bytes(0xff);
      gemm.linear_bf16(dx.get(), s.n, s.in, dw.get(), s.out, dy16.get(), nullptr);
      const auto got16 = dy16.download();
      for (size_t e = 0; e < want.size(); ++e) {
        const double g = zc::bf16_to_float(got16[e]);
        ASSERT_NEAR(g, want[e], std::abs(want[e]) / 128.0 + 1e-5 * mag[e] + 1e-6) << "bf16 element " << e;
      }
    }
  }
}

// The gate/up product fused with SwiGLU (decode's rows) against double precision:
// act = silu(g) u with g, u the products with the gate and up halves of W, within the
// bf16 roundings of g, u and act; and bit for bit the unfused path (the skinny product
// to bf16, then the SwiGLU kernel), as gemm.h promises.
TEST(CudaGemm, GateUpSwiGluMatchesDoubleAndTheUnfusedPath) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(45);
  zc::cuda::Gemm gemm(8);
  struct Shape { int n, in, inter; };
  for (const Shape s : {Shape{1, 8, 1}, Shape{8, 64, 33}, Shape{3, 520, 7}, Shape{8, 4096, 100}, Shape{5, 1032, 129},
                        Shape{2, 24, 16}, Shape{7, 136, 9}}) {
    SCOPED_TRACE(::testing::Message() << s.n << " x " << s.in << " -> 2 x " << s.inter);
    const auto x = random_bf16(rng, size_t(s.n) * size_t(s.in), 1.0f);
    const auto w = random_bf16(rng, size_t(2 * s.inter) * size_t(s.in), 0.1f);
    std::vector<double> gu, mag;
    reference(x, w, s.n, s.in, 2 * s.inter, gu, mag);
    DeviceBuffer<uint16_t> dx, dw, dact(size_t(s.n) * size_t(s.inter)), dgu(gu.size()),
        dact2(size_t(s.n) * size_t(s.inter));
    dx.upload(x), dw.upload(w);
    dact.fill_bytes(0xff);
    gemm.linear_swiglu(dx.get(), s.n, s.in, dw.get(), s.inter, dact.get(), nullptr);
    gemm.linear_bf16(dx.get(), s.n, s.in, dw.get(), 2 * s.inter, dgu.get(), nullptr);
    zc::cuda::silu_mul_bf16_to_bf16(dgu.get(), s.n, s.inter, dact2.get(), nullptr);
    const auto act = dact.download(), unfused = dact2.download();
    constexpr double ulp = 1.0 / 256;  // a bf16 rounding, relative
    for (int r = 0; r < s.n; ++r) {
      for (int i = 0; i < s.inter; ++i) {
        const size_t gi = size_t(r) * size_t(2 * s.inter) + size_t(i), ui = gi + size_t(s.inter);
        const double g = gu[gi], u = gu[ui], silu = g / (1.0 + std::exp(-g)), want = silu * u;
        const double dg = std::abs(g) * ulp + 1e-5 * mag[gi], du = std::abs(u) * ulp + 1e-5 * mag[ui];
        const double tol = 1.1 * dg * (std::abs(u) + du) + (std::abs(silu) + 1.1 * dg) * du + std::abs(want) * ulp + 1e-6;
        const size_t e = size_t(r) * size_t(s.inter) + size_t(i);
        ASSERT_NEAR(zc::bf16_to_float(act[e]), want, tol) << "row " << r << " activation " << i;
        ASSERT_EQ(act[e], unfused[e]) << "row " << r << " activation " << i << ": fused and unfused differ";
      }
    }
  }
  // Not a skinny product: refused, nothing launched.
  DeviceBuffer<uint16_t> dx(size_t(9) * 64), dw(size_t(2) * 64), dact(9);
  EXPECT_THROW(gemm.linear_swiglu(dx.get(), 9, 64, dw.get(), 1, dact.get(), nullptr), zc::Error);
}

// More rows than the skinny kernel has forms for: a clear error before any GPU work
// (runs without a GPU too).
TEST(CudaGemm, SkinnyRowsBeyondTheKernelAreRefused) {
  EXPECT_THROW(zc::cuda::Gemm(9), zc::Error);
}

// bf16 outputs go through cuBLASLt plans cached per shape; more shapes than the cache
// holds (a server's prompt lengths) restart it, and every product stays right.
TEST(CudaGemm, ManyShapesThroughThePlanCache) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(43);
  zc::cuda::Gemm gemm;
  const int in = 24, out = 10;
  const auto w = random_bf16(rng, size_t(out) * size_t(in), 0.1f);
  DeviceBuffer<uint16_t> dw;
  dw.upload(w);
  for (int n = 1; n <= 300; ++n) {
    const auto x = random_bf16(rng, size_t(n) * size_t(in), 1.0f);
    std::vector<double> want, mag;
    reference(x, w, n, in, out, want, mag);
    DeviceBuffer<uint16_t> dx, dy(want.size());
    dx.upload(x);
    gemm.linear_bf16(dx.get(), n, in, dw.get(), out, dy.get(), nullptr);
    const auto got = dy.download();
    for (size_t e = 0; e < want.size(); ++e) {
      ASSERT_NEAR(zc::bf16_to_float(got[e]), want[e], std::abs(want[e]) / 128.0 + 1e-5 * mag[e] + 1e-6)
          << n << " rows, element " << e;
    }
  }
}

TEST(CudaGemm, MisalignedRowsFallBackToCublas) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(42);
  zc::cuda::Gemm gemm;
  const int n = 2, in = 64, out = 9;
  const auto x = random_bf16(rng, size_t(n) * size_t(in) + 1, 1.0f);
  const auto w = random_bf16(rng, size_t(out) * size_t(in), 0.1f);
  const std::vector<uint16_t> xs(x.begin() + 1, x.end());
  std::vector<double> want, mag;
  reference(xs, w, n, in, out, want, mag);
  DeviceBuffer<uint16_t> dx, dw;
  dx.upload(x), dw.upload(w);
  DeviceBuffer<float> dy(want.size());
  gemm.linear(dx.get() + 1, n, in, dw.get(), out, dy.get(), 0.0f, nullptr);  // 2-byte aligned x
  const auto got = dy.download();
  for (size_t e = 0; e < want.size(); ++e) ASSERT_NEAR(got[e], want[e], 1e-5 * mag[e] + 1e-6) << e;
  // The bf16 output goes through cuBLASLt, whose plan must not assume 256-byte alignment.
  DeviceBuffer<uint16_t> dy16(want.size());
  gemm.linear_bf16(dx.get() + 1, n, in, dw.get(), out, dy16.get(), nullptr);
  const auto got16 = dy16.download();
  for (size_t e = 0; e < want.size(); ++e) {
    ASSERT_NEAR(zc::bf16_to_float(got16[e]), want[e], std::abs(want[e]) / 128.0 + 1e-5 * mag[e] + 1e-6) << e;
  }
  EXPECT_THROW(gemm.linear(dx.get(), 0, in, dw.get(), out, dy.get(), 0.0f, nullptr), zc::Error);
}

}  // namespace

// Timing of the decode step's products at the Llama-3-8B shape (8 rows), only with
// ZC_TIMING=1: cuBLAS against the skinny kernel (gemv.cu). Each call reads a different
// copy of W from a 2 GiB pool, so the weights come from memory as in a model (L2
// holds 50 MB); the median of 30 cudaEvent-timed calls.
TEST(CudaGemm, TimingLlama3DecodeShapes) {
  const char* on = std::getenv("ZC_TIMING");
  if (on == nullptr || std::strcmp(on, "1") != 0) GTEST_SKIP() << "set ZC_TIMING=1 to time";
  ZC_REQUIRE_GPU();
  constexpr int kRows = 8, kRuns = 30;
  const size_t pool_elems = size_t(1) << 30;  // 2 GiB of bf16
  DeviceBuffer<uint16_t> pool(pool_elems);
  pool.fill_bytes(0x3c);  // bf16 0x3c3c, about 0.0115
  zc::Rng rng(44);
  const auto xh = random_bf16(rng, size_t(kRows) * 14336, 1.0f);
  DeviceBuffer<uint16_t> dx;
  dx.upload(xh);
  DeviceBuffer<float> dy(size_t(kRows) * 128256);
  DeviceBuffer<uint16_t> dy16(size_t(kRows) * 128256);
  dy.fill_bytes(0);
  zc::cuda::Gemm cublas_only(0), skinny(8);
  struct Shape { const char* name; int in, out; bool bf16_out; float beta; };
  for (const Shape s : {Shape{"qkv", 4096, 6144, false, 0.0f}, Shape{"o", 4096, 4096, false, 1.0f},
                        Shape{"gate/up", 4096, 28672, true, 0.0f}, Shape{"down", 14336, 4096, false, 1.0f},
                        Shape{"lm head", 4096, 128256, false, 0.0f}}) {
    const size_t w_elems = size_t(s.in) * size_t(s.out);
    const size_t copies = std::max<size_t>(1, pool_elems / w_elems);
    std::printf("%s %d -> %d:", s.name, s.in, s.out);
    for (zc::cuda::Gemm* gemm : {&cublas_only, &skinny}) {
      const std::vector<float> ms = zc_test::event_times_ms(kRuns, 3, [&](int i) {  // 3 warm-up calls
        const uint16_t* w = pool.get() + (size_t(i) % copies) * w_elems;
        if (s.bf16_out) {
          gemm->linear_bf16(dx.get(), kRows, s.in, w, s.out, dy16.get(), nullptr);
        } else {
          gemm->linear(dx.get(), kRows, s.in, w, s.out, dy.get(), s.beta, nullptr);
        }
      });
      const double us = 1e3 * ms[ms.size() / 2];
      std::printf(" %s %.1f us (%.2f TB/s)", gemm == &skinny ? "skinny" : "cuBLAS", us,
                  double(w_elems) * 2 / (us * 1e-6) / 1e12);
    }
    std::printf("\n");
  }
}
