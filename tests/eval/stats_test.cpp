// Wilson intervals against an independent double-precision reference: the endpoints
// are the roots in p of n (k/n - p)^2 = z^2 p (1 - p), solved here as a quadratic.
#include "eval/stats.h"

#include <cmath>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/rng.h"
#include "eval/progress.h"

namespace {

using zc::eval::wilson;

std::pair<long double, long double> quadratic_reference(long k, long n, long double z) {
  const long double a = n + z * z, b = -(2.0L * k + z * z), c = (long double)k * k / n;
  const long double disc = std::sqrt(b * b - 4 * a * c);
  return {(-b - disc) / (2 * a), (-b + disc) / (2 * a)};
}

TEST(Wilson, MatchesTheQuadraticRootsOnRandomCounts) {
  zc::Rng rng(5);
  for (int t = 0; t < 500; ++t) {
    const long n = t < 3 ? 1 : long(rng.integer(1, t < 250 ? 30 : 5000));
    const long k = t == 0 ? 0 : t == 1 ? 1 : long(rng.integer(0, n));
    const auto [lo, hi] = quadratic_reference(k, n, 1.959963984540054L);
    const auto ci = wilson(k, n);
    EXPECT_NEAR(ci.lo, double(lo), 1e-12) << k << "/" << n;
    EXPECT_NEAR(ci.hi, double(hi), 1e-12) << k << "/" << n;
    EXPECT_LE(ci.lo, double(k) / n + 1e-15);
    EXPECT_GE(ci.hi, double(k) / n - 1e-15);
  }
}

TEST(Wilson, PublishedValuesAndEdges) {
  // Brown, Cai and DasGupta (2001) style checks: 0/10 and 5/10 at 95%.
  EXPECT_NEAR(wilson(0, 10).hi, 0.27753279, 1e-7);
  EXPECT_EQ(wilson(0, 10).lo, 0.0);
  EXPECT_NEAR(wilson(5, 10).lo, 0.23659309, 1e-7);
  EXPECT_NEAR(wilson(5, 10).hi, 0.76340691, 1e-7);
  EXPECT_NEAR(wilson(10, 10).hi, 1.0, 1e-15);
  EXPECT_NEAR(wilson(10, 10).lo, 1.0 - 0.27753279, 1e-7);  // symmetric to 0/10
  EXPECT_EQ(wilson(0, 0).lo, 0.0);
  EXPECT_EQ(wilson(0, 0).hi, 1.0);
  EXPECT_THROW(wilson(3, 2), zc::Error);
  EXPECT_THROW(wilson(-1, 2), zc::Error);
}

TEST(Progress, DurationAndLine) {
  using zc::eval::format_duration;
  EXPECT_EQ(format_duration(42.4), "42s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(3725), "1h02m");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_duration(NAN), "?");
  // 10 of 40 done, 4 computed in 8 s: 2 s per item, 30 left -> 1m00s.
  const std::string line = zc::eval::progress_line({10, 40, 4, 8.0, "lines lines=50 fp16 #9"}, 8);
  EXPECT_EQ(line, "[##......] 10/40   25%  ETA 1m00s  lines lines=50 fp16 #9");
  EXPECT_NE(zc::eval::progress_line({3, 40, 0, 0.0, "x"}).find("ETA ?"), std::string::npos);
  EXPECT_NE(zc::eval::progress_line({40, 40, 2, 1.0, "x"}).find("100%  ETA 0s"), std::string::npos);
}

}  // namespace
