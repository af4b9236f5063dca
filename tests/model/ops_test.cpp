// linear (cblas_sgemm), RMSNorm and SiLU*up against double-precision loops written
// here, over random shapes including length 1 and odd sizes.
#include "model/ops.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"

namespace zc::model {
namespace {

std::vector<float> randn(Rng& rng, size_t n) {
  std::vector<float> v(n);
  for (float& x : v) x = rng.normal();
  return v;
}

TEST(Ops, LinearMatchesDouble) {
  Rng rng(1);
  const int shapes[][3] = {{1, 1, 1},     {1, 7, 5},   {3, 17, 33},
                           {64, 128, 96}, {5, 300, 1}, {2, 1, 9}};
  for (const auto& s : shapes) {
    const int n = s[0], in = s[1], out = s[2];
    for (bool with_bias : {false, true}) {
      const auto x = randn(rng, static_cast<size_t>(n) * in),
                 w = randn(rng, static_cast<size_t>(out) * in);
      const auto b = randn(rng, out);
      std::vector<float> y(static_cast<size_t>(n) * out, 123.0f);  // garbage must be overwritten
      linear(x.data(), n, in, w.data(), out, with_bias ? b.data() : nullptr, y.data());
      for (int r = 0; r < n; ++r) {
        for (int o = 0; o < out; ++o) {
          double want = with_bias ? b[o] : 0.0, scale = 1.0;
          for (int i = 0; i < in; ++i) {
            want += static_cast<double>(x[r * in + i]) * w[o * in + i];
            scale += std::abs(static_cast<double>(x[r * in + i]) * w[o * in + i]);
          }
          EXPECT_NEAR(y[r * out + o], want, 1e-6 * scale) << n << "x" << in << "x" << out;
        }
      }
    }
  }
}

TEST(Ops, RmsNormMatchesDouble) {
  Rng rng(2);
  for (int rows : {1, 3, 17, 40}) {
    for (int dim : {1, 2, 7, 128, 255}) {
      for (float eps : {1e-6f, 1e-5f}) {
        auto x = randn(rng, static_cast<size_t>(rows) * dim);
        const auto w = randn(rng, dim);
        std::vector<float> y(x.size());
        rmsnorm(x.data(), rows, dim, w.data(), eps, y.data());
        for (int r = 0; r < rows; ++r) {
          double ms = 0;
          for (int i = 0; i < dim; ++i) ms += static_cast<double>(x[r * dim + i]) * x[r * dim + i];
          const double inv = 1.0 / std::sqrt(ms / dim + eps);
          for (int i = 0; i < dim; ++i) {
            const double want = w[i] * x[r * dim + i] * inv;
            EXPECT_NEAR(y[r * dim + i], want, 1e-6 * (1 + std::abs(want)));
          }
        }
        // In place gives the same result.
        rmsnorm(x.data(), rows, dim, w.data(), eps, x.data());
        EXPECT_EQ(x, y);
      }
    }
  }
}

TEST(Ops, RmsNormOfZerosIsZero) {
  const std::vector<float> x(8, 0.0f), w(8, 1.0f);
  std::vector<float> y(8, 5.0f);
  rmsnorm(x.data(), 1, 8, w.data(), 1e-6f, y.data());
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(Ops, SiluMulMatchesDouble) {
  Rng rng(3);
  auto g = randn(rng, 101), u = randn(rng, 101);
  g[0] = -100.0f;  // exp overflows to inf in fp32: silu must be 0, not NaN
  g[1] = 100.0f;
  g[2] = 0.0f;
  for (float& v : g) v *= 3.0f;
  const auto g0 = g;
  silu_mul(g.data(), u.data(), g.size());
  for (size_t i = 0; i < g.size(); ++i) {
    const double want = g0[i] / (1.0 + std::exp(-static_cast<double>(g0[i]))) * u[i];
    EXPECT_NEAR(g[i], want, 1e-6 * (1 + std::abs(want))) << i;
  }
}

TEST(Ops, AddInplace) {
  std::vector<float> a{1, 2, 3}, b{0.5f, -2, 4};
  add_inplace(a.data(), b.data(), 3);
  EXPECT_EQ(a, (std::vector<float>{1.5f, 0, 7}));
}

}  // namespace
}  // namespace zc::model
