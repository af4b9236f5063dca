// Launcher of the flash prefill kernel (prefill_attention.cu), internal to src/cuda/kv.
#pragma once
#include <cuda_runtime.h>

namespace zc::cuda::detail {

struct PrefillParams {
  const void* q = nullptr;  // [batch][tokens][n_heads][d], 16-bit elements
  const void* k = nullptr;  // [batch][tokens][n_kv][d]
  const void* v = nullptr;
  void* out = nullptr;      // like q
  int batch = 0, tokens = 0, n_heads = 0, n_kv = 0, d = 0;
  float scale_log2 = 0.0f;
};

// bf16: elements are bfloat16, else fp16.
cudaError_t launch_prefill(const PrefillParams& p, bool bf16, cudaStream_t s);

}  // namespace zc::cuda::detail
