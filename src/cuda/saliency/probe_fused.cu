// Fused probe pass of ZipCache's saliency (SPEC.md section 3; probe_scores.h): the
// causal softmax probabilities of the probe query rows, summed per key, without ever
// writing the logits (the cuBLAS path wrote 4 * n_kv * g * P * L bytes of them and read
// them back twice). Two kernels on mma.sync.m16n8k16 (bf16 in, fp32 accumulate), in
// the fragment layout of the flash prefill kernel (cuda/kv/prefill_attention.cu):
//
// 1. Row pass: a CTA owns 4 warps x RW probe rows of one KV head (the g query heads of
//    each probe position are consecutive rows, r = p * g + j) and streams the keys of
//    their causal prefix through shared memory (cp.async, two stages, 64 keys a tile):
//    S = Q K^T in accumulators, masked per row at its own position, online max and sum
//    of 2^(scale_log2 * S - max) as FlashAttention without V. It stores one record per
//    row, the base-2 log-sum-exp and the number of visible keys (ProbeRowInfo).
//    Where the flash prefill already wrote every row's lse (ProbeFusedParams::row_lse),
//    a small kernel copies the probe rows' records from it instead.
// 2. Column pass: a CTA owns 4 warps x RW keys of one KV head (the keys are the A
//    operand, as the queries of the prefill kernel) and streams every probe row that can
//    see them (positions >= its first key, a suffix of the rows since the probes are
//    sorted) in tiles of 64, recomputes S^T = K Q^T, turns it into probabilities
//    2^(scale_log2 * S - lse) (0 where the key is past the row's position), and adds
//    them per key in a fixed order: per thread over tiles and 8-row blocks, then a
//    butterfly over the quad. No atomics, so the scores are bitwise reproducible.
//    It applies the normalization (probe count or L - i) and writes the scores.
//
// Rows of a tile past the last probe row are zero-filled and have visible = 0, so they
// are masked; keys past L are zero-filled and never written. Exponentials run on the
// SFU (ex2.approx: relative error ~2^-22, far below the tests' 1e-3).
// NaN propagation matches the cuBLAS path: a NaN logit makes its row's lse NaN (fmaxf
// skips it, the sum does not), hence every probability of that row, hence the scores of
// the keys that row sees; masked entries are selected to 0, never multiplied.
// Invalid probe lists are detected by the row pass (tile_bad) and make the column pass
// write NaN everywhere; positions are clamped on every read, so no access leaves q.
#include <cstdint>

#include "cuda/core/ptx.cuh"
#include "cuda/saliency/probe_positions.cuh"
#include "cuda/saliency/saliency_launch.h"

