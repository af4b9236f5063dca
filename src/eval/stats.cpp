#include "eval/stats.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace zc::eval {

Interval wilson(long correct, long n, double z) {
  if (n < 0 || correct < 0 || correct > n) fail("wilson: {} correct out of {} is not a proportion", correct, n);
  if (n == 0) return {0.0, 1.0};
  const double nn = double(n), p = double(correct) / nn, z2 = z * z;
  const double denom = 1.0 + z2 / nn;
  const double center = (p + z2 / (2.0 * nn)) / denom;
  const double half = z / denom * std::sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn));
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

}  // namespace zc::eval
