// Skinny products of decode (issue 4): y[n][out] = x[n][in] W^T for n <= 8 rows, bf16
// x and W, fp32 accumulation, fp32 (+ beta y) or bf16 output (gemm.h dispatches here).
// At batch 8 a decode step's weight GEMMs are matrix-vector work bound by streaming W
// once; cuBLAS ran them at 1.6-2.6 TB/s on an H100 (qkv and o the slowest,
// docs/benchmarks.md), which alone kept the fp16 step above 1.2x its memory roofline.
//
// Each warp owns two output rows; a lane walks 16-byte vectors (8 weights) of both
// rows, two steps in flight, with W read once through the non-coherent path without
// L1 allocation (it is streamed) and x through L1 (every warp rereads it). Each lane
// keeps 2 x n partial sums, reduced across the warp at the end.
#include <cstdint>

#include "cuda/core/bf16.cuh"
#include "cuda/model/gemv_launch.h"

namespace zc::cuda::detail {
namespace {

constexpr int kWarpsPerCta = 8, kRowsPerWarp = 2;

__device__ __forceinline__ uint4 load_stream(const uint16_t* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

__device__ __forceinline__ float lo_bf16(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float hi_bf16(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }

__device__ __forceinline__ float dot8(const uint4& a, const uint4& b, float acc) {
  acc = fmaf(lo_bf16(a.x), lo_bf16(b.x), acc);
  acc = fmaf(hi_bf16(a.x), hi_bf16(b.x), acc);
  acc = fmaf(lo_bf16(a.y), lo_bf16(b.y), acc);
  acc = fmaf(hi_bf16(a.y), hi_bf16(b.y), acc);
  acc = fmaf(lo_bf16(a.z), lo_bf16(b.z), acc);
  acc = fmaf(hi_bf16(a.z), hi_bf16(b.z), acc);
  acc = fmaf(lo_bf16(a.w), lo_bf16(b.w), acc);
  acc = fmaf(hi_bf16(a.w), hi_bf16(b.w), acc);
  return acc;
}

template <int N>
__global__ void __launch_bounds__(kWarpsPerCta * 32) gemv_kernel(const uint16_t* __restrict__ x, int in,
                                                                 const uint16_t* __restrict__ w, int out,
                                                                 float* __restrict__ y, float beta,
                                                                 uint16_t* __restrict__ y16) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int warp = static_cast<int>(blockIdx.x) * kWarpsPerCta + static_cast<int>(threadIdx.x / 32);
  const int o0 = warp * kRowsPerWarp;
  if (o0 >= out) return;
  const bool two = o0 + 1 < out;
  const uint16_t* w0 = w + static_cast<size_t>(o0) * in;
  const uint16_t* w1 = two ? w0 + in : w0;
  float acc[kRowsPerWarp][N];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
    for (int j = 0; j < N; ++j) acc[r][j] = 0.0f;
  }
  const int vecs = in / 8;
  int v = lane;
  for (; v + 32 < vecs; v += 64) {  // two steps in flight
    const uint4 a0 = load_stream(w0 + 8 * v), b0 = load_stream(w1 + 8 * v);
    const uint4 a1 = load_stream(w0 + 8 * (v + 32)), b1 = load_stream(w1 + 8 * (v + 32));
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const uint4 xa = __ldg(reinterpret_cast<const uint4*>(x + static_cast<size_t>(j) * in) + v);
      const uint4 xb = __ldg(reinterpret_cast<const uint4*>(x + static_cast<size_t>(j) * in) + v + 32);
      acc[0][j] = dot8(a1, xb, dot8(a0, xa, acc[0][j]));
      acc[1][j] = dot8(b1, xb, dot8(b0, xa, acc[1][j]));
    }
  }
  if (v < vecs) {
    const uint4 a0 = load_stream(w0 + 8 * v), b0 = load_stream(w1 + 8 * v);
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const uint4 xa = __ldg(reinterpret_cast<const uint4*>(x + static_cast<size_t>(j) * in) + v);
      acc[0][j] = dot8(a0, xa, acc[0][j]);
      acc[1][j] = dot8(b0, xa, acc[1][j]);
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
    for (int j = 0; j < N; ++j) {
      float s = acc[r][j];
      for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
      acc[r][j] = s;
    }
  }
  // Lane j * 2 + r writes row j, output o0 + r.
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
    for (int j = 0; j < N; ++j) {
      if (lane == j * kRowsPerWarp + r && (r == 0 || two)) {
        const size_t at = static_cast<size_t>(j) * out + o0 + r;
        if (y16 != nullptr) {
          y16[at] = to_bf16_bits(acc[r][j]);
        } else {
          y[at] = beta == 0.0f ? acc[r][j] : fmaf(beta, y[at], acc[r][j]);
        }
      }
    }
  }
}

template <int N>
cudaError_t launch_n(const uint16_t* x, int in, const uint16_t* w, int out, float* y, float beta,
                     uint16_t* y16, cudaStream_t s) {
  const int warps = (out + kRowsPerWarp - 1) / kRowsPerWarp;
  const int ctas = (warps + kWarpsPerCta - 1) / kWarpsPerCta;
  gemv_kernel<N><<<ctas, kWarpsPerCta * 32, 0, s>>>(x, in, w, out, y, beta, y16);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_gemv(const uint16_t* x, int n, int in, const uint16_t* w, int out, float* y, float beta,
                        uint16_t* y16, cudaStream_t s) {
  switch (n) {
    case 1: return launch_n<1>(x, in, w, out, y, beta, y16, s);
    case 2: return launch_n<2>(x, in, w, out, y, beta, y16, s);
    case 3: return launch_n<3>(x, in, w, out, y, beta, y16, s);
    case 4: return launch_n<4>(x, in, w, out, y, beta, y16, s);
    case 5: return launch_n<5>(x, in, w, out, y, beta, y16, s);
    case 6: return launch_n<6>(x, in, w, out, y, beta, y16, s);
    case 7: return launch_n<7>(x, in, w, out, y, beta, y16, s);
    default: return launch_n<8>(x, in, w, out, y, beta, y16, s);
  }
}

}  // namespace zc::cuda::detail