namespace zc::cuda::detail {
namespace {

constexpr int kWarps = 4, kThreads = kWarps * 32;
constexpr int kTile = 64;  // streamed rows per stage: keys (row pass), probe rows (column pass)
constexpr unsigned kFull = 0xffffffffu;

using namespace ptx;  // cp.async, ldmatrix, mma, ex2, quad reductions (cuda/core/ptx.cuh)

// ---- tile loads (shared-memory rows of D bf16 at pitch D + 8: the eight row addresses
// of every ldmatrix then hit distinct bank groups) -----------------------------------

// ROWS consecutive tokens from row0 of a [tokens][heads][D] tensor (src: token 0 of the
// head), zero-filled at and past `tokens`.
template <int D, int ROWS>
__device__ __forceinline__ void load_rows(uint32_t dst, const uint16_t* src, size_t stride, int row0,
                                          int tokens, int tid) {
  constexpr int kChunks = D / 8;  // 16-byte vectors per row
  static_assert((ROWS * kChunks) % kThreads == 0, "tile vectors split evenly over threads");
#pragma unroll
  for (int it = 0; it < ROWS * kChunks / kThreads; ++it) {
    const int i = tid + it * kThreads;
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool ok = row0 + r < tokens;
    cp_async16(dst + static_cast<uint32_t>((r * (D + 8) + c) * 2),
               src + static_cast<size_t>(ok ? row0 + r : 0) * stride + c, ok);
  }
}

// ROWS probe rows r0.. of KV head h: row r is q[probes[r / g]][h * g + r % g][:];
// rows >= R are zero-filled. Positions are clamped into [0, L).
template <int D, int ROWS>
__device__ __forceinline__ void load_probe_rows(uint32_t dst, const uint16_t* q, const int32_t* probes,
                                                int L, int n_heads, int g, int R, int h, int r0, int tid) {
  constexpr int kChunks = D / 8;
  static_assert((ROWS * kChunks) % kThreads == 0, "tile vectors split evenly over threads");
#pragma unroll
  for (int it = 0; it < ROWS * kChunks / kThreads; ++it) {
    const int i = tid + it * kThreads;
    const int rr = i / kChunks, c = (i % kChunks) * 8;
    const int r = r0 + rr;
    const bool ok = r < R;
    const uint16_t* src = q;
    if (ok) {
      const int t = clamp_position(__ldg(probes + r / g), L);
      src += (static_cast<size_t>(t) * n_heads + static_cast<size_t>(h * g + r % g)) * D + c;
    }
    cp_async16(dst + static_cast<uint32_t>((rr * (D + 8) + c) * 2), src, ok);
  }
}

// ldmatrix lane offsets (bytes) for pitch D + 8: A operand (rows 0-7 / 8-15 x columns
// 0-7 / 8-15) and the column-major B operand of A B^T-style products (B rows 0-7 / 8-15
// of the n dimension x k columns 0-7 / 8-15), as in the prefill kernel.
template <int D>
__device__ __forceinline__ uint32_t a_lane_offset(int lane) {
  return static_cast<uint32_t>(((lane % 16) * (D + 8) + (lane / 16) * 8) * 2);
}
template <int D>
__device__ __forceinline__ uint32_t b_lane_offset(int lane) {
  return static_cast<uint32_t>(((lane % 8 + 8 * (lane / 16)) * (D + 8) + 8 * ((lane / 8) % 2)) * 2);
}


// ---- row pass ------------------------------------------------------------------------

// 1-D grid, longest first: block x -> row tile n_rt - 1 - x / n_kv (the last rows have
// the longest prefixes), KV head x % n_kv.
template <int D, int MI>
__global__ void __launch_bounds__(kThreads) probe_row_kernel(const ProbeFusedParams p) {
  constexpr int RW = 16 * MI, BM = kWarps * RW, LD = D + 8;
  constexpr uint32_t kTileBytes = kTile * LD * 2;
  static_assert(BM <= kThreads, "one thread per row for the position reads");
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ int pos_s[BM];
  __shared__ int warp_max_s[kWarps];
  const uint32_t q_base = smem_addr(smem), k_base = q_base + BM * LD * 2;

  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int g = p.n_heads / p.n_kv, R = g * p.n_probes, n_rt = (R + BM - 1) / BM;
  const int idx = static_cast<int>(blockIdx.x);
  const int rt = n_rt - 1 - idx / p.n_kv, h = idx % p.n_kv;
  const int row0 = rt * BM;

  load_probe_rows<D, BM>(q_base, p.q, p.probes, p.L, p.n_heads, g, R, h, row0, tid);
  const uint16_t* k = p.k + static_cast<size_t>(h) * D;
  const size_t kv_stride = static_cast<size_t>(p.n_kv) * D;
  load_rows<D, kTile>(k_base, k, kv_stride, 0, p.L, tid);
  cp_async_commit();

  // Row positions (-1 past the last row) and the probe checks: each probe p is checked
  // by the thread of its first row p * g, in the one tile holding that row.
  int pos = -1;
  bool bad = false;
  if (tid < BM && row0 + tid < R) {
    const int r = row0 + tid, pi = r / g;
    const int raw = p.probes[pi];
    pos = clamp_position(raw, p.L);
    if (r % g == 0) bad = raw < 0 || raw >= p.L || (pi > 0 && p.probes[pi - 1] >= raw);
  }
  if (tid < BM) pos_s[tid] = pos;
  const int wmax = __reduce_max_sync(kFull, pos);
  if (lane == 0) warp_max_s[warp] = wmax;
  const int any_bad = __syncthreads_or(bad);
  if (h == 0 && tid == 0) p.tile_bad[rt] = any_bad;
  int cta_max = warp_max_s[0];
#pragma unroll
  for (int w = 1; w < kWarps; ++w) cta_max = max(cta_max, warp_max_s[w]);
  const int n_tiles = cta_max / kTile + 1;  // cta_max >= 0: row0 < R

  // Fragment rows of this thread: g4 and g4 + 8 of each m-tile (h2 = 0, 1).
  const int g4 = lane / 4, t4 = lane % 4;
  int lim[MI][2];
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) {
    lim[mi][0] = pos_s[warp * RW + mi * 16 + g4];
    lim[mi][1] = pos_s[warp * RW + mi * 16 + g4 + 8];
  }
  const int my_pos = pos_s[warp * RW + lane % RW];
  const int warp_min = __reduce_min_sync(kFull, my_pos), warp_last = __reduce_max_sync(kFull, my_pos);
  const float sl = p.scale_log2;
  const uint32_t a_lane = q_base + static_cast<uint32_t>(warp * RW * LD * 2) + a_lane_offset<D>(lane);
  const uint32_t b_off = b_lane_offset<D>(lane);

