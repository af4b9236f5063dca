// Causal flash attention for prefill on the GPU (GQA; fp16 or bf16 with fp32
// accumulation; the score matrix is never materialized). Query head h reads KV head
// h / (n_heads / n_kv_heads), as the CPU cache does (kv/cache.h).
#pragma once
#include <cuda_runtime.h>

namespace zc::cuda {

enum class Dtype { F16, BF16 };

struct PrefillShape {
  int batch = 0, tokens = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float scale = 0.0f;  // 0: 1 / sqrt(head_dim)
};

// Device pointers to 16-bit elements of `type`: q and out [batch][tokens][n_heads][d],
// k and v [batch][tokens][n_kv_heads][d]; token i attends to tokens 0..i of its
// sequence. head_dim 64 or 128. Throws zc::Error on a bad shape. lse, if given: float
// [batch][tokens][n_heads], each row's base-2 log-sum-exp of its scaled logits, log2
// sum_j 2^(scale * log2(e) * q.k_j) over its visible keys (what ZipCache's probe pass
// needs of its probe rows: probe_scores' row_lse).
void prefill_attention(const PrefillShape& shape, Dtype type, const void* q, const void* k,
                       const void* v, void* out, cudaStream_t stream = nullptr, float* lse = nullptr);

}  // namespace zc::cuda
