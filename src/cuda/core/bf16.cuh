// float -> bf16 / fp16 bits on the GPU, bit for bit as core/half.h does on the CPU
// (round to nearest even; NaN stays a quiet NaN). Shared by every kernel that writes
// bf16 or fp16 activations. Include only from .cu files.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

namespace zc::cuda::detail {

// core/half.h float_to_bf16: round to nearest even, NaN -> quiet NaN with its sign.
__device__ __forceinline__ uint16_t to_bf16_bits(float f) {
  uint32_t x = __float_as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

// core/half.h float_to_half: __float2half_rn rounds to nearest even with overflow to
// inf and subnormals; NaN gets core/half.h's pattern (sign | 0x7e00).
__device__ __forceinline__ uint16_t to_f16_bits(float f) {
  const uint32_t x = __float_as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>(((x >> 16) & 0x8000u) | 0x7e00u);
  return __half_as_ushort(__float2half_rn(f));
}

}  // namespace zc::cuda::detail