  uint32_t qf[D / 16][4];  // MI = 1: the warp's Q rows as A fragments, loaded once
  float m[MI][2], l[MI][2];  // running max (log2 units) and this thread's part of the sum
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) m[mi][0] = m[mi][1] = -INFINITY, l[mi][0] = l[mi][1] = 0.0f;

  for (int j = 0; j < n_tiles; ++j) {
    if (j + 1 < n_tiles) {  // prefetch key tile j + 1 into the other stage
      load_rows<D, kTile>(k_base + static_cast<uint32_t>((j + 1) & 1) * kTileBytes, k, kv_stride,
                          (j + 1) * kTile, p.L, tid);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // key tile j (and the Q rows) visible to every warp
    if constexpr (MI == 1) {
      if (j == 0) {
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) ldsm_x4(a_lane + kk * 32, qf[kk]);
      }
    }
    const int k0 = j * kTile;
    if (k0 <= warp_last) {  // warp-uniform: some row of this warp sees a key of the tile
      float s[MI][kTile / 8][4];
      tile_product<__nv_bfloat16, D, MI, kTile>(s, qf, a_lane,
                          k_base + static_cast<uint32_t>(j & 1) * kTileBytes + b_off);
      if (k0 + kTile - 1 > warp_min) {  // some row stops inside this tile
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
          mask_keys_after(s[mi], lim[mi][0] - k0 - 2 * t4, lim[mi][1] - k0 - 2 * t4);
        }
      }
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
        for (int h2 = 0; h2 < 2; ++h2) {
          const float mn = fmaxf(m[mi][h2], quad_max(fragment_row_max(s[mi], h2)) * sl);
          const float base = mn == -INFINITY ? 0.0f : mn;  // no visible key yet: all terms 0
          float sum = 0.0f;
#pragma unroll
          for (int n = 0; n < kTile / 8; ++n) {
            sum += ex2(fmaf(s[mi][n][2 * h2], sl, -base)) + ex2(fmaf(s[mi][n][2 * h2 + 1], sl, -base));
          }
          l[mi][h2] = l[mi][h2] * ex2(m[mi][h2] - base) + sum;
          m[mi][h2] = mn;
        }
      }
    }
    __syncthreads();  // every warp is done with stage j & 1 before it is refilled
  }

  // Every valid row saw key 0 (its position is >= 0), so its max is finite unless its
  // logits are NaN; log2 of a NaN or positive sum is the record's lse.
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
    for (int h2 = 0; h2 < 2; ++h2) {
      const float sum = quad_sum(l[mi][h2]);
      const int r = row0 + warp * RW + mi * 16 + g4 + 8 * h2;
      if (t4 == h2 && r < R) {
        p.rows[static_cast<size_t>(h) * R + r] = ProbeRowInfo{m[mi][h2] + log2f(sum), lim[mi][h2] + 1};
      }
    }
  }
}

