// Launchers of the saliency kernels (probe_scores.cu, top_r.cu), internal to
// src/cuda/saliency: probe_scores.cpp and top_r.cpp validate arguments and call these.
// Plain C++ declarations so that g++ compiles the callers; every pointer is a device
// pointer.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace zc::cuda::detail {

// ---- probe scores (SPEC.md section 3) ----

// Gathers the probe query rows: qp[h][p * g + j][c] = q[probes[p]][h * g + j][c] (bf16
// bits). Row r of KV head h thus sits at position probes[r / g]; positions rise with r.
// Also sets *bad = 1 if the probes are not sorted, distinct positions in [0, L)
// (*bad must be zeroed first); positions are clamped so no read leaves q.
cudaError_t launch_gather_probes(const uint16_t* q, const int32_t* probes, int n_probes, int L,
                                 int n_heads, int n_kv, int d, uint16_t* qp, int* bad,
                                 cudaStream_t s);

// Row statistics of the logits S [n_kv][g * n_probes][L] (already scaled): for row r with
// position t = probes[r / g], row_max = max_{i <= t} S[r][i] and
// row_inv = 1 / sum_{i <= t} exp(S[r][i] - row_max).
cudaError_t launch_row_stats(const float* S, const int32_t* probes, int n_probes, int g, int n_kv,
                             int L, float* row_max, float* row_inv, cudaStream_t s);

// Partial column sums, the probe list cut into `chunks` consecutive slices (more CTAs
// for short prompts): partial[c][h][i] = sum over rows r of slice c with
// probes[r / g] >= i of exp(S[r][i] - row_max[r]) * row_inv[r].
cudaError_t launch_column_sums(const float* S, const int32_t* probes, int n_probes, int g,
                               int n_kv, int L, const float* row_max, const float* row_inv,
                               int chunks, float* partial, cudaStream_t s);

// What the final kernel divides each column sum by.
enum class ScoreNorm : int { None = 0, ProbeCount = 1, Full = 2 };

// out[h][i] = (sum over c of partial[c][h][i], in order) / divisor(i); divisor 1 (None),
// the number of probes >= i (ProbeCount; 0 when none), or L - i (Full). Writes NaN
// everywhere when *bad is set.
cudaError_t launch_finish_scores(const float* partial, int chunks, const int32_t* probes,
                                 int n_probes, int n_kv, int L, ScoreNorm norm, const int* bad,
                                 float* out, cudaStream_t s);

// out[h][i] = i (saliency::Metric::Recent).
cudaError_t launch_recent_scores(int n_kv, int L, float* out, cudaStream_t s);

// ---- top-r split (SPEC.md section 4) ----

// One CTA per list of scores [lists][n]: salient [lists][count] and regular
// [lists][n - count] token indices, both ascending; ties to the later token. NaN scores
// order below every other value; the smallest list * n + token holding a NaN is kept in
// *nan_at (atomicMin; the caller sets it to ~0ull first).
cudaError_t launch_top_r_split(const float* scores, int lists, int n, int count, int32_t* salient,
                               int32_t* regular, unsigned long long* nan_at, cudaStream_t s);

}  // namespace zc::cuda::detail
