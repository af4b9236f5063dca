// The uniform asymmetric quantizer of SPEC.md section 1 for one group:
//   lo = min(x), step = (max(x) - lo) / (2^b - 1), both stored as fp16;
//   q = round((x - lo) / step) clamped to [0, 2^b - 1];  x' = q * step + lo.
// Codes are computed with the fp16-rounded lo and step, so that encode/decode agree
// with what is stored. A zero range (or a step that underflows fp16) stores step = 0
// and every value decodes to lo.
#include <cmath>

#include "core/error.h"
#include "core/half.h"
#include "quant/half_round.h"
#include "quant/quantizer.h"

namespace zc::quant {

namespace {
int levels_of(int bits, const char* where) {
  if (bits != 2 && bits != 4 && bits != 8) {
    fail("{}: unsupported bit width {} (supported: 2, 4, 8)", where, bits);
  }
  return (1 << bits) - 1;
}
}  // namespace

Affine fit_affine(const float* x, size_t n, size_t stride, int bits) {
  const int levels = levels_of(bits, "fit_affine");
  if (n == 0) fail("fit_affine: empty group");
  float lo = x[0], hi = x[0];
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i * stride];
    if (!std::isfinite(v)) fail("fit_affine: non-finite value {} at element {} of the group", v, i);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  Affine a;
  a.lo = float_to_half(lo);
  if ((a.lo & 0x7c00u) == 0x7c00u) {
    fail("fit_affine: group minimum {} is outside the fp16 range of the stored parameters", lo);
  }
  if (hi > lo) {
    // The exact range is representable in double; round it once, to nearest fp16.
    a.step = double_to_half_nonneg((static_cast<double>(hi) - static_cast<double>(lo)) / levels);
    if (a.step == 0x7c00u) {
      fail("fit_affine: group range [{}, {}] is too wide for an fp16 step", lo, hi);
    }
  }
  return a;
}

uint8_t encode(float x, Affine a, int bits) {
  const int levels = levels_of(bits, "encode");
  const double step = half_to_float(a.step);
  if (step == 0.0) return 0;
  // Double keeps (x - lo) / step correctly rounded, so codes never depend on the
  // order of float operations (ties round up).
  const double t = (static_cast<double>(x) - static_cast<double>(half_to_float(a.lo))) / step;
  if (!(t > 0.0)) return 0;  // also NaN
  const double q = std::floor(t + 0.5);
  return static_cast<uint8_t>(q >= levels ? levels : static_cast<int>(q));
}

float decode(uint8_t code, Affine a) {
  return static_cast<float>(code) * half_to_float(a.step) + half_to_float(a.lo);
}

}  // namespace zc::quant
