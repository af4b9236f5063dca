// Quantize-and-pack kernels (SPEC.md sections 1-2), bit for bit what src/quant does:
// - lo = fp16(min) (float -> half, round to nearest even), step = fp16((max - lo) / L)
//   with the range divided in double and rounded once (cvt.rn.f16.f64), as
//   quant::fit_affine does through double_to_half_nonneg;
// - code = floor((x - lo) / step + 0.5) in double, clamped to [0, L] (quant::encode);
// - CSTQ scale = fp16(sqrt(max |x|)) from a double sqrt (IEEE, correctly rounded) and
//   y = x / scale in float (IEEE division: this file must not be built with fast math).
// The per-element arithmetic lives in affine.cuh, shared with the cache's page writer.
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "cuda/quant/affine.cuh"
#include "cuda/quant/pack_launch.h"

namespace zc::cuda::detail {
namespace {

// Group gi of the matrix: first element, stride between elements, element count.
struct GroupView {
  long long base, stride;
  int n;
};

// Channelwise groups run over blocks of `block_rows` rows (the last may be shorter):
// group gi = block * cols + column.
__device__ GroupView group_view(int gi, int rows, int cols, GroupMode mode, int group,
                                int block_rows) {
  switch (mode) {
    case GroupMode::Tokenwise:
      return {static_cast<long long>(gi) * cols, 1, cols};
    case GroupMode::Channelwise: {
      const int blk = gi / cols, first = blk * block_rows;
      return {static_cast<long long>(first) * cols + gi % cols, cols, min(block_rows, rows - first)};
    }
    default: {
      const int per_row = cols / group;
      return {static_cast<long long>(gi / per_row) * cols + static_cast<long long>(gi % per_row) * group,
              1, group};
    }
  }
}

// Group gi's lo/step from its min and max (affine.cuh).
__device__ void store_params(float mn, float mx, int levels, int gi, uint16_t* lo, uint16_t* step,
                             unsigned long long* err) {
  fit_affine(mn, mx, levels, static_cast<unsigned long long>(gi), &lo[gi], &step[gi], err);
}

// Column statistics over row blocks, parallel over rows too (a thread per column
// walking all rows leaves the GPU idle and waiting on memory): CTAs of 32 columns x 8
// row lanes take 32 rows each; per (block of rows, column) the min and max (or the max
// of |x| when abs) meet through atomics in ordered-integer form. Exact: min and max do
// not depend on the order.
constexpr int kColRows = 32;
__global__ void column_minmax_kernel(const float* __restrict__ x, int rows, int cols, int block_rows,
                                     bool abs_max, unsigned* mn_out, unsigned* mx_out,
                                     unsigned long long* err) {
  __shared__ float smin[8][33], smax[8][33];
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  const int c = static_cast<int>(blockIdx.x) * 32 + tx;
  const int r0 = static_cast<int>(blockIdx.y) * kColRows;
  float mn = INFINITY, mx = -INFINITY;
  if (c < cols) {
    for (int r = r0 + ty; r < min(rows, r0 + kColRows); r += 8) {
      const long long idx = static_cast<long long>(r) * cols + c;
      float v = x[idx];
      if (!isfinite(v)) report(err, static_cast<unsigned long long>(idx), kNonFinite);
      if (abs_max) v = fabsf(v);
      mn = fminf(mn, v);
      mx = fmaxf(mx, v);
    }
  }
  smin[ty][tx] = mn;
  smax[ty][tx] = mx;
  __syncthreads();
  if (ty != 0 || c >= cols) return;
  for (int i = 1; i < 8; ++i) mn = fminf(mn, smin[i][tx]), mx = fmaxf(mx, smax[i][tx]);
  const size_t g = static_cast<size_t>(r0 / block_rows) * cols + c;
  if (mx >= mn) {  // some finite or infinite value was seen
    if (!abs_max) atomicMin(mn_out + g, ordered(mn));
    atomicMax(mx_out + g, ordered(mx));
  }
}

__global__ void finish_fit_kernel(const unsigned* mn_in, const unsigned* mx_in, int n_groups, int levels,
                                  uint16_t* lo, uint16_t* step, unsigned long long* err) {
  const int gi = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (gi < n_groups) store_params(unordered(mn_in[gi]), unordered(mx_in[gi]), levels, gi, lo, step, err);
}

__global__ void cstq_finish_kernel(const unsigned* amax, int cols, uint16_t* scale) {
  const int c = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (c >= cols) return;
  scale[c] = cstq_scale_bits(unordered(amax[c]));
}

__global__ void cstq_divide_kernel(const float* __restrict__ x, long long count, int cols,
                                   const uint16_t* __restrict__ scale, float* __restrict__ y) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const float s = __half2float(__ushort_as_half(scale[i % cols]));
    y[i] = s > 0.0f ? x[i] / s : 0.0f;
  }
}

