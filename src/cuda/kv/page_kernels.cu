// Kernels that fill and read the paged KV layout (kv_page.h; launchers in
// page_launch.h). Index math of the layout, per page:
//  fp16 key of channel c, token t: vector (c / 8) * 32 + t, half c % 8;
//  fp16 value of channel c, token t: vector (t / 4) * (d / 2) + c / 2, half (c % 2) * 4 + t % 4;
//  packed keys: vector (cc, t) = channels [cc * CPV, (cc + 1) * CPV) of token t, the
//   same bit order as quant's row-major packing, so it is a 16-byte copy of the row;
//  packed values: vector (k, p) = channels 2p (words 0-1) and 2p+1 (words 2-3) for
//   tokens [k * TK, (k + 1) * TK), token u at bits u * vbits of its 64 bits.
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "cuda/kv/page_launch.h"

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

// One CTA per (row, head); threads over channels.
__global__ void write_fp16_kernel(const float* __restrict__ k, const float* __restrict__ v,
                                  int rows_per_seq, int seq0, int stride, int n_kv, int d,
                                  const SeqRun* __restrict__ runs, KvPage* table, int cap,
                                  uint8_t* pool) {
  const int r = static_cast<int>(blockIdx.x), h = static_cast<int>(blockIdx.y);
  const int seq = seq0 + r / rows_per_seq, i = r % rows_per_seq;
  const SeqRun run = runs[seq];
  const int pos = run.slot0 + i, page = run.page0 + pos / 32, t = pos % 32;
  KvPage* pg = table + (size_t(seq) * n_kv + h) * cap + page;
  const uint32_t ku = pg->k, vu = pg->v;
  const float* kr = k + size_t(r) * stride + size_t(h) * d;
  const float* vr = v + size_t(r) * stride + size_t(h) * d;
  uint16_t* kh = halves(pool, ku);
  uint16_t* vh = halves(pool, vu);
  for (int c = static_cast<int>(threadIdx.x); c < d; c += static_cast<int>(blockDim.x)) {
    kh[key_half(c, t)] = __half_as_ushort(__float2half_rn(kr[c]));
    vh[value_half(c, t, d)] = __half_as_ushort(__float2half_rn(vr[c]));
  }
  // The page covers this token now; the last row of a run (or of its page) sets it.
  const bool last_in_page = t == 31 || i == rows_per_seq - 1;
  if (threadIdx.x == 0 && last_in_page) pg->ntok = static_cast<uint8_t>(t + 1);
}

__global__ void read_fp16_kernel(const KvPage* __restrict__ table, int cap, int seq, int n_kv,
                                 int d, SeqRun run, const uint8_t* pool, float* k, float* v) {
  const int i = static_cast<int>(blockIdx.x), h = static_cast<int>(blockIdx.y);
  const int pos = run.slot0 + i, page = run.page0 + pos / 32, t = pos % 32;
  const KvPage pg = table[(size_t(seq) * n_kv + h) * cap + page];
  const uint16_t* kh = halves(pool, pg.k);
  const uint16_t* vh = halves(pool, pg.v);
  for (int c = static_cast<int>(threadIdx.x); c < d; c += static_cast<int>(blockDim.x)) {
    const size_t o = (size_t(i) * n_kv + h) * d + c;
    k[o] = __half2float(__ushort_as_half(kh[key_half(c, t)]));
    v[o] = __half2float(__ushort_as_half(vh[value_half(c, t, d)]));
  }
}

__global__ void gather_rows_kernel(const float* __restrict__ src, int stride, int n_kv, int d,
                                   const int32_t* __restrict__ idx, int idx_stride, float* dst) {
  const int i = static_cast<int>(blockIdx.x), h = static_cast<int>(blockIdx.y);
  const int row = idx[size_t(h) * idx_stride + i];
  const float* s = src + size_t(row) * stride + size_t(h) * d;
  float* o = dst + (size_t(i) * n_kv + h) * d;
  for (int c = static_cast<int>(threadIdx.x); c < d; c += static_cast<int>(blockDim.x)) o[c] = s[c];
}

// Code of element e of a row-major packed matrix.
__device__ __forceinline__ uint32_t code_at(const uint8_t* codes, size_t e, int bits) {
  const int per = 8 / bits;
  return (codes[e / per] >> ((e % per) * bits)) & ((1u << bits) - 1u);
}

