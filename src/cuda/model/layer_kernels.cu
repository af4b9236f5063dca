// The elementwise / row kernels around the GPU matrix products of one transformer
// layer (issue 4), each computing what the CPU path of src/model computes:
// - RMSNorm (model/ops.cpp, LlamaRMSNorm): mean of squares accumulated in fp32, then
//   inv = 1 / sqrt(variance + eps) taken in double and rounded once, y = w * (x * inv);
// - RoPE (model/rope.cpp, rotate_half; the pair rotation is rope.cuh's);
// - SiLU (SwiGLU MLP): g / (1 + expf(-g)) * u in IEEE float (no fast math);
// - float -> bf16 / fp16: round to nearest even, NaN kept quiet, as core/half.h.
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cuda/core/bf16.cuh"
#include "cuda/core/device.h"  // alignment
#include "cuda/core/launch.cuh"
#include "cuda/model/layer_launch.h"
#include "cuda/model/rope.cuh"
#include "cuda/model/swiglu.cuh"

namespace zc::cuda::detail {
namespace {

constexpr int kThreads = 256;
constexpr unsigned kMaxGrid = 1u << 20;  // grid-stride loops cover the rest

unsigned grid_for(size_t n) {
  const size_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxGrid ? blocks : kMaxGrid);
}

__device__ __forceinline__ size_t global_thread() {
  return static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ size_t grid_threads() {
  return static_cast<size_t>(gridDim.x) * blockDim.x;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the CTA (blockDim.x a multiple of 32, at most 1024); every thread gets it.
__device__ float block_sum(float v) {
  __shared__ float partial[32];
  __shared__ float total;
  const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
  v = warp_sum(v);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int warps = static_cast<int>(blockDim.x / 32);
    float w = lane < warps ? partial[lane] : 0.0f;
    w = warp_sum(w);
    if (lane == 0) total = w;
  }
  __syncthreads();
  return total;
}

// The RMS scale of model::rmsnorm: variance in fp32, 1 / sqrt in double rounded once.
__device__ __forceinline__ float rms_inv(float sum_sq, int dim, float eps) {
  const float variance = __fdiv_rn(sum_sq, static_cast<float>(dim));
  return static_cast<float>(1.0 / sqrt(static_cast<double>(__fadd_rn(variance, eps))));
}

__global__ void embed_kernel(const uint16_t* __restrict__ table, int vocab, int hidden,
                             const int32_t* __restrict__ ids, int n, float* __restrict__ x) {
  wait_for_prior_grids();  // PDL (core/launch.cuh)
  allow_dependent_launch();
  const size_t total = static_cast<size_t>(n) * static_cast<size_t>(hidden);
  for (size_t e = global_thread(); e < total; e += grid_threads()) {
    const size_t r = e / static_cast<size_t>(hidden), c = e % static_cast<size_t>(hidden);
    const int32_t id = ids[r];
    // The caller validated the ids; an id that slipped through gives a NaN row that the
    // logits expose instead of a read outside the table.
    x[e] = id >= 0 && id < vocab
               ? __uint_as_float(static_cast<uint32_t>(table[static_cast<size_t>(id) * hidden + c]) << 16)
               : __uint_as_float(0x7fc00000u);
  }
}

// One CTA per row, each thread holding up to kRmsVectors float4 of x and of w in
// registers: every load of the row is issued at once, so the kernel pays one memory
// latency instead of one per strided loop iteration (rmsnorm_kernel below, a decode
// step's 65 RMSNorms at batch 8: ~8 us each, now ~2). No __restrict__: y_f32 may alias
// x (every element is in registers before the block barrier of block_sum).
constexpr int kRmsVectors = 4;

__global__ void rmsnorm_vec_kernel(const float* x, int dim, const float* __restrict__ w, float eps,
                                   float* y_f32, uint16_t* y_bf16) {
  wait_for_prior_grids();  // PDL (core/launch.cuh)
  allow_dependent_launch();
  const int n4 = dim / 4, t = static_cast<int>(threadIdx.x), step = static_cast<int>(blockDim.x);
  const size_t base = static_cast<size_t>(blockIdx.x) * static_cast<size_t>(dim);
  const float4* xr = reinterpret_cast<const float4*>(x + base);
  const float4* wr = reinterpret_cast<const float4*>(w);
  float4 xv[kRmsVectors], wv[kRmsVectors];
#pragma unroll
  for (int j = 0; j < kRmsVectors; ++j) {
    const int i = t + j * step;
    xv[j] = i < n4 ? xr[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    wv[j] = i < n4 ? wr[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }
  float s = 0.0f;
#pragma unroll
  for (int j = 0; j < kRmsVectors; ++j) {
    s = __fmaf_rn(xv[j].x, xv[j].x, s);
    s = __fmaf_rn(xv[j].y, xv[j].y, s);
    s = __fmaf_rn(xv[j].z, xv[j].z, s);
    s = __fmaf_rn(xv[j].w, xv[j].w, s);
  }
  const float inv = rms_inv(block_sum(s), dim, eps);
#pragma unroll
  for (int j = 0; j < kRmsVectors; ++j) {
    const int i = t + j * step;
    if (i >= n4) break;
    const float4 v = make_float4(__fmul_rn(wv[j].x, __fmul_rn(xv[j].x, inv)), __fmul_rn(wv[j].y, __fmul_rn(xv[j].y, inv)),
                                 __fmul_rn(wv[j].z, __fmul_rn(xv[j].z, inv)), __fmul_rn(wv[j].w, __fmul_rn(xv[j].w, inv)));
    if (y_f32) {
      reinterpret_cast<float4*>(y_f32 + base)[i] = v;
    } else {
      const uint2 b = make_uint2(uint32_t(to_bf16_bits(v.x)) | (uint32_t(to_bf16_bits(v.y)) << 16),
                                 uint32_t(to_bf16_bits(v.z)) | (uint32_t(to_bf16_bits(v.w)) << 16));
      reinterpret_cast<uint2*>(y_bf16 + base)[i] = b;
    }
  }
}

// The general form (any dim; rows not 16-byte aligned): a strided loop per pass.
// No __restrict__: y_f32 may alias x (each element is read for the sum, then rewritten
// by the same thread after the block barrier of block_sum).
__global__ void rmsnorm_kernel(const float* x, int dim, const float* __restrict__ w, float eps,
                               float* y_f32, uint16_t* y_bf16) {
  wait_for_prior_grids();  // PDL (core/launch.cuh)
  allow_dependent_launch();
  const size_t base = static_cast<size_t>(blockIdx.x) * static_cast<size_t>(dim);
  float s = 0.0f;
  for (int i = static_cast<int>(threadIdx.x); i < dim; i += blockDim.x) {
    const float v = x[base + i];
    s = __fmaf_rn(v, v, s);
  }
  const float inv = rms_inv(block_sum(s), dim, eps);
  for (int i = static_cast<int>(threadIdx.x); i < dim; i += blockDim.x) {
    const float v = __fmul_rn(w[i], __fmul_rn(x[base + i], inv));
    if (y_f32) {
      y_f32[base + i] = v;
    } else {
      y_bf16[base + i] = to_bf16_bits(v);
    }
  }
}

// One warp per (row, head): Qwen3's q_norm / k_norm over head_dim values.
__global__ void head_rmsnorm_kernel(float* x, int rows, int row_stride, int first_col,
                                    int n_heads, int head_dim, const float* __restrict__ w,
                                    float eps) {
  wait_for_prior_grids();  // PDL (core/launch.cuh)
  allow_dependent_launch();
  const long long item = static_cast<long long>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (item >= static_cast<long long>(rows) * n_heads) return;
  const long long r = item / n_heads, h = item % n_heads;
  float* v = x + r * row_stride + first_col + h * head_dim;
  float s = 0.0f;
  for (int i = lane; i < head_dim; i += 32) s = __fmaf_rn(v[i], v[i], s);
  const float inv = rms_inv(warp_sum(s), head_dim, eps);
  for (int i = lane; i < head_dim; i += 32) v[i] = __fmul_rn(w[i], __fmul_rn(v[i], inv));
}

__global__ void add_bias_kernel(float* __restrict__ y, int rows, int cols,
                                const float* __restrict__ bias) {
  wait_for_prior_grids();  // PDL (core/launch.cuh)
  allow_dependent_launch();
  const size_t total = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  for (size_t e = global_thread(); e < total; e += grid_threads()) {
    y[e] = __fadd_rn(y[e], bias[e % static_cast<size_t>(cols)]);
  }
}

// One thread per (row, head, i < head_dim / 2): rotates the pair (i, i + half).
__global__ void rope_kernel(float* __restrict__ x, int rows, int row_stride, int first_col,
                            int n_heads, int head_dim, const int32_t* __restrict__ positions,
                            const float* __restrict__ inv_freq) {
  wait_for_prior_grids();  // PDL (core/launch.cuh)
  allow_dependent_launch();
  const int half = head_dim / 2;
  const size_t total = static_cast<size_t>(rows) * n_heads * half;
  for (size_t e = global_thread(); e < total; e += grid_threads()) {
    const int i = static_cast<int>(e % half);
    const size_t rh = e / half;
    const size_t r = rh / n_heads, h = rh % n_heads;
    const RopeAngle angle = rope_angle(positions[r], inv_freq[i]);
    float* v = x + r * static_cast<size_t>(row_stride) + first_col + h * head_dim;
    rope_rotate(v[i], v[i + half], angle, v[i], v[i + half]);
  }
}

__device__ __forceinline__ float load_float(const float* p) { return *p; }
__device__ __forceinline__ float load_float(const uint16_t* p) {
  return __uint_as_float(static_cast<uint32_t>(*p) << 16);  // bf16 bits
}

template <typename T>
__global__ void silu_mul_kernel(const T* __restrict__ gate_up, int rows, int inter,
                                uint16_t* __restrict__ y) {
  wait_for_prior_grids();  // PDL (core/launch.cuh)
  allow_dependent_launch();
  const size_t total = static_cast<size_t>(rows) * static_cast<size_t>(inter);
  for (size_t e = global_thread(); e < total; e += grid_threads()) {
    const size_t r = e / static_cast<size_t>(inter), i = e % static_cast<size_t>(inter);
    const T* row = gate_up + r * 2 * static_cast<size_t>(inter);
    y[e] = static_cast<uint16_t>(silu_mul_bits(load_float(row + i), load_float(row + i + static_cast<size_t>(inter))));
  }
}

// bf16 gate/up rows whose halves are whole 16-byte vectors (inter % 8 == 0, aligned
// buffers): eight elements per thread from one 16-byte load of each half, one row per
// grid row. The element loop above divides a 64-bit index per element and loads two
// bytes at a time (the prefill's SwiGLU took 283 us per layer at 4096 x 14336, ~1.2 TB/s).
__global__ void silu_mul_bf16_vec_kernel(const uint16_t* __restrict__ gate_up, int inter,
                                         uint16_t* __restrict__ y) {
  wait_for_prior_grids();  // PDL (core/launch.cuh)
  allow_dependent_launch();
  const int n8 = inter / 8, v = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (v >= n8) return;
  const size_t r = blockIdx.y;
  const uint4* row = reinterpret_cast<const uint4*>(gate_up + r * 2 * static_cast<size_t>(inter));
  const uint4 gv = row[v], uv = row[n8 + v];
  const uint32_t gw[4] = {gv.x, gv.y, gv.z, gv.w}, uw[4] = {uv.x, uv.y, uv.z, uv.w};
  uint32_t out[4];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const uint32_t lo = silu_mul_bits(__uint_as_float(gw[j] << 16), __uint_as_float(uw[j] << 16));
    const uint32_t hi = silu_mul_bits(__uint_as_float(gw[j] & 0xffff0000u), __uint_as_float(uw[j] & 0xffff0000u));
    out[j] = lo | (hi << 16);
  }
  reinterpret_cast<uint4*>(y + r * static_cast<size_t>(inter))[v] = make_uint4(out[0], out[1], out[2], out[3]);
}

__global__ void convert_kernel(const float* __restrict__ x, size_t n, bool half_float,
                               uint16_t* __restrict__ y) {
  wait_for_prior_grids();  // PDL (core/launch.cuh)
  allow_dependent_launch();
  for (size_t e = global_thread(); e < n; e += grid_threads()) {
    y[e] = half_float ? to_f16_bits(x[e]) : to_bf16_bits(x[e]);
  }
}

__global__ void split_qkv_kernel(const float* __restrict__ qkv, int rows, int n_heads,
                                 int n_kv_heads, int head_dim, uint16_t* __restrict__ q,
                                 uint16_t* __restrict__ k, uint16_t* __restrict__ v) {
  wait_for_prior_grids();  // PDL (core/launch.cuh)
  allow_dependent_launch();
  const size_t q_cols = static_cast<size_t>(n_heads) * head_dim;
  const size_t kv_cols = static_cast<size_t>(n_kv_heads) * head_dim;
  const size_t width = q_cols + 2 * kv_cols;
  const size_t total = static_cast<size_t>(rows) * width;
  for (size_t e = global_thread(); e < total; e += grid_threads()) {
    const size_t r = e / width, c = e % width;
    const uint16_t b = to_bf16_bits(qkv[e]);
    if (c < q_cols) {
      q[r * q_cols + c] = b;
    } else if (c < q_cols + kv_cols) {
      k[r * kv_cols + (c - q_cols)] = b;
    } else {
      v[r * kv_cols + (c - q_cols - kv_cols)] = b;
    }
  }
}

// Prefill's RoPE and bf16 split in one pass over qkv (the two kernels separately read
// and wrote the q and k columns twice: 0.2 ms per layer at 4096 rows, Llama-3 shape).
// Thread per (row, i < head_dim / 2): the angle's cos/sin once for all heads (the same
// float math as rope_kernel, so the result is bit-identical), rotated q and k to bf16,
// rotated k also back into qkv (the cache stores fp32 rows); then v to bf16.
__global__ void rope_split_kernel(float* __restrict__ qkv, int rows, int n_heads, int n_kv_heads,
                                  int head_dim, const int32_t* __restrict__ positions,
                                  const float* __restrict__ inv_freq, uint16_t* __restrict__ q,
                                  uint16_t* __restrict__ k, uint16_t* __restrict__ v) {
  wait_for_prior_grids();  // PDL (core/launch.cuh)
  allow_dependent_launch();
  const int half = head_dim / 2;
  const size_t q_cols = static_cast<size_t>(n_heads) * head_dim;
  const size_t kv_cols = static_cast<size_t>(n_kv_heads) * head_dim;
  const size_t width = q_cols + 2 * kv_cols;
  const size_t pairs = static_cast<size_t>(rows) * half;
  for (size_t e = global_thread(); e < pairs; e += grid_threads()) {
    const size_t r = e / half;
    const int i = static_cast<int>(e % half);
    const RopeAngle angle = rope_angle(positions[r], inv_freq[i]);
    float* row = qkv + r * width;
    for (int h = 0; h < n_heads + n_kv_heads; ++h) {
      float* x = row + static_cast<size_t>(h) * head_dim;
      float lo, hi;
      rope_rotate(x[i], x[i + half], angle, lo, hi);
      if (h < n_heads) {
        uint16_t* out = q + r * q_cols + static_cast<size_t>(h) * head_dim;
        out[i] = to_bf16_bits(lo), out[i + half] = to_bf16_bits(hi);
      } else {
        uint16_t* out = k + r * kv_cols + static_cast<size_t>(h - n_heads) * head_dim;
        out[i] = to_bf16_bits(lo), out[i + half] = to_bf16_bits(hi);
        x[i] = lo, x[i + half] = hi;
      }
    }
  }
  const size_t values = static_cast<size_t>(rows) * kv_cols;
  for (size_t e = global_thread(); e < values; e += grid_threads()) {
    const size_t r = e / kv_cols, c = e % kv_cols;
    v[e] = to_bf16_bits(qkv[r * width + q_cols + kv_cols + c]);
  }
}

// (value, index) is better than (bv, bi) when larger, or equal with a smaller index:
// engine::argmax keeps the first index on ties.
__device__ __forceinline__ bool better(float v, int i, float bv, int bi) {
  return v > bv || (v == bv && i < bi);
}

constexpr int kArgmaxThreads = 512;

// One CTA per row; any NaN in the row gives -1.
__global__ void argmax_kernel(const float* __restrict__ logits, int vocab, int32_t* __restrict__ out) {
  wait_for_prior_grids();  // PDL (core/launch.cuh)
  allow_dependent_launch();
  __shared__ float s_val[kArgmaxThreads / 32];
  __shared__ int s_idx[kArgmaxThreads / 32];
  __shared__ int s_nan;
  if (threadIdx.x == 0) s_nan = 0;
  __syncthreads();
  const float* row = logits + static_cast<size_t>(blockIdx.x) * static_cast<size_t>(vocab);
  float bv = -INFINITY;
  int bi = 0x7fffffff;
  bool nan = false;
  for (int i = static_cast<int>(threadIdx.x); i < vocab; i += blockDim.x) {
    const float v = row[i];
    if (isnan(v)) nan = true;
    if (better(v, i, bv, bi)) bv = v, bi = i;
  }
  if (nan) s_nan = 1;
  for (int o = 16; o > 0; o /= 2) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (better(ov, oi, bv, bi)) bv = ov, bi = oi;
  }
  const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
  if (lane == 0) s_val[warp] = bv, s_idx[warp] = bi;
  __syncthreads();
  if (warp != 0) return;
  bv = lane < kArgmaxThreads / 32 ? s_val[lane] : -INFINITY;
  bi = lane < kArgmaxThreads / 32 ? s_idx[lane] : 0x7fffffff;
  for (int o = 16; o > 0; o /= 2) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (better(ov, oi, bv, bi)) bv = ov, bi = oi;
  }
  if (lane == 0) out[blockIdx.x] = s_nan ? -1 : bi;
}

}  // namespace