// One warp per group.
__global__ void fit_kernel(const float* __restrict__ x, int rows, int cols, int levels,
                           GroupMode mode, int group, int block_rows, int n_groups,
                           uint16_t* __restrict__ lo, uint16_t* __restrict__ step,
                           unsigned long long* err) {
  const int gi = static_cast<int>((blockIdx.x * blockDim.x + threadIdx.x) / 32);
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (gi >= n_groups) return;
  const GroupView g = group_view(gi, rows, cols, mode, group, block_rows);
  float mn = INFINITY, mx = -INFINITY;
  for (int e = lane; e < g.n; e += 32) {
    const long long idx = g.base + e * g.stride;
    const float v = x[idx];
    if (!isfinite(v)) report(err, static_cast<unsigned long long>(idx), kNonFinite);
    mn = fminf(mn, v);
    mx = fmaxf(mx, v);
  }
  for (int o = 16; o > 0; o /= 2) {
    mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, o));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  }
  if (lane != 0) return;
  store_params(mn, mx, levels, gi, lo, step, err);
}

// One thread per column: the max over rows reads consecutive columns across a warp.
__global__ void cstq_scale_kernel(const float* __restrict__ x, int rows, int cols,
                                  uint16_t* __restrict__ scale, float* __restrict__ y,
                                  unsigned long long* err) {
  const int c = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (c >= cols) return;
  float m = 0.0f;
  for (int r = 0; r < rows; ++r) {
    const long long idx = static_cast<long long>(r) * cols + c;
    const float v = x[idx];
    if (!isfinite(v)) report(err, static_cast<unsigned long long>(idx), kNonFinite);
    m = fmaxf(m, fabsf(v));
  }
  const uint16_t s_bits = cstq_scale_bits(m);
  scale[c] = s_bits;
  const float s = __half2float(__ushort_as_half(s_bits));
  for (int r = 0; r < rows; ++r) {
    const long long idx = static_cast<long long>(r) * cols + c;
    y[idx] = s > 0.0f ? x[idx] / s : 0.0f;
  }
}

__device__ int group_of(long long i, int cols, GroupMode mode, int group, int block_rows) {
  const int r = static_cast<int>(i / cols), c = static_cast<int>(i % cols);
  switch (mode) {
    case GroupMode::Tokenwise:
      return r;
    case GroupMode::Channelwise:
      return (r / block_rows) * cols + c;
    default:
      return r * (cols / group) + c / group;
  }
}

// One thread per packed byte.
__global__ void encode_kernel(const float* __restrict__ x, long long count, int cols, int bits,
                              GroupMode mode, int group, int block_rows,
                              const uint16_t* __restrict__ lo,
                              const uint16_t* __restrict__ step, uint8_t* __restrict__ codes,
                              long long n_bytes) {
  const long long byte = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (byte >= n_bytes) return;
  const int per_byte = 8 / bits;
  const int levels = (1 << bits) - 1;
  unsigned packed = 0;
  for (int j = 0; j < per_byte; ++j) {
    const long long i = byte * per_byte + j;
    if (i >= count) break;
    const int gi = group_of(i, cols, mode, group, block_rows);
    packed |= encode_affine(x[i], lo[gi], step[gi], levels) << (j * bits);
  }
  codes[byte] = static_cast<uint8_t>(packed);
}

unsigned blocks_for(long long n, int per_block) {
  return static_cast<unsigned>((n + per_block - 1) / per_block);
}

}  // namespace

