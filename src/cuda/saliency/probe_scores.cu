// Kernels of the cuBLAS probe path (SPEC.md section 3; probe_scores.h), taken for
// head_dim other than 64 / 128 (the fused path, probe_fused.cu, covers those). The
// logits GEMM runs in cuBLAS (probe_scores.cpp); these kernels gather the probe
// queries, reduce each probe row over its causal prefix, and sum the probabilities per
// token.
// Exponentials use expf (no fast math): the tests compare against double precision.
#include <cstdint>

#include "cuda/saliency/probe_positions.cuh"
#include "cuda/saliency/saliency_launch.h"

namespace zc::cuda::detail {
namespace {

constexpr unsigned kFull = 0xffffffffu;

// Thread per element of the gathered [n_kv][g * P][d] probe queries.
__global__ void gather_kernel(const uint16_t* __restrict__ q, const int32_t* __restrict__ probes,
                              int P, int L, int n_heads, int n_kv, int d,
                              uint16_t* __restrict__ qp, int* bad) {
  const int g = n_heads / n_kv;
  const long long R = static_cast<long long>(g) * P;
  const long long total = static_cast<long long>(n_kv) * R * d;
  const long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= total) return;
  const int c = static_cast<int>(e % d);
  const long long row = e / d;
  const int r = static_cast<int>(row % R), h = static_cast<int>(row / R);
  const int p = r / g, j = r % g;
  const int t = probes[p];
  // One check per probe: positions must rise strictly and stay inside [0, L).
  if (c == 0 && h == 0 && j == 0 && (t < 0 || t >= L || (p > 0 && probes[p - 1] >= t))) *bad = 1;
  const long long src =
      (static_cast<long long>(clamp_position(t, L)) * n_heads + static_cast<long long>(h) * g + j) *
          d + c;
  qp[e] = q[src];
}

// Merges two (max, sum of exp(x - max)) pairs of a softmax denominator.
__device__ void merge_stats(float& m, float& l, float m2, float l2) {
  const float mm = fmaxf(m, m2);
  if (mm == -INFINITY) return;  // both empty
  const float a = m == -INFINITY ? 0.0f : l * expf(m - mm);
  const float b = m2 == -INFINITY ? 0.0f : l2 * expf(m2 - mm);
  m = mm;
  l = a + b;
}

// Warp per probe row: one pass over the causal prefix with a running max (online
// softmax), lanes merged by shuffles. A NaN logit makes the row's sum NaN (hence every
// probability of the row, as in the fused path). It is tracked by a flag, not by the
// sum alone: NaN never wins `x > m`, so a lane whose first logit is NaN keeps m = -inf,
// and then its next finite logit resets l to 1, or merge_stats drops the lane as empty.
__global__ void row_stats_kernel(const float* __restrict__ S, const int32_t* __restrict__ probes,
                                 int P, int g, int n_kv, int L, float* __restrict__ row_max,
                                 float* __restrict__ row_inv) {
  const long long R = static_cast<long long>(g) * P;
  const long long row = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (row >= static_cast<long long>(n_kv) * R) return;
  const int r = static_cast<int>(row % R);
  const int t = clamp_position(probes[r / g], L);
  const float* s = S + row * L;
  float m = -INFINITY, l = 0.0f;
  bool nan = false;
  for (int i = lane; i <= t; i += 32) {
    const float x = s[i];
    nan = nan || isnan(x);
    if (x > m) {
      l = (m == -INFINITY ? 0.0f : l * expf(m - x)) + 1.0f;
      m = x;
    } else {
      l += expf(x - m);
    }
  }
  for (int o = 16; o > 0; o /= 2) {
    const float m2 = __shfl_xor_sync(kFull, m, o);
    const float l2 = __shfl_xor_sync(kFull, l, o);
    merge_stats(m, l, m2, l2);
  }
  if (__any_sync(kFull, nan)) l = __int_as_float(0x7fc00000);  // whole warp: one row
  if (lane == 0) {
    row_max[row] = m;
    row_inv[row] = 1.0f / l;
  }
}

constexpr int kColumnThreads = 256;

// Grid (token blocks, KV heads, probe slices), thread per token i: reads S[r][i] for
// consecutive i across the warp (coalesced); every thread of a block walks the same
// rows, so the row statistics are broadcast loads.
__global__ void column_kernel(const float* __restrict__ S, const int32_t* __restrict__ probes,
                              int P, int g, int L, const float* __restrict__ row_max,
                              const float* __restrict__ row_inv, int per_chunk,
                              float* __restrict__ partial) {
  __shared__ int first_probe;
  const int h = static_cast<int>(blockIdx.y), n_kv = static_cast<int>(gridDim.y);
  const int c = static_cast<int>(blockIdx.z);
  const int i0 = static_cast<int>(blockIdx.x) * kColumnThreads;
  const int i = i0 + static_cast<int>(threadIdx.x);
  const int p_begin = c * per_chunk, p_end = min(P, p_begin + per_chunk);
  if (threadIdx.x == 0) first_probe = max(p_begin, lower_bound(probes, P, i0));
  __syncthreads();
  if (i >= L) return;
  const int p0 = lower_bound(probes, P, i);  // rows p >= p0 see token i
  const long long R = static_cast<long long>(g) * P;
  const long long head_row = static_cast<long long>(h) * R;
  float acc = 0.0f;
  for (int p = first_probe; p < p_end; ++p) {
    if (p < p0) continue;
    for (int j = 0; j < g; ++j) {
      const long long row = head_row + static_cast<long long>(p) * g + j;
      acc += expf(S[row * L + i] - row_max[row]) * row_inv[row];
    }
  }
  partial[(static_cast<long long>(c) * n_kv + h) * L + i] = acc;
}

// Thread per (KV head, token): the slices summed in a fixed order (deterministic), then
// the normalization of SPEC.md section 3.
__global__ void finish_kernel(const float* __restrict__ partial, int chunks,
                              const int32_t* __restrict__ probes, int P, int n_kv, int L,
                              ScoreNorm norm, const int* __restrict__ bad,
                              float* __restrict__ out) {
  const long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  const long long total = static_cast<long long>(n_kv) * L;
  if (e >= total) return;
  if (*bad) {
    out[e] = __int_as_float(0x7fc00000);  // NaN: invalid probe positions
    return;
  }
  const int i = static_cast<int>(e % L);
  float acc = 0.0f;
  for (int c = 0; c < chunks; ++c) acc += partial[c * total + e];
  switch (norm) {
    case ScoreNorm::ProbeCount: {
      const int seen = P - lower_bound(probes, P, i);
      acc = seen > 0 ? acc / static_cast<float>(seen) : 0.0f;
      break;
    }
    case ScoreNorm::Full: acc /= static_cast<float>(L - i); break;
    default: break;
  }
  out[e] = acc;
}

__global__ void recent_kernel(int n_kv, int L, float* __restrict__ out) {
  const long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<long long>(n_kv) * L) return;
  out[e] = static_cast<float>(e % L);
}

