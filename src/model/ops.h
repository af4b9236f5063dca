// The dense fp32 building blocks of the forward pass, each written to match how HF
// transformers computes it in fp32 (LlamaRMSNorm, nn.Linear, SiLU).
#pragma once
#include <cstddef>

namespace zc::model {

// y[n, out] = x[n, in] W^T (+ bias), W row-major [out, in] as stored in safetensors
// (OpenBLAS cblas_sgemm). bias may be null. y must not alias x.
void linear(const float* x, int n, int in, const float* w, int out, const float* bias, float* y);

// Per row of `dim` values: y = x * rsqrt(mean(x^2) + eps) * w (LlamaRMSNorm; also
// Qwen3's per-head q_norm/k_norm with dim = head_dim). y may alias x.
void rmsnorm(const float* x, size_t rows, int dim, const float* w, float eps, float* y);

// gate[i] <- silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)) (the SwiGLU MLP).
void silu_mul(float* gate, const float* up, size_t n);

// x[i] += y[i] (the residual connections).
void add_inplace(float* x, const float* y, size_t n);

}  // namespace zc::model