cudaError_t launch_embed_rows(const uint16_t* table_bf16, int vocab, int hidden,
                              const int32_t* ids, int n, float* x, cudaStream_t s) {
  return launch_pdl(PdlKernel::Layer, embed_kernel, grid_for(static_cast<size_t>(n) * hidden), kThreads, 0, s, table_bf16, vocab,
                    hidden, ids, n, x);
}

cudaError_t launch_rmsnorm(const float* x, int rows, int dim, const float* w, float eps,
                           float* y_f32, uint16_t* y_bf16, cudaStream_t s) {
  if (dim % 4 == 0 && dim <= 1024 * 4 * kRmsVectors && alignment(x) >= 16 && alignment(w) >= 16 &&
      alignment(y_f32 ? static_cast<const void*>(y_f32) : y_bf16) >= 16) {
    // Whole warps, each thread at most kRmsVectors float4 (dim 4096: 256 threads x 4).
    const int vectors = dim / 4;
    int threads = (vectors + kRmsVectors - 1) / kRmsVectors;
    threads = std::max(32, (threads + 31) / 32 * 32);
    return launch_pdl(PdlKernel::Layer, rmsnorm_vec_kernel, static_cast<unsigned>(rows), threads, 0, s, x, dim, w, eps, y_f32, y_bf16);
  }
  // Enough threads for a few elements each (dim up to 16384 -> 16 per thread at 1024).
  int threads = 128;
  while (threads < 1024 && threads * 8 < dim) threads *= 2;
  return launch_pdl(PdlKernel::Layer, rmsnorm_kernel, static_cast<unsigned>(rows), threads, 0, s, x, dim, w, eps, y_f32, y_bf16);
}

