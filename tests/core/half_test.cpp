#include <cmath>
#include <cstdint>

#include <gtest/gtest.h>

#include "core/half.h"

namespace {

// Reference: the exact value of fp16 bits, computed in double from the definition.
double half_value(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exp = (h >> 10) & 31;
  const int mant = h & 1023;
  if (exp == 0) return sign * std::ldexp(double(mant), -24);
  return sign * std::ldexp(1.0 + mant / 1024.0, exp - 15);
}

TEST(Half, DecodesEveryFiniteValueExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    if (((h >> 10) & 31) == 31) continue;
    EXPECT_EQ(double(zc::half_to_float(uint16_t(h))), half_value(uint16_t(h))) << h;
  }
}

TEST(Half, RoundsToNearestRepresentable) {
  // For random floats, the chosen fp16 is at least as close as its neighbours.
  uint64_t s = 12345;
  for (int i = 0; i < 200000; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const double x = std::ldexp(double(int64_t(s >> 11) % 2000001 - 1000000) / 1e6, int(s % 40) - 26);
    const float f = float(x);
    const uint16_t h = zc::float_to_half(f);
    const double err = std::fabs(half_value(h) - double(f));
    for (int d : {-1, 1}) {
      const uint16_t n = uint16_t(h + d);
      if ((n & 0x7fff) >= 0x7c00 || ((n ^ h) & 0x8000)) continue;
      EXPECT_LE(err, std::fabs(half_value(n) - double(f))) << f;
    }
  }
}

TEST(Half, SpecialValues) {
  EXPECT_EQ(zc::float_to_half(0.0f), 0u);
  EXPECT_EQ(zc::float_to_half(-0.0f), 0x8000u);
  EXPECT_EQ(zc::float_to_half(65504.0f), 0x7bffu);
  EXPECT_EQ(zc::float_to_half(1e6f), 0x7c00u);
  EXPECT_TRUE(std::isnan(zc::half_to_float(zc::float_to_half(NAN))));
}

TEST(Bf16, RoundTripAndRounding) {
  EXPECT_EQ(zc::bf16_to_float(zc::float_to_bf16(1.0f)), 1.0f);
  // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties to even gives 1.
  EXPECT_EQ(zc::bf16_to_float(zc::float_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(zc::bf16_to_float(zc::float_to_bf16(1.0f + 3.0f / 256)), 1.0f + 1.0f / 64);
}

}  // namespace
