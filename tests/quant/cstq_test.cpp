// CSTQ (SPEC.md section 2) on data with outlier channels: dividing the columns by
// sqrt(max |x|) before tokenwise quantization is what lets 2-bit values survive.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "quant/quantizer.h"

namespace zq = zc::quant;

namespace {

double mse(const std::vector<float>& x, const zq::QuantizedMatrix& q) {
  std::vector<float> out(x.size());
  zq::dequantize(q, out.data());
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += (double(out[i]) - x[i]) * (double(out[i]) - x[i]);
  return s / double(x.size());
}

TEST(Cstq, BeatsTokenwiseOnOutlierChannels) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    const int rows = 256, cols = 128;
    std::mt19937 gen(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(size_t(rows) * cols);
    for (auto& v : x) v = nd(gen);
    for (int c : {3, 50, 77, 120}) {
      for (int r = 0; r < rows; ++r) x[size_t(r) * cols + size_t(c)] *= 20.0f;
    }
    for (int bits : {2, 4}) {
      const double tok = mse(x, zq::quantize(x.data(), rows, cols, bits, zq::Scheme::Tokenwise));
      const double cst = mse(x, zq::quantize(x.data(), rows, cols, bits, zq::Scheme::Cstq));
      if (seed == 1)
        std::printf("outlier channels, %d bits: MSE tokenwise %.4f, cstq %.4f\n", bits, tok, cst);
      EXPECT_LT(cst, tok) << bits << " bits, seed " << seed;
      if (bits == 2) {
        EXPECT_LT(cst, 0.75 * tok) << "seed " << seed;
      }
    }
  }
}

TEST(Cstq, ZeroColumnStaysExactlyZero) {
  std::mt19937 gen(9);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (int rows : {1, 2, 33}) {
    std::vector<float> x(size_t(rows) * 6);
    for (auto& v : x) v = nd(gen);
    for (int r = 0; r < rows; ++r) x[size_t(r) * 6 + 1] = 0.0f;
    for (int bits : {2, 4, 8}) {
      const auto q = zq::quantize(x.data(), rows, 6, bits, zq::Scheme::Cstq);
      EXPECT_EQ(q.channel_scale[1], 0);
      std::vector<float> out(x.size(), 1.0f);
      zq::dequantize(q, out.data());
      for (int r = 0; r < rows; ++r) EXPECT_EQ(out[size_t(r) * 6 + 1], 0.0f);
    }
  }
}

}  // namespace
