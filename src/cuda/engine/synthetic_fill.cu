// Random fills for synthetic weights (synthetic_fill.h).
#include <cuda_bf16.h>

#include "cuda/engine/synthetic_fill.h"

namespace zc::cuda::detail {
namespace {

__device__ __forceinline__ uint64_t mix(uint64_t z) {  // splitmix64 finalizer
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__global__ void fill_bf16_kernel(uint16_t* x, size_t n, float std, uint64_t seed) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const uint64_t h = mix(seed ^ mix(i + 0x9e3779b97f4a7c15ull));
    // Four 16-bit uniforms: their sum has variance 4/12; scale to std.
    float s = 0.0f;
    for (int k = 0; k < 4; ++k) s += float((h >> (16 * k)) & 0xffffu) * (1.0f / 65536.0f);
    const float v = (s - 2.0f) * 1.7320508f * std;
    x[i] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
  }
}

__global__ void fill_f32_kernel(float* x, size_t n, float value) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) x[i] = value;
}

}  // namespace

cudaError_t launch_fill_bf16(uint16_t* x, size_t n, float std, uint64_t seed, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  fill_bf16_kernel<<<4096, 256, 0, s>>>(x, n, std, seed);
  return cudaGetLastError();
}

cudaError_t launch_fill_f32(float* x, size_t n, float value, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  fill_f32_kernel<<<1024, 256, 0, s>>>(x, n, value);
  return cudaGetLastError();
}

}  // namespace zc::cuda::detail
