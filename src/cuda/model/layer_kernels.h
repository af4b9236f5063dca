// The elementwise / row kernels of the transformer forward pass on the GPU (issue 4),
// around the cuBLAS matrix products: embedding lookup, RMSNorm (also Qwen3's per-head
// q_norm/k_norm), bias, RoPE, SwiGLU, conversions to bf16/fp16, the QKV split for
// prefill attention, and the greedy argmax. Each computes what the CPU path computes
// (model/ops.h, model/rope.h, engine/sampler.h argmax, core/half.h rounding).
//
// Every pointer is a device pointer; bf16 / fp16 values are uint16_t bit patterns;
// matrices are row-major. All calls are asynchronous on `stream` (no synchronization);
// the wrappers check shapes and pointers (zc::Error naming the call and the argument)
// and check the launch. rows == 0 (or n == 0) is a no-op.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace zc::cuda {

// x[r][:] = float(table[ids[r]][:]) for r < n; table [vocab][hidden] bf16. The caller
// validates ids on the host; an id outside [0, vocab) still reads nothing out of
// bounds: its row becomes NaN.
void embed_rows(const uint16_t* table_bf16, int vocab, int hidden, const int32_t* ids, int n,
                float* x, cudaStream_t stream = nullptr);

// Per row of dim values (dim up to 16384): y = x * rsqrt(mean(x^2) + eps) * w, the mean
// of squares accumulated in fp32 (LlamaRMSNorm; model::rmsnorm). y is bf16 here ...
void rmsnorm_to_bf16(const float* x, int rows, int dim, const float* w, float eps, uint16_t* y,
                     cudaStream_t stream = nullptr);
// ... and fp32 here (y may alias x).
void rmsnorm_f32(const float* x, int rows, int dim, const float* w, float eps, float* y,
                 cudaStream_t stream = nullptr);

// Qwen3's q_norm / k_norm in place: for each row r and head h < n_heads, the head_dim
// vector at x + r * row_stride + first_col + h * head_dim is RMS-normalized with the
// weight w[head_dim]. Needs first_col + n_heads * head_dim <= row_stride.
void head_rmsnorm_inplace(float* x, int rows, int row_stride, int first_col, int n_heads,
                          int head_dim, const float* w, float eps, cudaStream_t stream = nullptr);

// y[r][c] += bias[c] (y is rows x cols, contiguous).
void add_bias(float* y, int rows, int cols, const float* bias, cudaStream_t stream = nullptr);

// RoPE in place, rotate_half convention (model/rope.cpp): for row r at position
// positions[r] and each of n_heads heads at x + r * row_stride + first_col + h * head_dim,
// angle_i = float(pos) * inv_freq[i] in fp32, cos/sin of it in double rounded to float,
// x[i] <- x[i] c - x[i+h] s, x[i+h] <- x[i+h] c + x[i] s (h = head_dim / 2, float math).
// inv_freq [head_dim / 2] already holds any scaling (model::rope_inv_freq). head_dim even.
void rope_inplace(float* x, int rows, int row_stride, int first_col, int n_heads, int head_dim,
                  const int32_t* positions, const float* inv_freq, cudaStream_t stream = nullptr);

// Row r of gate_up is [gate (inter) | up (inter)]; y[r][i] = bf16(silu(g) * u) with
// silu(g) = g / (1 + exp(-g)) (IEEE expf); y is [rows][inter].
void silu_mul_to_bf16(const float* gate_up, int rows, int inter, uint16_t* y,
                      cudaStream_t stream = nullptr);

// The same from a bf16 gate_up (Gemm::linear_bf16's output).
void silu_mul_bf16_to_bf16(const uint16_t* gate_up, int rows, int inter, uint16_t* y,
                           cudaStream_t stream = nullptr);

// Elementwise float -> bf16 / IEEE fp16 bits, round to nearest even (core/half.h,
// including its NaN patterns; fp16 overflows to inf).
void to_bf16(const float* x, size_t n, uint16_t* y, cudaStream_t stream = nullptr);
void to_f16(const float* x, size_t n, uint16_t* y, cudaStream_t stream = nullptr);

// Row r of qkv = [q (n_heads * d) | k (n_kv_heads * d) | v (n_kv_heads * d)]; writes bf16
// q [rows][n_heads * d] and k, v [rows][n_kv_heads * d], each contiguous.
void split_qkv_to_bf16(const float* qkv, int rows, int n_heads, int n_kv_heads, int head_dim,
                       uint16_t* q, uint16_t* k, uint16_t* v, cudaStream_t stream = nullptr);

// rope_inplace on the q and k heads of a [q | k | v] qkv row (row stride = its width)
// followed by split_qkv_to_bf16, in one pass with the same results; the rotated k also
// stays in qkv (fp32) for the cache. Prefill's path.
void rope_split_qkv_to_bf16(float* qkv, int rows, int n_heads, int n_kv_heads, int head_dim,
                            const int32_t* positions, const float* inv_freq, uint16_t* q,
                            uint16_t* k, uint16_t* v, cudaStream_t stream = nullptr);

// out[r] = index of the largest logit of row r (the first on ties, as engine::argmax);
// -1 when the row holds a NaN (the caller turns that into an error). One CTA per row.
void argmax_rows(const float* logits, int rows, int vocab, int32_t* out,
                 cudaStream_t stream = nullptr);

}  // namespace zc::cuda
