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
  // Warps per CTA (16 query rows each): 4 or 8; 0 picks the default (kPrefillDefaultWarps).
  // Only the timing test sets it, to compare the two variants on the GPU.
  int warps = 0;
};

inline constexpr int kPrefillDefaultWarps = 4;

// Query rows per CTA for `warps` (0: the default).
constexpr int prefill_rows_per_cta(int warps) { return 16 * (warps == 0 ? kPrefillDefaultWarps : warps); }

// bf16: elements are bfloat16, else fp16. Returns cudaErrorInvalidValue for d other
// than 64/128 or warps other than 0/4/8 (the host wrapper checks shapes first).
cudaError_t launch_prefill(const PrefillParams& p, bool bf16, cudaStream_t s);

}  // namespace zc::cuda::detail
