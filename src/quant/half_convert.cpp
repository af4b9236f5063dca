// Branch-free fp16 -> float (half_convert.h). Exponent and mantissa bits are moved
// into a float's bit positions, which reads them as a float 2^112 times too small
// (bias 127 instead of 15); multiplying by 2^112 is exact, for fp16 subnormals too
// (they are float subnormals before, normals after). Exponent 31 (inf/NaN) is then
// forced to 255, and the sign is copied.
#include "quant/half_convert.h"

#include "core/half.h"

namespace zc::quant {

void halves_to_floats(const uint16_t* h, size_t n, float* out) {
  const float rebias = 5.192296858534828e33f;  // 2^112
  for (size_t i = 0; i < n; ++i) {
    const uint32_t x = h[i];
    uint32_t u = float_bits(bits_float((x & 0x7fffu) << 13) * rebias);
    u |= (x & 0x7c00u) == 0x7c00u ? 0x7f800000u : 0u;
    u |= (x & 0x8000u) << 16;
    out[i] = bits_float(u);
  }
}

}  // namespace zc::quant