// One CTA per (page of the set, head).
__global__ void pack_pages_kernel(const PackSet set, const KvPage* __restrict__ table, int cap,
                                  int seq, int page0, uint8_t* pool) {
  const int p = static_cast<int>(blockIdx.x), h = static_cast<int>(blockIdx.y);
  const int n = set.n, n_kv = set.n_kv, d = set.d, cols = n_kv * d;
  const KvPage pg = table[(size_t(seq) * n_kv + h) * cap + page0 + p];
  const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
  const int row0 = p * 32;

  // Keys: 16-byte copies of each token's packed row slice.
  const int kvecs = d * set.kbits / 128, cpv = 128 / set.kbits;
  uint4* kout = reinterpret_cast<uint4*>(pool) + pg.k;
  for (int i = tid; i < kvecs * 32; i += nt) {
    const int cc = i / 32, t = i % 32, r = row0 + t;
    uint4 w = make_uint4(0, 0, 0, 0);
    if (r < n) {
      const size_t byte = (size_t(r) * cols + size_t(h) * d + size_t(cc) * cpv) * set.kbits / 8;
      w = *reinterpret_cast<const uint4*>(set.kcodes + byte);
    }
    kout[i] = w;
  }
  // Values: transpose codes into (chunk, channel pair) vectors.
  const int tk = 64 / set.vbits, chunks = set.vbits / 2, half_d = d / 2;
  uint4* vout = reinterpret_cast<uint4*>(pool) + pg.v;
  for (int i = tid; i < chunks * half_d; i += nt) {
    const int kc = i / half_d, pp = i % half_d;
    unsigned long long w0 = 0, w1 = 0;
    for (int u = 0; u < tk; ++u) {
      const int r = row0 + kc * tk + u;
      if (r >= n) break;
      const size_t e = size_t(r) * cols + size_t(h) * d + 2 * pp;
      w0 |= static_cast<unsigned long long>(code_at(set.vcodes, e, set.vbits)) << (u * set.vbits);
      w1 |= static_cast<unsigned long long>(code_at(set.vcodes, e + 1, set.vbits)) << (u * set.vbits);
    }
    vout[i] = make_uint4(static_cast<uint32_t>(w0), static_cast<uint32_t>(w0 >> 32),
                         static_cast<uint32_t>(w1), static_cast<uint32_t>(w1 >> 32));
  }
  // Per-token value parameters: lo[ng][32] then step[ng][32].
  const int ng = d / set.vgroup, gpr = cols / set.vgroup;
  uint16_t* vp = halves(pool, pg.vp);
  for (int i = tid; i < ng * 32; i += nt) {
    const int gi = i / 32, t = i % 32, r = row0 + t;
    uint16_t lo = 0, st = 0;
    if (r < n) {
      const size_t gidx = size_t(r) * gpr + size_t(h) * ng + gi;
      lo = set.vlo[gidx];
      st = set.vstep[gidx];
    }
    vp[gi * 32 + t] = lo;
    vp[(ng + gi) * 32 + t] = st;
  }
  // Block parameters, written once per block by its first page.
  if (row0 % set.block_rows == 0) {
    const int blk = row0 / set.block_rows;
    uint16_t* kp = halves(pool, pg.kp);
    for (int c = tid; c < d; c += nt) {
      const size_t gidx = size_t(blk) * cols + size_t(h) * d + c;
      kp[c] = set.klo[gidx];
      kp[d + c] = set.kstep[gidx];
    }
    if (set.vscale != nullptr) {
      uint16_t* vs = halves(pool, pg.vs);
      for (int c = tid; c < d; c += nt) vs[c] = set.vscale[size_t(blk) * cols + size_t(h) * d + c];
    }
  }
}

// One warp per (sequence, KV head, window token).
__global__ void window_saliency_kernel(const float* __restrict__ q, int q_stride,
                                       const float* __restrict__ ml,
                                       const KvPage* __restrict__ table, int cap,
                                       const uint8_t* pool, const SeqRun* __restrict__ win,
                                       const int32_t* __restrict__ win_count, int n_heads,
                                       int n_kv, int d, float scale_log2, float* sums,
                                       int sums_cap) {
  const int w = static_cast<int>(blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32);
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int list = static_cast<int>(blockIdx.y), b = list / n_kv, h = list % n_kv;
  if (w >= win_count[b]) return;
  const int page = win[b].page0 + w / 32, t = w % 32;
  const KvPage pg = table[size_t(list) * cap + page];
  const uint16_t* kh = halves(pool, pg.k);
  const int g = n_heads / n_kv;
  float total = 0.0f;
  for (int j = 0; j < g; ++j) {
    const size_t row = size_t(b) * n_heads + size_t(h) * g + j;
    const float* qr = q + size_t(b) * q_stride + size_t(h * g + j) * d;
    float dot = 0.0f;
    for (int c = lane; c < d; c += 32) dot += qr[c] * __half2float(__ushort_as_half(kh[key_half(c, t)]));
    for (int o = 16; o > 0; o /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    total += exp2f(dot * scale_log2 - ml[2 * row]) / ml[2 * row + 1];
  }
  if (lane == 0) sums[size_t(list) * sums_cap + w] += total;
}

__global__ void window_scores_kernel(const float* sums, int sums_cap, int seq, int n_kv, int n,
                                     bool normalized, float* scores) {
  const int j = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x), h = static_cast<int>(blockIdx.y);
  if (j >= n) return;
  const float s = sums[(size_t(seq) * n_kv + h) * sums_cap + j];
  scores[size_t(h) * n + j] = normalized ? s / static_cast<float>(n - j) : s;
}

