// SwiGLU's elementwise step on the GPU, shared by the SwiGLU kernels of layer_kernels.cu
// and the fused gate/up product of gemv.cu, so that both round the same way. Include
// only from .cu files.
#pragma once
#include <cstdint>

#include "cuda/core/bf16.cuh"

namespace zc::cuda::detail {

// silu(g) * u as model/ops computes it, rounded to bf16 bits.
__device__ __forceinline__ uint32_t silu_mul_bits(float g, float u) {
  const float silu = __fdiv_rn(g, __fadd_rn(1.0f, expf(-g)));
  return to_bf16_bits(__fmul_rn(silu, u));
}

}  // namespace zc::cuda::detail
