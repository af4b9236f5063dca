// Independent double-precision references for the quantizer tests (SPEC.md
// sections 1-2), written from the formulas, not from src/quant.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace zc_test {

// The exact value of fp16 bits.
inline double half_value(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exp = (h >> 10) & 31;
  const int mant = h & 1023;
  if (exp == 0) return sign * std::ldexp(double(mant), -24);
  if (exp == 31) return sign * INFINITY;
  return sign * std::ldexp(1.0 + mant / 1024.0, exp - 15);
}

// The nearest fp16 value to d (ties to even mantissa), by binary search over the
// monotone positive fp16 bit patterns; beyond the largest finite half: infinity.
inline double nearest_half(double d) {
  const double a = std::fabs(d);
  if (a >= 65520.0) return std::copysign(INFINITY, d);
  int lo = 0, hi = 0x7bff;  // invariant: value(lo) <= a (or lo == 0)
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (half_value(uint16_t(mid)) <= a)
      lo = mid;
    else
      hi = mid - 1;
  }
  int best = lo;
  if (lo < 0x7bff) {
    const double below = a - half_value(uint16_t(lo));
    const double above = half_value(uint16_t(lo + 1)) - a;
    if (above < below || (above == below && ((lo + 1) & 1) == 0)) best = lo + 1;
  }
  return std::copysign(half_value(uint16_t(best)), d);
}

struct RefGroup {
  double lo = 0, step = 0;  // fp16-rounded parameters
  double exact_lo = 0, exact_step = 0;
  int levels = 0;
  // Largest error the stored parameters allow: half a step inside the grid plus how
  // far fp16 rounding moved the grid's ends.
  double error_bound() const {
    return step / 2 + std::fabs(exact_lo - lo) + levels * std::fabs(exact_step - step);
  }
};

inline RefGroup ref_fit(const std::vector<double>& v, int bits) {
  RefGroup g;
  g.levels = (1 << bits) - 1;
  const double mn = *std::min_element(v.begin(), v.end());
  const double mx = *std::max_element(v.begin(), v.end());
  g.exact_lo = mn;
  g.exact_step = (mx - mn) / g.levels;
  g.lo = nearest_half(mn);
  g.step = mx > mn ? nearest_half(g.exact_step) : 0.0;
  return g;
}

// The dequantized value of x under group g. When (x - lo) / step lies within `tie`
// of a rounding boundary, either neighbour is right: *alt gets the other one.
inline double ref_value(double x, const RefGroup& g, double* alt = nullptr, double tie = 1e-6) {
  if (alt) *alt = NAN;
  if (g.step == 0) return g.lo;
  const double t = (x - g.lo) / g.step;
  auto clamp = [&](double q) { return std::min<double>(g.levels, std::max(0.0, q)); };
  const double q = clamp(std::floor(t + 0.5));
  const double frac = t - std::floor(t);
  if (alt && std::fabs(frac - 0.5) < tie) {
    const double other = clamp(frac >= 0.5 ? std::floor(t) : std::floor(t) + 1);
    *alt = other * g.step + g.lo;
  }
  return q * g.step + g.lo;
}

}  // namespace zc_test