cudaError_t launch_head_rmsnorm(float* x, int rows, int row_stride, int first_col, int n_heads,
                                int head_dim, const float* w, float eps, cudaStream_t s) {
  constexpr int kWarps = kThreads / 32;
  const long long items = static_cast<long long>(rows) * n_heads;
  const auto blocks = static_cast<unsigned>((items + kWarps - 1) / kWarps);
  return launch_pdl(PdlKernel::Layer, head_rmsnorm_kernel, blocks, kThreads, 0, s, x, rows, row_stride, first_col, n_heads,
                    head_dim, w, eps);
}

cudaError_t launch_add_bias(float* y, int rows, int cols, const float* bias, cudaStream_t s) {
  return launch_pdl(PdlKernel::Layer, add_bias_kernel, grid_for(static_cast<size_t>(rows) * cols), kThreads, 0, s, y, rows, cols,
                    bias);
}

cudaError_t launch_rope(float* x, int rows, int row_stride, int first_col, int n_heads,
                        int head_dim, const int32_t* positions, const float* inv_freq,
                        cudaStream_t s) {
  const size_t total = static_cast<size_t>(rows) * n_heads * (head_dim / 2);
  return launch_pdl(PdlKernel::Layer, rope_kernel, grid_for(total), kThreads, 0, s, x, rows, row_stride, first_col, n_heads,
                    head_dim, positions, inv_freq);
}

