// Launcher of the skinny-product kernel (gemv.cu), internal to src/cuda/model: gemm.cpp
// checks shapes and alignment and calls it for n <= kGemvMaxRows.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace zc::cuda::detail {

inline constexpr int kGemvMaxRows = 8;

// y[n][out] = x[n][in] W^T (+ beta y) in fp32, or y16 = bf16 of it when y16 is given
// (beta unused). 1 <= n <= 8, in % 8 == 0, x and w 16-byte aligned.
cudaError_t launch_gemv(const uint16_t* x, int n, int in, const uint16_t* w, int out, float* y, float beta,
                        uint16_t* y16, cudaStream_t s);

}  // namespace zc::cuda::detail
