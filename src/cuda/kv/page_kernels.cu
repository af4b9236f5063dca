// Kernels that fill and read the paged KV layout (kv_page.h; launchers in
// page_launch.h). Index math of the layout, per page:
//  fp16 key of channel c, token t: vector (c / 8) * 32 + t, half c % 8;
//  fp16 value of channel c, token t: vector (t / 4) * (d / 2) + c / 2, half (c % 2) * 4 + t % 4;
//  (the quantized forms are written by quantize_pages.cu and read by decode attention).
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "cuda/core/launch.cuh"
#include "cuda/kv/page_launch.h"
#include "cuda/model/rope.cuh"

namespace zc::cuda::detail {
namespace {

__device__ __forceinline__ uint16_t* halves(uint8_t* pool, uint32_t unit) {
  return reinterpret_cast<uint16_t*>(pool + size_t(unit) * 16);
}
__device__ __forceinline__ const uint16_t* halves(const uint8_t* pool, uint32_t unit) {
  return reinterpret_cast<const uint16_t*>(pool + size_t(unit) * 16);
}

__device__ __forceinline__ int key_half(int c, int t) { return ((c / 8) * 32 + t) * 8 + c % 8; }
__device__ __forceinline__ int value_half(int c, int t, int d) {
  return ((t / 4) * (d / 2) + c / 2) * 8 + (c % 2) * 4 + t % 4;
}

// One CTA per (row, hpc heads); threads over channels (with RoPE: over rotation pairs,
// each pair's angle taken once for all the CTA's heads: the double-precision sincos
// was most of a decode append's time when every (row, head) took its own).
__global__ void write_fp16_kernel(const float* __restrict__ k, const float* __restrict__ v,
                                  int rows_per_seq, int seq0, int stride, int n_kv, int d, int hpc,
                                  const SeqRun* __restrict__ runs, KvPage* table, int cap,
                                  uint8_t* pool, AppendRope rope) {
  wait_for_prior_grids();  // PDL (core/launch.cuh): a decode step's kernel
  allow_dependent_launch();
  const int r = static_cast<int>(blockIdx.x), h0 = static_cast<int>(blockIdx.y) * hpc;
  const int seq = seq0 + r / rows_per_seq, i = r % rows_per_seq;
  const SeqRun run = runs[seq];
  const int pos = run.slot0 + i, page = run.page0 + pos / 32, t = pos % 32;
  KvPage* pg0 = table + (size_t(seq) * n_kv + h0) * cap + page;  // head h0 + j at + j * cap
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  if (rope.positions == nullptr) {
    for (int j = 0; j < hpc; ++j) {
      const float* kr = k + size_t(r) * stride + size_t(h0 + j) * d;
      uint16_t* kh = halves(pool, pg0[size_t(j) * cap].k);
      for (int c = tid; c < d; c += nt) kh[key_half(c, t)] = __half_as_ushort(__float2half_rn(kr[c]));
    }
  } else {
    const int half = d / 2;
    const int32_t position = rope.positions[r];
    for (int ip = tid; ip < half; ip += nt) {
      const RopeAngle angle = rope_angle(position, rope.inv_freq[ip]);
      for (int j = 0; j < hpc; ++j) {
        const int h = h0 + j;
        float* qr = rope.q + size_t(r) * rope.q_stride + size_t(h) * rope.g * d;
        const float* kr = k + size_t(r) * stride + size_t(h) * d;
        // Every load of the head first (up to 8 query heads: decode attention's GQA
        // limit), so that the thread waits for memory once, not once per query head.
        constexpr int kMaxHeads = 8;
        float qa[kMaxHeads], qb[kMaxHeads];
#pragma unroll
        for (int q = 0; q < kMaxHeads; ++q) {
          if (q < rope.g) qa[q] = qr[size_t(q) * d + ip], qb[q] = qr[size_t(q) * d + ip + half];
        }
        const float ka = kr[ip], kb = kr[ip + half];
        uint16_t* kh = halves(pool, pg0[size_t(j) * cap].k);
        float lo, hi;
        rope_rotate(ka, kb, angle, lo, hi);
        kh[key_half(ip, t)] = __half_as_ushort(__float2half_rn(lo));
        kh[key_half(ip + half, t)] = __half_as_ushort(__float2half_rn(hi));
#pragma unroll
        for (int q = 0; q < kMaxHeads; ++q) {
          if (q < rope.g) rope_rotate(qa[q], qb[q], angle, qr[size_t(q) * d + ip], qr[size_t(q) * d + ip + half]);
        }
        for (int q = kMaxHeads; q < rope.g; ++q) {  // larger groups (not served by decode attention)
          float* x = qr + size_t(q) * d;
          rope_rotate(x[ip], x[ip + half], angle, x[ip], x[ip + half]);
        }
      }
    }
  }
  for (int j = 0; j < hpc; ++j) {
    const float* vr = v + size_t(r) * stride + size_t(h0 + j) * d;
    uint16_t* vh = halves(pool, pg0[size_t(j) * cap].v);
    for (int c = tid; c < d; c += nt) vh[value_half(c, t, d)] = __half_as_ushort(__float2half_rn(vr[c]));
  }
  // The page covers this token now; the last row of a run (or of its page) sets it.
  const bool last_in_page = t == 31 || i == rows_per_seq - 1;
  if (tid < hpc && last_in_page) pg0[size_t(tid) * cap].ntok = static_cast<uint8_t>(t + 1);
}

__global__ void read_fp16_batch_kernel(const KvPage* __restrict__ table, int cap, const SeqWindow* windows, int n_kv,
                                       int d, int n, const uint8_t* pool, float* k, float* v) {
  const int i = static_cast<int>(blockIdx.x), h = static_cast<int>(blockIdx.y), z = static_cast<int>(blockIdx.z);
  const SeqWindow w = windows[z];
  const KvPage pg = table[(size_t(w.seq) * n_kv + h) * cap + w.page0 + i / 32];
  const int t = i % 32;
  const uint16_t* kh = halves(pool, pg.k);
  const uint16_t* vh = halves(pool, pg.v);
  for (int c = static_cast<int>(threadIdx.x); c < d; c += static_cast<int>(blockDim.x)) {
    const size_t o = ((size_t(z) * n + i) * n_kv + h) * d + c;
    k[o] = __half2float(__ushort_as_half(kh[key_half(c, t)]));
    v[o] = __half2float(__ushort_as_half(vh[value_half(c, t, d)]));
  }
}

// Grid x covers the whole row (sums_cap): scores for j < n, then every entry cleared.
__global__ void window_scores_batch_kernel(float* sums, int sums_cap, const SeqWindow* windows, int n_kv, int n,
                                           bool normalized, float* scores) {
  const int j = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x), h = static_cast<int>(blockIdx.y);
  const int z = static_cast<int>(blockIdx.z);
  if (j >= sums_cap) return;
  float* row = sums + (size_t(windows[z].seq) * n_kv + h) * sums_cap;
  if (j < n) {
    const float s = row[j];
    scores[(size_t(z) * n_kv + h) * n + j] = normalized ? s / static_cast<float>(n - j) : s;
  }
  row[j] = 0.0f;
}

// The host sends each slot at most once per call (its last update).
__global__ void scatter_pages_kernel(const KvPage* pages, const int64_t* index, int n, KvPage* table) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) table[index[i]] = pages[i];
}

