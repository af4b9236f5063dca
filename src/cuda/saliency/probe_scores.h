// ZipCache's probe pass on the GPU (SPEC.md section 3, issue 4): token saliency from
// the causal attention probabilities of a few probe query rows only, the same
// quantities saliency::scores computes on the CPU with those rows.
//
// Two paths, the same results:
// - fused (head_dim 64 or 128, q and k 16-byte aligned; probe_fused.cu): a row kernel
//   forms each probe row's logits against its causal prefix on tensor cores and keeps
//   only its log-sum-exp; a column kernel recomputes the logits per tile of keys and sums
//   the probabilities per key in a fixed order. No logits are stored: the workspace holds
//   8 bytes per probe row and KV head.
// - cuBLAS (any other head_dim or alignment; probe_scores.cu): the probe rows of q are
//   gathered, ONE cublasGemmStridedBatchedEx writes the fp32 logits
//   [n_kv][g * n_probes][L] (4 bytes each: 215 MB at L = 4096, 8 KV heads, g = 4, 10%
//   probes), and row, column and normalization kernels read them back.
// Both sum in a fixed order (deterministic) and use bf16 products with fp32 accumulation.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/core/device.h"
#include "saliency/saliency.h"

namespace zc::cuda {

struct ProbeScoreShape {
  int L = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float scale = 0.0f;  // softmax scale; 0: 1 / sqrt(head_dim)
};

// Scratch space of probe_scores, grown as needed and reused across calls (one per
// stream: calls sharing a workspace must run on the same stream). Owns a cuBLAS handle,
// created by the first call that takes the cuBLAS path and bound to each call's stream.
class ProbeWorkspace {
 public:
  ProbeWorkspace() = default;
  ProbeWorkspace(const ProbeWorkspace&) = delete;
  ProbeWorkspace& operator=(const ProbeWorkspace&) = delete;
  ~ProbeWorkspace();

  // Fused path: per (KV head, probe row) its log-sum-exp and visible keys (8 bytes,
  // detail::ProbeRowInfo), and the row kernel's probe-check flag per row tile.
  DeviceBuffer<uint64_t> row_info;       // [n_kv][g * n_probes]
  DeviceBuffer<int> tile_bad;            // [row tiles]

  // cuBLAS path.
  DeviceBuffer<uint16_t> q_probe;        // [n_kv][g * n_probes][d] bf16 bits
  DeviceBuffer<float> logits;            // [n_kv][g * n_probes][L]
  DeviceBuffer<float> row_max, row_inv;  // [n_kv][g * n_probes]
  DeviceBuffer<float> partial;           // [slices][n_kv][L] partial column sums
  DeviceBuffer<int> bad_probes;          // 1 element: set when the probes are invalid

  cublasHandle_t handle();  // created on first use (cuBLAS path only)

 private:
  cublasHandle_t handle_ = nullptr;
};

// q: bf16 bits [L][n_heads][d]; k: bf16 bits [L][n_kv_heads][d] (keys after RoPE, as
// the model makes them); probes: device int32 [n_probes], sorted ascending, distinct
// positions in [0, L) (saliency::select_probes chooses them on the host); out: float
// [n_kv_heads][L].
//
// metric Normalized (ZipCache: the column sum divided by the number of probe rows
// t >= i for Norm::ProbeCount, 0 where no probe sees i, or by L - i for Norm::Full)
// or Accumulated (the column sum: MiKV/H2O); Recent writes s_i = i; Random is a
// zc::Error (drawn on the host by saliency::scores from zc::Rng, which the GPU does not
// reproduce). The column sums run over the g query heads of each KV head and the probe
// rows, as in saliency::scores.
//
// Asynchronous on `stream`; no host synchronization. Shapes and pointers are checked on
// the host (zc::Error); the probe positions live on the device and are checked there:
// unsorted, repeated or out-of-range probes make every output NaN, and non-finite q or
// k values make the scores their logits reach NaN (top_r_split reports NaN scores).
//
// row_lse (optional): float [L][n_heads], every row's base-2 log-sum-exp of its causal
// logits at this scale, as prefill_attention writes it from the same q and k; the fused
// path then skips its row kernel (half of the pass's work) and reads the probe rows'.
void probe_scores(const ProbeScoreShape& shape, const uint16_t* q, const uint16_t* k,
                  const int32_t* probes, int n_probes, saliency::Metric metric,
                  saliency::Norm norm, float* out, ProbeWorkspace& ws,
                  cudaStream_t stream = nullptr, const float* row_lse = nullptr);

namespace detail {

// Which path probe_scores takes: Auto (fused where it applies, else cuBLAS), or one
// forced, with the fused kernels' variant (rows / keys per warp, 16 or 32; 0: default).
// For tests and timing; Fused on a shape it does not cover is a zc::Error.
struct ProbePath {
  enum Kind { Auto, Fused, Cublas } kind = Auto;
  int row_warp_rows = 0, col_warp_keys = 0;
};

void probe_scores_with(const ProbePath& path, const ProbeScoreShape& shape, const uint16_t* q,
                       const uint16_t* k, const int32_t* probes, int n_probes,
                       saliency::Metric metric, saliency::Norm norm, float* out,
                       ProbeWorkspace& ws, cudaStream_t stream = nullptr,
                       const float* row_lse = nullptr);

}  // namespace detail

}  // namespace zc::cuda
