// The forward pass's products (cuda/model/gemm.h) against double precision: the
// streaming kernel (gemv.cu: off by default, up to 8 rows with ZC_GEMV=8, which
// tools/gpu_check.sh also runs) and cuBLAS beyond (cuBLASLt for the bf16 output, its
// plans made for the operands' alignment), fp32 output with beta 1 and 0, bf16 output;
// odd sizes, one row, one output, `in` not a multiple of 8 (the cuBLAS path), many
// rows, and misaligned x (also cuBLAS).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "cuda/model/gemm.h"
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
  zc::cuda::Gemm gemm;
  struct Shape { int n, in, out; };
  for (const Shape s : {Shape{1, 8, 1}, Shape{1, 64, 33}, Shape{3, 200, 7}, Shape{8, 4096, 70}, Shape{5, 1032, 129},
                        Shape{7, 24, 2}, Shape{8, 520, 1000}, Shape{9, 64, 17}, Shape{17, 136, 40}, Shape{2, 30, 5},
                        Shape{4, 14336, 3}, Shape{16, 4096, 70}, Shape{13, 256, 31}, Shape{2, 96, 1},
                        Shape{5, 32, 20}, Shape{1100, 72, 24}}) {
    SCOPED_TRACE(::testing::Message() << s.n << " x " << s.in << " -> " << s.out);
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
