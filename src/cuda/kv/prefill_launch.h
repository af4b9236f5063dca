// Launcher of the flash prefill kernel (prefill_attention.cu), internal to src/cuda/kv.
#pragma once
#include <cuda_runtime.h>

namespace zc::cuda::detail {

struct PrefillParams {
  const void* q = nullptr;  // [batch][tokens][n_heads][d], 16-bit elements
  const void* k = nullptr;  // [batch][tokens][n_kv][d]
  const void* v = nullptr;
  void* out = nullptr;      // like q
  float* lse = nullptr;     // optional [batch][tokens][n_heads]: log2 of sum_j 2^(scale_log2 * s_j)
  int batch = 0, tokens = 0, n_heads = 0, n_kv = 0, d = 0;
  float scale_log2 = 0.0f;
  // Kernel variant: warps per CTA and query rows per warp; (4, 16), (8, 16) or (4, 32).
  // 0 picks the default. Only the tests set them, to check and time every variant.
  int warps = 0, warp_rows = 0;
};

// 4 warps x 32 rows measured fastest on an H100 (bf16, 32/8 heads, d 128, batch 1):
// L 4096: 0.490 ms (281 TFLOPS) vs 0.507 (8 x 16) and 0.532 (4 x 16); L 8192: 1.822 ms
// (302 TFLOPS) vs 1.904 and 2.008. The WMMA kernel before took 3.7 ms at L 4096.
inline constexpr int kPrefillDefaultWarps = 4, kPrefillDefaultWarpRows = 32;

// Query rows per CTA of the default variant (the host wrapper's grid-size guard).
constexpr int prefill_rows_per_cta() { return kPrefillDefaultWarps * kPrefillDefaultWarpRows; }

// bf16: elements are bfloat16, else fp16. Returns cudaErrorInvalidValue for d other
// than 64/128 or a variant other than the three above (the host wrapper checks shapes first).
cudaError_t launch_prefill(const PrefillParams& p, bool bf16, cudaStream_t s);

}  // namespace zc::cuda::detail
