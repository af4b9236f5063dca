// The group quantizer of SPEC.md section 1: fit_affine / encode / decode.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "quant/quantizer.h"
#include "reference.h"

namespace zq = zc::quant;
using zc_test::half_value;
using zc_test::nearest_half;

namespace {

TEST(Affine, FitsMinAndRangeOverAStride) {
  // Elements 0, 2, 4 of the array: {5, -1, 3}; the 99s are skipped by the stride.
  const float x[] = {5, 99, -1, 99, 3};
  const zq::Affine a = zq::fit_affine(x, 3, 2, 2);
  EXPECT_EQ(half_value(a.lo), -1.0);
  EXPECT_EQ(half_value(a.step), 2.0);  // (5 - -1) / 3
  EXPECT_EQ(zq::encode(5, a, 2), 3);
  EXPECT_EQ(zq::encode(-1, a, 2), 0);
  EXPECT_EQ(zq::encode(0.9f, a, 2), 1);  // (0.9 + 1) / 2 = 0.95
  EXPECT_EQ(zq::encode(2.1f, a, 2), 2);  // 1.55
  EXPECT_EQ(zq::encode(100, a, 2), 3);   // clamped high
  EXPECT_EQ(zq::encode(-50, a, 2), 0);   // clamped low
  EXPECT_EQ(zq::decode(0, a), -1.0f);
  EXPECT_EQ(zq::decode(3, a), 5.0f);
  const zq::Affine b = zq::fit_affine(x, 5, 1, 8);
  EXPECT_EQ(half_value(b.step), nearest_half(100.0 / 255));
}

TEST(Affine, ParametersAreRoundedToFp16) {
  const float x[] = {0.1f, 0.7f};
  const zq::Affine a = zq::fit_affine(x, 2, 1, 4);
  EXPECT_EQ(half_value(a.lo), nearest_half(double(0.1f)));
  EXPECT_EQ(half_value(a.step), nearest_half((double(0.7f) - double(0.1f)) / 15));
}

TEST(Affine, ZeroRangeStoresZeroStepAndDecodesExactly) {
  for (float v : {0.0f, 2.5f, -3.25f, 1024.0f}) {
    const float x[] = {v, v, v};
    for (int bits : {2, 4, 8}) {
      const zq::Affine a = zq::fit_affine(x, 3, 1, bits);
      EXPECT_EQ(a.step, 0);
      const uint8_t c = zq::encode(v, a, bits);
      EXPECT_EQ(c, 0);
      EXPECT_EQ(zq::decode(c, a), v);
      EXPECT_FALSE(std::isnan(zq::decode(3, a)));
    }
  }
  // Not fp16-representable: decodes to the fp16 nearest value, never NaN.
  const float w[] = {0.1f};
  EXPECT_EQ(double(zq::decode(0, zq::fit_affine(w, 1, 1, 2))), nearest_half(double(0.1f)));
}

TEST(Affine, EncodePicksTheNearestGridPoint) {
  std::mt19937 gen(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int bits : {2, 4, 8}) {
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<float> x(9);
      const float s = std::exp(nd(gen) * 2);
      for (auto& v : x) v = nd(gen) * s + nd(gen);
      const zq::Affine a = zq::fit_affine(x.data(), x.size(), 1, bits);
      for (int k = 0; k < 20; ++k) {
        const float v = nd(gen) * s * 1.5f;
        const double got = zq::decode(zq::encode(v, a, bits), a);
        double best = INFINITY;
        for (int c = 0; c < (1 << bits); ++c) {
          best = std::min(best, std::fabs(half_value(a.lo) + c * half_value(a.step) - v));
        }
        ASSERT_NEAR(std::fabs(got - v), best, 1e-6 * (std::fabs(v) + s)) << bits << " bits";
      }
    }
  }
}

TEST(Affine, RejectsBadInput) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const float with_nan[] = {1, nan, 2};
  const float with_inf[] = {1, 2, -inf};
  const float huge[] = {-1e6f, 1};
  const float ok[] = {1, 2};
  EXPECT_THROW(zq::fit_affine(with_nan, 3, 1, 4), zc::Error);
  EXPECT_THROW(zq::fit_affine(with_inf, 3, 1, 4), zc::Error);
  EXPECT_THROW(zq::fit_affine(huge, 2, 1, 4), zc::Error);
  EXPECT_THROW(zq::fit_affine(ok, 0, 1, 4), zc::Error);
  EXPECT_THROW(zq::fit_affine(ok, 2, 1, 3), zc::Error);
  EXPECT_THROW(zq::encode(1, zq::Affine{}, 5), zc::Error);
}

}  // namespace
