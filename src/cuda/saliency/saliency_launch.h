// Launchers of the saliency kernels (probe_fused.cu, probe_scores.cu, top_r.cu), internal
// to src/cuda/saliency: probe_scores.cpp and top_r.cpp validate arguments and call these.
// Plain C++ declarations so that g++ compiles the callers; every pointer is a device
// pointer.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace zc::cuda::detail {

// What the probe pass divides each column sum by (SPEC.md section 3).
enum class ScoreNorm : int { None = 0, ProbeCount = 1, Full = 2 };

// ---- fused probe scores (probe_fused.cu; the path for head_dim 64 and 128) ----

// Per probe row (KV head h, row r = p * g + j: query head h * g + j at position
// probes[p]): the base-2 log-sum-exp of its scaled logits over its causal prefix,
// lse = log2 sum_{i <= t} 2^(scale_log2 * q.k_i), and visible = t + 1, the number of
// keys it sees. A probability is then 2^(scale_log2 * q.k_i - lse) for i < visible.
struct ProbeRowInfo {
  float lse;
  int visible;
};

// Rows per warp of the row pass / keys per warp of the column pass: 16 or 32 (one or
// two m16 tiles per warp, 4 warps per CTA). 0 picks these defaults (not yet measured
// on a GPU; CudaProbeScores.TimingLlama3Shape times all four pairs).
inline constexpr int kProbeDefaultRowWarpRows = 16, kProbeDefaultColWarpKeys = 32;

struct ProbeFusedParams {
  const uint16_t* q = nullptr;       // bf16 bits [L][n_heads][d], 16-byte aligned
  const uint16_t* k = nullptr;       // bf16 bits [L][n_kv][d], 16-byte aligned
  const int32_t* probes = nullptr;   // [n_probes] positions (checked on the device)
  int L = 0, n_heads = 0, n_kv = 0, d = 0, n_probes = 0;  // d: 64 or 128
  float scale_log2 = 0.0f;           // softmax scale * log2(e)
  ScoreNorm norm = ScoreNorm::None;
  int row_warp_rows = 0, col_warp_keys = 0;  // 16, 32, or 0 (default)
  const float* row_lse = nullptr;    // optional [L][n_heads] (prefill_attention's lse): the
                                     // row pass reads the records instead of computing them
  ProbeRowInfo* rows = nullptr;      // [n_kv][g * n_probes], written by the row pass
  int* tile_bad = nullptr;           // [probe_row_tiles(p)], written by the row pass
  float* out = nullptr;              // [n_kv][L]
};

// Probe rows per CTA of the row pass and the number of its row tiles per KV head (the
// length of tile_bad).
inline int probe_row_tile_rows(const ProbeFusedParams& p) {
  return 4 * (p.row_warp_rows == 0 ? kProbeDefaultRowWarpRows : p.row_warp_rows);
}
inline long long probe_row_tiles(const ProbeFusedParams& p) {
  const long long rows = static_cast<long long>(p.n_heads / p.n_kv) * p.n_probes;
  return (rows + probe_row_tile_rows(p) - 1) / probe_row_tile_rows(p);
}
// Keys per CTA of the column pass.
inline int probe_col_tile_keys(const ProbeFusedParams& p) {
  return 4 * (p.col_warp_keys == 0 ? kProbeDefaultColWarpKeys : p.col_warp_keys);
}

// Row pass: a CTA per (tile of probe rows, KV head) computes the logits of its rows
// against the keys of their causal prefixes on tensor cores with an online max and sum
// (no logits written) and stores p.rows; the head-0 CTAs also check the probes their
// tile starts (in [0, L), rising strictly) into tile_bad[tile].
cudaError_t launch_probe_rows(const ProbeFusedParams& p, cudaStream_t s);

// Column pass (after the row pass on the same stream): a CTA per (tile of keys, KV
// head) recomputes the logits of every probe row that sees its keys, sums the
// probabilities per key in a fixed order, normalizes and writes p.out; every output is
// NaN when any tile_bad flag is set.
cudaError_t launch_probe_columns(const ProbeFusedParams& p, cudaStream_t s);

// ---- probe scores through materialized logits (probe_scores.cu; the cuBLAS path for
// other head sizes or unaligned q / k) ----

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
