// ZipCache's probe pass on the GPU (SPEC.md section 3, issue 4): token saliency from
// the causal attention probabilities of a few probe query rows only, the same
// quantities saliency::scores computes on the CPU with those rows.
//
// Work per call: the probe rows of q are gathered per KV head into
// [n_kv][g * n_probes][d] bf16; ONE cublasGemmStridedBatchedEx over the KV heads forms
// the logits S_h = scale * Q_h K_h^T [g * n_probes x L] on tensor cores (bf16 in, fp32
// accumulate and out), with K_h read in place from [L][n_kv][d]; a row kernel takes
// each probe row's max and sum of exp over its causal prefix; a column kernel (thread
// per token, the probe list cut into slices when the prompt is short) sums the
// probabilities over the rows that see the token; a last kernel adds the slices in a
// fixed order (deterministic) and normalizes.
// The workspace holds 4 * n_kv * g * n_probes * L bytes of logits (e.g. L = 8192,
// 8 KV heads, g = 4, 10% probes: 0.86 GB).
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
// created on first use and bound to each call's stream.
class ProbeWorkspace {
 public:
  ProbeWorkspace() = default;
  ProbeWorkspace(const ProbeWorkspace&) = delete;
  ProbeWorkspace& operator=(const ProbeWorkspace&) = delete;
  ~ProbeWorkspace();

  DeviceBuffer<uint16_t> q_probe;        // [n_kv][g * n_probes][d] bf16 bits
  DeviceBuffer<float> logits;            // [n_kv][g * n_probes][L]
  DeviceBuffer<float> row_max, row_inv;  // [n_kv][g * n_probes]
  DeviceBuffer<float> partial;           // [slices][n_kv][L] partial column sums
  DeviceBuffer<int> bad_probes;          // 1 element: set when the probes are invalid

  cublasHandle_t handle();  // created on first use

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
void probe_scores(const ProbeScoreShape& shape, const uint16_t* q, const uint16_t* k,
                  const int32_t* probes, int n_probes, saliency::Metric metric,
                  saliency::Norm norm, float* out, ProbeWorkspace& ws,
                  cudaStream_t stream = nullptr);

}  // namespace zc::cuda
