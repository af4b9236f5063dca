// Launchers of the per-layer elementwise / row kernels (layer_kernels.cu), internal to
// src/cuda/model: layer_kernels.cpp validates arguments and calls these. Plain C++
// declarations so that g++ compiles the callers; every pointer is a device pointer and
// every 16-bit value is a bf16 or fp16 bit pattern. Shapes are already checked (rows,
// element counts > 0 and within the grid limits).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace zc::cuda::detail {

cudaError_t launch_embed_rows(const uint16_t* table_bf16, int vocab, int hidden,
                              const int32_t* ids, int n, float* x, cudaStream_t s);

// y_f32 or y_bf16 (exactly one non-null) = x * rsqrt(mean(x^2) + eps) * w per row.
// y_f32 may alias x.
cudaError_t launch_rmsnorm(const float* x, int rows, int dim, const float* w, float eps,
                           float* y_f32, uint16_t* y_bf16, cudaStream_t s);

cudaError_t launch_head_rmsnorm(float* x, int rows, int row_stride, int first_col, int n_heads,
                                int head_dim, const float* w, float eps, cudaStream_t s);

cudaError_t launch_add_bias(float* y, int rows, int cols, const float* bias, cudaStream_t s);

cudaError_t launch_rope(float* x, int rows, int row_stride, int first_col, int n_heads,
                        int head_dim, const int32_t* positions, const float* inv_freq,
                        cudaStream_t s);

cudaError_t launch_silu_mul(const float* gate_up, int rows, int inter, uint16_t* y,
                            cudaStream_t s);
cudaError_t launch_silu_mul(const uint16_t* gate_up, int rows, int inter, uint16_t* y,
                            cudaStream_t s);

// half_float: false -> bf16, true -> IEEE fp16 (both round to nearest even).
cudaError_t launch_convert(const float* x, size_t n, bool half_float, uint16_t* y,
                           cudaStream_t s);

cudaError_t launch_rope_split(float* qkv, int rows, int n_heads, int n_kv_heads, int head_dim,
                              const int32_t* positions, const float* inv_freq, uint16_t* q,
                              uint16_t* k, uint16_t* v, cudaStream_t s);
cudaError_t launch_split_qkv(const float* qkv, int rows, int n_heads, int n_kv_heads,
                             int head_dim, uint16_t* q, uint16_t* k, uint16_t* v,
                             cudaStream_t s);

cudaError_t launch_argmax_rows(const float* logits, int rows, int vocab, int32_t* out,
                               cudaStream_t s);

}  // namespace zc::cuda::detail
