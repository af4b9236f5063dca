// Launcher of the skinny-product kernel (gemv.cu), internal to src/cuda/model: gemm.cpp
// checks shapes and alignment and calls it for n <= kGemvMaxRows (and the rows it is
// configured for).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace zc::cuda::detail {

inline constexpr int kGemvMaxRows = 8;

// y[n][out] = x[n][in] W^T (+ beta y) in fp32, or y16 = bf16 of it when y16 is given
// (beta unused). 1 <= n <= 8, in % 8 == 0, x and w 16-byte aligned.
cudaError_t launch_gemv(const uint16_t* x, int n, int in, const uint16_t* w, int out, float* y, float beta,
                        uint16_t* y16, cudaStream_t s);

// act[n][inter] = bf16(silu(g) * u) with g = bf16(x W_gate^T), u = bf16(x W_up^T), the
// weights stacked as w_gate_up [2 inter][in] (gate rows first): the gate/up product
// and SwiGLU in one kernel, bit for bit as launch_gemv to bf16 and then the SwiGLU
// kernel of layer_kernels.cu. Same limits on n, in and alignment.
cudaError_t launch_gemv_swiglu(const uint16_t* x, int n, int in, const uint16_t* w_gate_up, int inter,
                               uint16_t* act, cudaStream_t s);

}  // namespace zc::cuda::detail
