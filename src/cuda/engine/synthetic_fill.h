// Random fills for synthetic weights (synthetic_fill.cu), internal to src/cuda/engine.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace zc::cuda::detail {

// x[i] = bf16 of a value with mean 0 and standard deviation `std` (the sum of four
// uniforms from a hash of (seed, i): close to normal, bounded, reproducible).
cudaError_t launch_fill_bf16(uint16_t* x, size_t n, float std, uint64_t seed, cudaStream_t s);
// x[i] = value (fp32).
cudaError_t launch_fill_f32(float* x, size_t n, float value, cudaStream_t s);

}  // namespace zc::cuda::detail
