// Device arithmetic of the uniform asymmetric quantizer, bit for bit what src/quant does
// (SPEC.md sections 1-2), shared by the matrix kernels (pack.cu) and the cache's page
// writer (cuda/kv/quantize_pages.cu). Files including it must not be built with fast
// math (IEEE double division and sqrt).
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/quant/pack_launch.h"

namespace zc::cuda::detail {

// Keeps the smallest (index << 2 | kind) of all failures in *err (pack_launch.h).
__device__ __forceinline__ void report(unsigned long long* err, unsigned long long index, int kind) {
  atomicMin(err, (index << 2) | static_cast<unsigned long long>(kind));
}

// Floats as unsigned integers in the same order (for integer atomicMin / atomicMax).
__device__ __forceinline__ unsigned ordered(float f) {
  const unsigned u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float unordered(unsigned u) {
  return __uint_as_float((u & 0x80000000u) ? (u & 0x7fffffffu) : ~u);
}

// quant::fit_affine: lo = fp16(min) (round to nearest even), step = fp16((max - min) / L)
// with the range divided in double and rounded once; an unrepresentable lo or step is
// reported for group gi.
__device__ __forceinline__ void fit_affine(float mn, float mx, int levels, unsigned long long gi, uint16_t* lo_out,
                                           uint16_t* step_out, unsigned long long* err) {
  const uint16_t lo_bits = __half_as_ushort(__float2half_rn(mn));
  if ((lo_bits & 0x7c00u) == 0x7c00u) report(err, gi, kLoRange);
  uint16_t step_bits = 0;
  if (mx > mn) {
    const double range = (static_cast<double>(mx) - static_cast<double>(mn)) / levels;
    step_bits = __half_as_ushort(__double2half(range));
    if (step_bits == 0x7c00u) report(err, gi, kStepOverflow);
  }
  *lo_out = lo_bits;
  *step_out = step_bits;
}

// quant::encode of one element: floor((x - lo) / step + 0.5) in double, clamped to [0, L].
__device__ __forceinline__ unsigned encode_affine(float x, uint16_t lo_bits, uint16_t step_bits, int levels) {
  const double st = static_cast<double>(__half2float(__ushort_as_half(step_bits)));
  if (st == 0.0) return 0u;
  const double t = (static_cast<double>(x) - static_cast<double>(__half2float(__ushort_as_half(lo_bits)))) / st;
  if (!(t > 0.0)) return 0u;
  const double q = floor(t + 0.5);
  return q >= levels ? static_cast<unsigned>(levels) : static_cast<unsigned>(q);
}

// CSTQ channel scale: fp16(sqrt(max |x|)) from a double sqrt (IEEE, correctly rounded).
__device__ __forceinline__ uint16_t cstq_scale_bits(float abs_max) {
  return __half_as_ushort(__double2half(sqrt(static_cast<double>(fmaxf(abs_max, 0.0f)))));
}

}  // namespace zc::cuda::detail