// ---- column pass ---------------------------------------------------------------------

// 1-D grid: block x -> key tile x / n_kv (the first keys are seen by the most rows, so
// the longest CTAs start first), KV head x % n_kv. n_flags: the row pass's tile count.
template <int D, int MI>
__global__ void __launch_bounds__(kThreads) probe_column_kernel(const ProbeFusedParams p, int n_flags) {
  constexpr int RW = 16 * MI, BN = kWarps * RW, LD = D + 8;
  constexpr uint32_t kQBytes = kTile * LD * 2, kStageBytes = kQBytes + kTile * 8;
  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t k_base = smem_addr(smem), st_base = k_base + BN * LD * 2;

  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int g = p.n_heads / p.n_kv, R = g * p.n_probes;
  const int idx = static_cast<int>(blockIdx.x);
  const int kt = idx / p.n_kv, h = idx % p.n_kv;
  const int i0 = kt * BN;
  float* const out = p.out + static_cast<size_t>(h) * p.L;

  // Invalid probes (flagged by the row pass): every score is NaN.
  bool bad = false;
  for (int f = tid; f < n_flags; f += kThreads) bad = bad || p.tile_bad[f] != 0;
  if (__syncthreads_or(bad)) {
    for (int i = tid; i < BN && i0 + i < p.L; i += kThreads) out[i0 + i] = __int_as_float(0x7fc00000);
    return;
  }

  // Rows that see a key of this tile: positions >= i0, rows g * lower_bound(i0) onwards.
  const int r_begin = g * lower_bound(p.probes, p.n_probes, i0);
  const int n_tiles = (R - r_begin + kTile - 1) / kTile;
  const ProbeRowInfo* info = p.rows + static_cast<size_t>(h) * R;
  const uint16_t* const q = p.q;
  const int32_t* const probes = p.probes;
  const int L = p.L, n_heads = p.n_heads;
  const auto load_stage = [=](int j) {
    const uint32_t st = st_base + static_cast<uint32_t>(j & 1) * kStageBytes;
    const int r0 = r_begin + j * kTile;
    load_probe_rows<D, kTile>(st, q, probes, L, n_heads, g, R, h, r0, tid);
    if (tid < kTile) {  // zero-filled records (visible = 0) mask the rows past R
      const bool ok = r0 + tid < R;
      cp_async8(st + kQBytes + static_cast<uint32_t>(tid * 8), info + (ok ? r0 + tid : 0), ok);
    }
  };
  if (n_tiles > 0) {  // else no probe sees these keys: their sums stay 0
    load_rows<D, BN>(k_base, p.k + static_cast<size_t>(h) * D, static_cast<size_t>(p.n_kv) * D, i0, L, tid);
    load_stage(0);
    cp_async_commit();
  }

  const int g4 = lane / 4, t4 = lane % 4;
  const int key_w = i0 + warp * RW;  // this warp's first key
  const float sl = p.scale_log2;
  const uint32_t a_lane = k_base + static_cast<uint32_t>(warp * RW * LD * 2) + a_lane_offset<D>(lane);
  const uint32_t b_off = b_lane_offset<D>(lane);
  uint32_t kf[D / 16][4];  // MI = 1: the warp's keys as A fragments, loaded once
  float acc[MI][2];        // column sums of keys g4 and g4 + 8 of each m-tile
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) acc[mi][0] = acc[mi][1] = 0.0f;

  for (int j = 0; j < n_tiles; ++j) {
    if (j + 1 < n_tiles) {
      load_stage(j + 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // row tile j (and the keys) visible to every warp
    if constexpr (MI == 1) {
      if (j == 0) {
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) ldsm_x4(a_lane + kk * 32, kf[kk]);
      }
    }
    const uint32_t st = st_base + static_cast<uint32_t>(j & 1) * kStageBytes;
    const auto* rec = reinterpret_cast<const int4*>(smem + (st - k_base) + kQBytes);  // 2 records
    const auto* rec1 = reinterpret_cast<const int2*>(rec);
    const int r0 = r_begin + j * kTile, valid = min(kTile, R - r0);
    // Rows are sorted by position: the last valid row sees the most keys, the first the
    // fewest. Skip the tile when no row sees this warp's first key; mask only when some
    // row stops before the warp's last key or the tile runs past R.
    if (rec1[valid - 1].y > key_w) {
      float s[MI][kTile / 8][4];
      tile_product<__nv_bfloat16, D, MI, kTile>(s, kf, a_lane, st + b_off);
      const bool mask = valid < kTile || rec1[0].y < key_w + RW;
#pragma unroll
      for (int n = 0; n < kTile / 8; ++n) {
        const int4 v = rec[n * 4 + t4];  // rows n * 8 + 2 t4 and n * 8 + 2 t4 + 1
        const float lse0 = __int_as_float(v.x), lse1 = __int_as_float(v.z);
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
          float p00 = ex2(fmaf(s[mi][n][0], sl, -lse0)), p01 = ex2(fmaf(s[mi][n][1], sl, -lse1));
          float p10 = ex2(fmaf(s[mi][n][2], sl, -lse0)), p11 = ex2(fmaf(s[mi][n][3], sl, -lse1));
          if (mask) {
            const int ka = key_w + mi * 16 + g4, kb = ka + 8;
            p00 = ka < v.y ? p00 : 0.0f, p01 = ka < v.w ? p01 : 0.0f;
            p10 = kb < v.y ? p10 : 0.0f, p11 = kb < v.w ? p11 : 0.0f;
          }
          acc[mi][0] += p00 + p01;
          acc[mi][1] += p10 + p11;
        }
      }
    }
    __syncthreads();  // every warp is done with stage j & 1 before it is refilled
  }

  // Quad butterfly (the same fixed order on every lane), then SPEC.md section 3's
  // divisor: the probe rows that see the key (ProbeCount; 0 when none) or L - i (Full).
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
    for (int h2 = 0; h2 < 2; ++h2) {
      float v = quad_sum(acc[mi][h2]);
      const int key = key_w + mi * 16 + g4 + 8 * h2;
      if (t4 == h2 && key < p.L) {
        if (p.norm == ScoreNorm::ProbeCount) {
          const int seen = p.n_probes - lower_bound(p.probes, p.n_probes, key);
          v = seen > 0 ? v / static_cast<float>(seen) : 0.0f;
        } else if (p.norm == ScoreNorm::Full) {
          v /= static_cast<float>(p.L - key);
        }
        out[key] = v;
      }
    }
  }
}