// A CTA per page.
__global__ void zero_pages_kernel(const uint32_t* units, uint8_t* pool, int vecs) {
  uint4* p = reinterpret_cast<uint4*>(pool + static_cast<size_t>(units[blockIdx.x]) * 16);
  for (int i = static_cast<int>(threadIdx.x); i < vecs; i += static_cast<int>(blockDim.x)) p[i] = make_uint4(0u, 0u, 0u, 0u);
}

unsigned grid_1d(long long n, int per) { return static_cast<unsigned>((n + per - 1) / per); }
unsigned threads_for(int d) { return d >= 128 ? 128u : static_cast<unsigned>(d); }

}  // namespace

cudaError_t launch_write_fp16(const float* k, const float* v, int rows, int rows_per_seq, int seq0,
                              int stride, int n_kv, int d, const SeqRun* runs, KvPage* table,
                              int cap, uint8_t* pool, cudaStream_t s, const AppendRope& rope) {
  if (rows == 0) return cudaSuccess;
  // Heads per CTA: with RoPE, as many as keep 1024 CTAs (the angles are shared; at 574
  // rows of 8 heads, 4 per CTA measured 16.0 us per append against 17.5 with one and
  // 18.5 with eight, H100); without, one (nothing to share).
  int hpc = 1;
  if (rope.positions != nullptr) {
    while (hpc * 2 <= n_kv && n_kv % (hpc * 2) == 0 && static_cast<long long>(rows) * (n_kv / (hpc * 2)) >= 1024) hpc *= 2;
  }
  const unsigned threads = rope.positions != nullptr ? std::max(32u, threads_for(d) / 2) : threads_for(d);
  return launch_pdl(PdlKernel::Page, write_fp16_kernel, dim3(rows, n_kv / hpc), threads, 0, s, k, v, rows_per_seq, seq0,
                    stride, n_kv, d, hpc, runs, table, cap, pool, rope);
}

cudaError_t launch_read_fp16_batch(const KvPage* table, int cap, const SeqWindow* windows, int n_seqs, int n_kv,
                                   int d, int n, const uint8_t* pool, float* k, float* v, cudaStream_t s) {
  if (n == 0 || n_seqs == 0) return cudaSuccess;
  if (n_seqs > 65535) return cudaErrorInvalidValue;
  read_fp16_batch_kernel<<<dim3(n, n_kv, n_seqs), threads_for(d), 0, s>>>(table, cap, windows, n_kv, d, n, pool, k, v);
  return cudaGetLastError();
}

cudaError_t launch_window_scores_batch(float* sums, int sums_cap, const SeqWindow* windows, int n_seqs, int n_kv,
                                       int n, bool normalized, float* scores, cudaStream_t s) {
  if (n_seqs == 0) return cudaSuccess;
  if (n_seqs > 65535 || n > sums_cap) return cudaErrorInvalidValue;
  window_scores_batch_kernel<<<dim3(grid_1d(sums_cap, 128), n_kv, n_seqs), 128, 0, s>>>(sums, sums_cap, windows, n_kv,
                                                                                       n, normalized, scores);
  return cudaGetLastError();
}

cudaError_t launch_scatter_pages(const KvPage* pages, const int64_t* index, int n, KvPage* table,
                                 cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  scatter_pages_kernel<<<grid_1d(n, 128), 128, 0, s>>>(pages, index, n, table);
  return cudaGetLastError();
}

cudaError_t launch_zero_pages(const uint32_t* units, int n, uint8_t* pool, size_t bytes, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  if (n < 0 || bytes % 16 != 0 || bytes / 16 > size_t(1) << 30) return cudaErrorInvalidValue;
  zero_pages_kernel<<<static_cast<unsigned>(n), 256, 0, s>>>(units, pool, static_cast<int>(bytes / 16));
  return cudaGetLastError();
}

}  // namespace zc::cuda::detail