cudaError_t launch_rope_split(float* qkv, int rows, int n_heads, int n_kv_heads, int head_dim,
                              const int32_t* positions, const float* inv_freq, uint16_t* q,
                              uint16_t* k, uint16_t* v, cudaStream_t s) {
  const size_t work = std::max(static_cast<size_t>(rows) * (head_dim / 2),
                               static_cast<size_t>(rows) * n_kv_heads * head_dim);
  return launch_pdl(PdlKernel::Layer, rope_split_kernel, grid_for(work), kThreads, 0, s, qkv, rows, n_heads, n_kv_heads, head_dim,
                    positions, inv_freq, q, k, v);
}

cudaError_t launch_silu_mul(const float* gate_up, int rows, int inter, uint16_t* y,
                            cudaStream_t s) {
  return launch_pdl(PdlKernel::Layer, silu_mul_kernel<float>, grid_for(static_cast<size_t>(rows) * inter), kThreads, 0, s, gate_up,
                    rows, inter, y);
}

cudaError_t launch_silu_mul(const uint16_t* gate_up, int rows, int inter, uint16_t* y,
                            cudaStream_t s) {
  if (inter % 8 == 0 && alignment(gate_up) >= 16 && alignment(y) >= 16 && rows <= 65535) {
    const int n8 = inter / 8;
    const dim3 grid(static_cast<unsigned>((n8 + kThreads - 1) / kThreads), static_cast<unsigned>(rows));
    return launch_pdl(PdlKernel::Layer, silu_mul_bf16_vec_kernel, grid, kThreads, 0, s, gate_up, inter, y);
  }
  return launch_pdl(PdlKernel::Layer, silu_mul_kernel<uint16_t>, grid_for(static_cast<size_t>(rows) * inter), kThreads, 0, s, gate_up,
                    rows, inter, y);
}

cudaError_t launch_convert(const float* x, size_t n, bool half_float, uint16_t* y,
                           cudaStream_t s) {
  return launch_pdl(PdlKernel::Layer, convert_kernel, grid_for(n), kThreads, 0, s, x, n, half_float, y);
}

cudaError_t launch_split_qkv(const float* qkv, int rows, int n_heads, int n_kv_heads,
                             int head_dim, uint16_t* q, uint16_t* k, uint16_t* v,
                             cudaStream_t s) {
  const size_t total =
      static_cast<size_t>(rows) * (static_cast<size_t>(n_heads) + 2 * static_cast<size_t>(n_kv_heads)) *
      head_dim;
  return launch_pdl(PdlKernel::Layer, split_qkv_kernel, grid_for(total), kThreads, 0, s, qkv, rows, n_heads, n_kv_heads, head_dim,
                    q, k, v);
}

cudaError_t launch_argmax_rows(const float* logits, int rows, int vocab, int32_t* out,
                               cudaStream_t s) {
  return launch_pdl(PdlKernel::Layer, argmax_kernel, static_cast<unsigned>(rows), kArgmaxThreads, 0, s, logits, vocab, out);
}

}  // namespace zc::cuda::detail