cudaError_t launch_fit(const float* x, int rows, int cols, int bits, GroupMode mode, int group,
                       uint16_t* lo, uint16_t* step, unsigned long long* err, cudaStream_t s,
                       int block_rows, unsigned* scratch) {
  if (rows == 0) return cudaSuccess;
  if (block_rows <= 0 || block_rows > rows) block_rows = rows;
  const int n_blocks = (rows + block_rows - 1) / block_rows;
  const int n_groups = mode == GroupMode::Tokenwise     ? rows
                       : mode == GroupMode::Channelwise ? n_blocks * cols
                                                        : rows * (cols / group);
  if (n_groups == 0) return cudaSuccess;
  // Channelwise over many rows: the column kernels (row blocks must hold whole 32-row
  // chunks, which every caller's blocks do: all rows, KIVI's 32, block=N in 32s).
  if (scratch != nullptr && mode == GroupMode::Channelwise && rows > 64 &&
      (block_rows == rows || block_rows % kColRows == 0)) {
    unsigned* mm = scratch;
    cudaError_t e = cudaMemsetAsync(mm, 0xff, sizeof(unsigned) * n_groups, s);  // min: all ones
    if (e == cudaSuccess) e = cudaMemsetAsync(mm + n_groups, 0, sizeof(unsigned) * n_groups, s);
    if (e != cudaSuccess) return e;
    const dim3 grid((cols + 31) / 32, (rows + kColRows - 1) / kColRows);
    column_minmax_kernel<<<grid, dim3(32, 8), 0, s>>>(x, rows, cols, block_rows == rows ? rows : block_rows, false,
                                                       mm, mm + n_groups, err);
    finish_fit_kernel<<<blocks_for(n_groups, 128), 128, 0, s>>>(mm, mm + n_groups, n_groups, (1 << bits) - 1,
                                                                 lo, step, err);
    return cudaGetLastError();
  }
  const int threads = 128;
  fit_kernel<<<blocks_for(static_cast<long long>(n_groups) * 32, threads), threads, 0, s>>>(
      x, rows, cols, (1 << bits) - 1, mode, group, block_rows, n_groups, lo, step, err);
  return cudaGetLastError();
}

cudaError_t launch_cstq_scale(const float* x, int rows, int cols, uint16_t* scale, float* y,
                              unsigned long long* err, cudaStream_t s, unsigned* scratch) {
  if (scratch != nullptr && rows > 64) {  // parallel over rows too (see column_minmax_kernel)
    unsigned* mm = scratch;
    cudaError_t e = cudaMemsetAsync(mm + cols, 0, sizeof(unsigned) * cols, s);
    if (e != cudaSuccess) return e;
    const dim3 grid((cols + 31) / 32, (rows + kColRows - 1) / kColRows);
    column_minmax_kernel<<<grid, dim3(32, 8), 0, s>>>(x, rows, cols, rows, true, mm, mm + cols, err);
    cstq_finish_kernel<<<blocks_for(cols, 128), 128, 0, s>>>(mm + cols, cols, scale);
    const long long count = static_cast<long long>(rows) * cols;
    cstq_divide_kernel<<<static_cast<unsigned>(std::min<long long>(4096, (count + 255) / 256)), 256, 0, s>>>(
        x, count, cols, scale, y);
    return cudaGetLastError();
  }
  const int threads = 128;
  cstq_scale_kernel<<<blocks_for(cols, threads), threads, 0, s>>>(x, rows, cols, scale, y, err);
  return cudaGetLastError();
}

cudaError_t launch_encode(const float* x, int rows, int cols, int bits, GroupMode mode, int group,
                          const uint16_t* lo, const uint16_t* step, uint8_t* codes,
                          cudaStream_t s, int block_rows) {
  if (block_rows <= 0 || block_rows > rows) block_rows = rows;
  const long long count = static_cast<long long>(rows) * cols;
  const long long n_bytes = (count + 8 / bits - 1) / (8 / bits);
  if (n_bytes == 0) return cudaSuccess;
  const int threads = 256;
  encode_kernel<<<blocks_for(n_bytes, threads), threads, 0, s>>>(
      x, count, cols, bits, mode, group, block_rows, lo, step, codes, n_bytes);
  return cudaGetLastError();
}

}  // namespace zc::cuda::detail
