// Correct rounding of a double to fp16 (internal to the quantizers). Going through
// float first would round twice, and the quantizer's fp16 `step` must be the nearest
// fp16 to the exact (max - min) / (2^b - 1) so that every implementation (and the
// double-precision test reference) agrees bit for bit.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/half.h"

namespace zc::quant {

// Nearest fp16 to d (ties to even), for finite non-negative d; overflow gives inf.
inline uint16_t double_to_half_nonneg(double d) {
  if (d >= 65520.0) return 0x7c00u;  // halfway above 65504 and beyond: inf
  uint16_t best = float_to_half(static_cast<float>(d));
  if (best > 0x7bffu) best = 0x7bffu;  // float rounding reached 65520 from below
  double best_err = std::fabs(static_cast<double>(half_to_float(best)) - d);
  // float rounding moves d by far less than one fp16 ulp: the answer is a neighbour.
  const int guess = best;
  for (int cand = guess - 1; cand <= guess + 1; cand += 2) {
    if (cand < 0 || cand > 0x7bff) continue;
    const auto c = static_cast<uint16_t>(cand);
    const double err = std::fabs(static_cast<double>(half_to_float(c)) - d);
    if (err < best_err || (err == best_err && (c & 1u) == 0)) {
      best = c;
      best_err = err;
    }
  }
  return best;
}

}  // namespace zc::quant