unsigned blocks_for(long long n, int threads) {
  return static_cast<unsigned>((n + threads - 1) / threads);
}

}  // namespace

cudaError_t launch_gather_probes(const uint16_t* q, const int32_t* probes, int n_probes, int L,
                                 int n_heads, int n_kv, int d, uint16_t* qp, int* bad,
                                 cudaStream_t s) {
  const long long total = static_cast<long long>(n_heads) * n_probes * d;  // = n_kv * g * P * d
  gather_kernel<<<blocks_for(total, 256), 256, 0, s>>>(q, probes, n_probes, L, n_heads, n_kv, d, qp,
                                                       bad);
  return cudaGetLastError();
}

cudaError_t launch_row_stats(const float* S, const int32_t* probes, int n_probes, int g, int n_kv,
                             int L, float* row_max, float* row_inv, cudaStream_t s) {
  const long long rows = static_cast<long long>(n_kv) * g * n_probes;
  row_stats_kernel<<<blocks_for(rows * 32, 256), 256, 0, s>>>(S, probes, n_probes, g, n_kv, L,
                                                              row_max, row_inv);
  return cudaGetLastError();
}

cudaError_t launch_column_sums(const float* S, const int32_t* probes, int n_probes, int g,
                               int n_kv, int L, const float* row_max, const float* row_inv,
                               int chunks, float* partial, cudaStream_t s) {
  const int per_chunk = (n_probes + chunks - 1) / chunks;
  const dim3 grid(blocks_for(L, kColumnThreads), static_cast<unsigned>(n_kv),
                  static_cast<unsigned>(chunks));
  column_kernel<<<grid, kColumnThreads, 0, s>>>(S, probes, n_probes, g, L, row_max, row_inv,
                                                per_chunk, partial);
  return cudaGetLastError();
}

cudaError_t launch_finish_scores(const float* partial, int chunks, const int32_t* probes,
                                 int n_probes, int n_kv, int L, ScoreNorm norm, const int* bad,
                                 float* out, cudaStream_t s) {
  const long long total = static_cast<long long>(n_kv) * L;
  finish_kernel<<<blocks_for(total, 256), 256, 0, s>>>(partial, chunks, probes, n_probes, n_kv, L,
                                                       norm, bad, out);
  return cudaGetLastError();
}

cudaError_t launch_recent_scores(int n_kv, int L, float* out, cudaStream_t s) {
  const long long total = static_cast<long long>(n_kv) * L;
  recent_kernel<<<blocks_for(total, 256), 256, 0, s>>>(n_kv, L, out);
  return cudaGetLastError();
}

}  // namespace zc::cuda::detail