// ---- row records from the flash prefill's log-sum-exp --------------------------------

// The row pass's records and probe checks (same grid, same tile_bad) when the prefill
// kernel already computed every row's lse (p.row_lse [L][n_heads], the same bf16
// logits and scale): a thread per probe row reads its position's record instead of
// streaming the row's causal prefix again.
__global__ void __launch_bounds__(kThreads) probe_rows_from_lse_kernel(const ProbeFusedParams p, int tile_rows) {
  const int tid = static_cast<int>(threadIdx.x);
  const int g = p.n_heads / p.n_kv, R = g * p.n_probes;
  const int rt = static_cast<int>(blockIdx.x) / p.n_kv, h = static_cast<int>(blockIdx.x) % p.n_kv;
  const int r = rt * tile_rows + tid;
  bool bad = false;
  if (tid < tile_rows && r < R) {
    const int pi = r / g, raw = p.probes[pi], pos = clamp_position(raw, p.L);
    if (r % g == 0) bad = raw < 0 || raw >= p.L || (pi > 0 && p.probes[pi - 1] >= raw);
    const float lse = p.row_lse[static_cast<size_t>(pos) * p.n_heads + h * g + r % g];
    p.rows[static_cast<size_t>(h) * R + r] = ProbeRowInfo{lse, pos + 1};
  }
  const int any_bad = __syncthreads_or(bad);
  if (h == 0 && tid == 0) p.tile_bad[rt] = any_bad;
}