__global__ void round_to_half_kernel(float* x, size_t n) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    x[i] = __half2float(__float2half_rn(x[i]));
  }
}

// The host sends each slot at most once per call (its last update).
__global__ void scatter_pages_kernel(const KvPage* pages, const int64_t* index, int n, KvPage* table) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) table[index[i]] = pages[i];
}

unsigned grid_1d(long long n, int per) { return static_cast<unsigned>((n + per - 1) / per); }
unsigned threads_for(int d) { return d >= 128 ? 128u : static_cast<unsigned>(d); }

}  // namespace

cudaError_t launch_write_fp16(const float* k, const float* v, int rows, int rows_per_seq, int seq0,
                              int stride, int n_kv, int d, const SeqRun* runs, KvPage* table,
                              int cap, uint8_t* pool, cudaStream_t s) {
  if (rows == 0) return cudaSuccess;
  write_fp16_kernel<<<dim3(rows, n_kv), threads_for(d), 0, s>>>(k, v, rows_per_seq, seq0, stride, n_kv,
                                                                 d, runs, table, cap, pool);
  return cudaGetLastError();
}

cudaError_t launch_read_fp16(const KvPage* table, int cap, int seq, int n_kv, int d, SeqRun run,
                             int n, const uint8_t* pool, float* k, float* v, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  read_fp16_kernel<<<dim3(n, n_kv), threads_for(d), 0, s>>>(table, cap, seq, n_kv, d, run, pool, k, v);
  return cudaGetLastError();
}

cudaError_t launch_gather_rows(const float* src, int stride, int n_kv, int d, const int32_t* idx,
                               int idx_stride, int n_sel, float* dst, cudaStream_t s) {
  if (n_sel == 0) return cudaSuccess;
  gather_rows_kernel<<<dim3(n_sel, n_kv), threads_for(d), 0, s>>>(src, stride, n_kv, d, idx, idx_stride, dst);
  return cudaGetLastError();
}

cudaError_t launch_pack_pages(const PackSet& set, const KvPage* table, int cap, int seq, int page0,
                              uint8_t* pool, cudaStream_t s) {
  if (set.n == 0) return cudaSuccess;
  const int pages = (set.n + 31) / 32;
  pack_pages_kernel<<<dim3(pages, set.n_kv), 128, 0, s>>>(set, table, cap, seq, page0, pool);
  return cudaGetLastError();
}

cudaError_t launch_window_saliency(const float* q, int q_stride, const float* ml, const KvPage* table, int cap,
                                   const uint8_t* pool, const SeqRun* win, const int32_t* win_count,
                                   int batch, int n_heads, int n_kv, int d, float scale_log2,
                                   float* sums, int sums_cap, cudaStream_t s) {
  const int warps = 4;
  window_saliency_kernel<<<dim3(grid_1d(sums_cap, warps), batch * n_kv), warps * 32, 0, s>>>(
      q, q_stride, ml, table, cap, pool, win, win_count, n_heads, n_kv, d, scale_log2, sums, sums_cap);
  return cudaGetLastError();
}

cudaError_t launch_window_scores(const float* sums, int sums_cap, int seq, int n_kv, int n,
                                 bool normalized, float* scores, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  window_scores_kernel<<<dim3(grid_1d(n, 128), n_kv), 128, 0, s>>>(sums, sums_cap, seq, n_kv, n,
                                                                   normalized, scores);
  return cudaGetLastError();
}

cudaError_t launch_round_to_half(float* x, size_t n, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  round_to_half_kernel<<<static_cast<unsigned>(std::min<size_t>(4096, (n + 255) / 256)), 256, 0, s>>>(x, n);
  return cudaGetLastError();
}

cudaError_t launch_scatter_pages(const KvPage* pages, const int64_t* index, int n, KvPage* table,
                                 cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  scatter_pages_kernel<<<grid_1d(n, 128), 128, 0, s>>>(pages, index, n, table);
  return cudaGetLastError();
}

}  // namespace zc::cuda::detail