// ---- launchers -----------------------------------------------------------------------

// Raises the dynamic shared-memory limit once per instantiation when above 48 KiB.
template <typename Kernel>
cudaError_t allow_smem(Kernel kernel, size_t smem) {
  if (smem <= 48 * 1024) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
}

template <int D, int MI>
cudaError_t launch_rows_typed(const ProbeFusedParams& p, cudaStream_t s) {
  constexpr size_t smem = static_cast<size_t>(kWarps * 16 * MI + 2 * kTile) * (D + 8) * 2;
  static const cudaError_t raised = allow_smem(probe_row_kernel<D, MI>, smem);
  if (raised != cudaSuccess) return raised;
  const long long blocks = probe_row_tiles(p) * p.n_kv;
  probe_row_kernel<D, MI><<<static_cast<unsigned>(blocks), kThreads, smem, s>>>(p);
  return cudaGetLastError();
}

template <int D, int MI>
cudaError_t launch_columns_typed(const ProbeFusedParams& p, cudaStream_t s) {
  constexpr int BN = kWarps * 16 * MI;
  constexpr size_t smem = static_cast<size_t>(BN + 2 * kTile) * (D + 8) * 2 + 2 * kTile * 8;
  static const cudaError_t raised = allow_smem(probe_column_kernel<D, MI>, smem);
  if (raised != cudaSuccess) return raised;
  const long long blocks = static_cast<long long>((p.L + BN - 1) / BN) * p.n_kv;
  probe_column_kernel<D, MI><<<static_cast<unsigned>(blocks), kThreads, smem, s>>>(
      p, static_cast<int>(probe_row_tiles(p)));
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_probe_rows(const ProbeFusedParams& p, cudaStream_t s) {
  if (p.row_lse != nullptr) {
    const int tile_rows = probe_row_tile_rows(p);
    if (tile_rows > kThreads) return cudaErrorInvalidValue;
    const long long blocks = probe_row_tiles(p) * p.n_kv;
    probe_rows_from_lse_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(p, tile_rows);
    return cudaGetLastError();
  }
  const int rows = p.row_warp_rows == 0 ? kProbeDefaultRowWarpRows : p.row_warp_rows;
  if (p.d == 64 && rows == 16) return launch_rows_typed<64, 1>(p, s);
  if (p.d == 64 && rows == 32) return launch_rows_typed<64, 2>(p, s);
  if (p.d == 128 && rows == 16) return launch_rows_typed<128, 1>(p, s);
  if (p.d == 128 && rows == 32) return launch_rows_typed<128, 2>(p, s);
  return cudaErrorInvalidValue;
}

cudaError_t launch_probe_columns(const ProbeFusedParams& p, cudaStream_t s) {
  const int keys = p.col_warp_keys == 0 ? kProbeDefaultColWarpKeys : p.col_warp_keys;
  if (p.d == 64 && keys == 16) return launch_columns_typed<64, 1>(p, s);
  if (p.d == 64 && keys == 32) return launch_columns_typed<64, 2>(p, s);
  if (p.d == 128 && keys == 16) return launch_columns_typed<128, 1>(p, s);
  if (p.d == 128 && keys == 32) return launch_columns_typed<128, 2>(p, s);
  return cudaErrorInvalidValue;
}

}  // namespace zc::cuda::detail
