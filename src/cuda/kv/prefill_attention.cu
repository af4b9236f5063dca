// Causal flash attention for prefill (SPEC.md section 3: "all other attention output
// comes from the fast (flash) attention kernel, which never materializes A"), GQA,
// fp16 or bf16 inputs with fp32 accumulation, FlashAttention-2 style (Dao 2023,
// algorithm 1) on mma.sync.m16n8k16 tensor-core instructions.
//
// A CTA of WARPS warps owns WARPS * RW query rows of one (sequence, query head); warp w
// owns RW = 16 or 32 of them (one or two m16 tiles; 4 warps x 32 rows is the default,
// prefill_launch.h has the timings). With 16 rows, Q is read once into registers as
// m16n8k16 A fragments; with 32, Q fragments come from shared memory per tile. Keys
// and values stream through shared memory in tiles of 64 tokens up to the diagonal,
// two stages deep (cp.async: tile j+1 loads while tile j is computed); rows are padded
// by 16 bytes so the eight row addresses of every ldmatrix hit distinct bank groups.
// Per tile a warp computes S = Q K^T (RW x 64) in accumulator registers, masks it only
// on the diagonal (or past the last token), and runs the online softmax on the
// fragments in log2 units (scale * log2(e) folded into one FMA before ex2):
//   m' = max(m, rowmax S), P = 2^(S - m'), l' = 2^(m - m') l + rowsum P,
//   O' = 2^(m - m') O + P V.
// The C layout of m16n8k16 is the A layout of the next product, so P becomes the A
// operand of P V by packing pairs of accumulators to 16 bits, without shared memory.
// The output O / l is written once at the end, staged through the warp's own (now
// unused) Q rows of shared memory so the global stores are 16-byte vectors.
//
// CTAs run longest first: the linear block index walks query blocks from the last
// (which reads the most tiles) to the first, and the query heads of one block (heads
// of a GQA group sharing K/V tiles in L2) are neighbours.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/core/ptx.cuh"
#include "cuda/kv/prefill_launch.h"

namespace zc::cuda::detail {
namespace {

constexpr int kKeys = 64;  // keys per K/V tile

using namespace ptx;  // cp.async, ldmatrix, mma, ex2, quad reductions (cuda/core/ptx.cuh)

// ---- the kernel --------------------------------------------------------------------

// ROWS rows of D elements starting at token row0 of a [.., tokens, heads, d] tensor
// (src points at token 0 of the head) into shared memory with row pitch D + 8; rows
// at or past `tokens` are zero-filled (their V rows then meet P = 0, never NaN).
template <int D, int NT, int ROWS, typename T>
__device__ __forceinline__ void load_tile(uint32_t dst, const T* src, size_t stride, int row0,
                                          int tokens, int tid) {
  constexpr int kChunks = D / 8;  // 16-byte vectors per row
  static_assert((ROWS * kChunks) % NT == 0, "tile vectors split evenly over threads");
#pragma unroll
  for (int it = 0; it < ROWS * kChunks / NT; ++it) {
    const int i = tid + it * NT;
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const int row = row0 + r;
    const bool ok = row < tokens;
    cp_async16(dst + static_cast<uint32_t>((r * (D + 8) + c) * 2),
               src + static_cast<size_t>(ok ? row : 0) * stride + c, ok);
  }
}

// Warp w owns RW = 16 MI rows (MI m16 tiles). MI = 1 keeps Q in registers for the
// whole CTA; MI = 2 (O alone is 128 registers at d = 128) re-reads Q fragments from
// shared memory per tile but shares every K/V fragment between its two m-tiles, which
// halves the K/V shared-memory traffic per flop.
// The explicit minimum of 1 CTA per SM matters: without it ptxas capped the d = 64,
// 4-warp, 16-row kernel at 128 registers and spilled (166 with it; 240 for d = 128).
// The d = 128, 32-row default takes all 255 and spills 64 bytes (ptxas -v, sm_90) yet
// measured fastest.
template <typename T, int D, int WARPS, int MI>
__global__ void __launch_bounds__(WARPS * 32, 1) prefill_mma_kernel(const PrefillParams p) {
  constexpr int NT = WARPS * 32, RW = 16 * MI, BM = WARPS * RW, LD = D + 8;
  constexpr uint32_t kTileBytes = kKeys * LD * 2;
  static_assert(kKeys % RW == 0, "every row of a warp sees a key of each tile the warp processes");
  extern __shared__ __align__(128) unsigned char smem[];
  T* const q_s = reinterpret_cast<T*>(smem);
  const uint32_t q_base = smem_addr(smem);
  const uint32_t kv_base = q_base + BM * LD * 2;  // stage s: K at + 2s tiles, V after it

  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int L = p.tokens;
  const int n_qb = (L + BM - 1) / BM, heads_b = p.n_heads * p.batch;
  const int idx = static_cast<int>(blockIdx.x);
  const int qb = n_qb - 1 - idx / heads_b;  // longest first
  const int b = (idx % heads_b) / p.n_heads, head = idx % p.n_heads;
  const int kvh = head / (p.n_heads / p.n_kv);
  const size_t q_stride = static_cast<size_t>(p.n_heads) * D;
  const size_t kv_stride = static_cast<size_t>(p.n_kv) * D;
  const T* q = static_cast<const T*>(p.q) + static_cast<size_t>(b) * L * q_stride + static_cast<size_t>(head) * D;
  const T* k = static_cast<const T*>(p.k) + static_cast<size_t>(b) * L * kv_stride + static_cast<size_t>(kvh) * D;
  const T* v = static_cast<const T*>(p.v) + static_cast<size_t>(b) * L * kv_stride + static_cast<size_t>(kvh) * D;
  const int q0 = qb * BM;
  const int n_tiles = (min(q0 + BM, L) + kKeys - 1) / kKeys;

  load_tile<D, NT, BM>(q_base, q, q_stride, q0, L, tid);
  load_tile<D, NT, kKeys>(kv_base, k, kv_stride, 0, L, tid);
  load_tile<D, NT, kKeys>(kv_base + kTileBytes, v, kv_stride, 0, L, tid);
  cp_async_commit();

  // Fragment coordinates: lane (g, t) holds rows g and g + 8 of each m-tile, columns 2t
  // and 2t + 1 of every 8-column block.
  const int g = lane / 4, t = lane % 4;
  const int row_w = q0 + warp * RW;
  const int warp_first_lim = min(row_w, L - 1), warp_last_lim = min(row_w + RW - 1, L - 1);
  const float sl = p.scale_log2;

  // ldmatrix row addresses (bytes): Q as A (matrices: rows 0-7 / 8-15 x columns 0-7 /
  // 8-15), K as the column-major B of Q K^T (keys 0-7 / 8-15 x columns 0-7 / 8-15), V
  // transposed as the B of P V.
  const uint32_t q_lane = q_base + static_cast<uint32_t>(((warp * RW + lane % 16) * LD + (lane / 16) * 8) * 2);
  const uint32_t k_off = static_cast<uint32_t>(((lane % 8 + 8 * (lane / 16)) * LD + 8 * ((lane / 8) % 2)) * 2);
  const uint32_t v_off = static_cast<uint32_t>(((lane % 8 + 8 * ((lane / 8) % 2)) * LD + 8 * (lane / 16)) * 2);

  uint32_t qf[MI == 1 ? D / 16 : 1][4];  // MI = 1: all of the warp's Q, loaded once
  float o[MI][D / 8][4];
  float m[MI][2], l[MI][2];  // running max (log2 units) per row; l per thread
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
    for (int n = 0; n < D / 8; ++n) o[mi][n][0] = o[mi][n][1] = o[mi][n][2] = o[mi][n][3] = 0.0f;
    m[mi][0] = m[mi][1] = -INFINITY;
    l[mi][0] = l[mi][1] = 0.0f;
  }

  for (int j = 0; j < n_tiles; ++j) {
    if (j + 1 < n_tiles) {  // prefetch tile j + 1 into the other stage
      const uint32_t st = kv_base + static_cast<uint32_t>((j + 1) & 1) * 2 * kTileBytes;
      load_tile<D, NT, kKeys>(st, k, kv_stride, (j + 1) * kKeys, L, tid);
      load_tile<D, NT, kKeys>(st + kTileBytes, v, kv_stride, (j + 1) * kKeys, L, tid);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // tile j (and Q) visible to all warps
    if constexpr (MI == 1) {
      if (j == 0) {
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) ldsm_x4(q_lane + kk * 32, qf[kk]);
      }
    }
    const int k0 = j * kKeys;
    if (k0 <= warp_last_lim) {  // warp-uniform: skip tiles wholly above this warp's rows
      const uint32_t ks = kv_base + static_cast<uint32_t>(j & 1) * 2 * kTileBytes + k_off;
      const uint32_t vs = kv_base + static_cast<uint32_t>(j & 1) * 2 * kTileBytes + kTileBytes + v_off;

      // S = Q K^T: per m-tile 8 blocks of 8 keys.
      float s[MI][kKeys / 8][4];
      tile_product<T, D, MI, kKeys>(s, qf, q_lane, ks);

      // Causal mask (and keys past the sequence), only where a key can exceed a row.
      if (k0 + kKeys - 1 > warp_first_lim) {
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
          // The last key rows g and g + 8 may see (causal, and inside the sequence),
          // relative to this thread's first key column k0 + 2t.
          mask_keys_after(s[mi], min(row_w + 16 * mi + g, L - 1) - k0 - 2 * t,
                          min(row_w + 16 * mi + g + 8, L - 1) - k0 - 2 * t);
        }
      }

      // Online softmax on the fragments (log2 units); h = 0: row g, h = 1: row g + 8.
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const float mn = fmaxf(m[mi][h], quad_max(fragment_row_max(s[mi], h)) * sl);
          // A row with no visible key yet keeps m = -inf; subtract 0 instead (P = 0).
          const float base = mn == -INFINITY ? 0.0f : mn;
          const float corr = ex2(m[mi][h] - base);
          m[mi][h] = mn;
          float sum = 0.0f;
#pragma unroll
          for (int n = 0; n < kKeys / 8; ++n) {
            s[mi][n][2 * h] = ex2(fmaf(s[mi][n][2 * h], sl, -base));
            s[mi][n][2 * h + 1] = ex2(fmaf(s[mi][n][2 * h + 1], sl, -base));
            sum += s[mi][n][2 * h] + s[mi][n][2 * h + 1];
          }
          l[mi][h] = l[mi][h] * corr + sum;  // the quad's partial sums are added at the end
#pragma unroll
          for (int n = 0; n < D / 8; ++n) o[mi][n][2 * h] *= corr, o[mi][n][2 * h + 1] *= corr;
        }
      }

      // O += P V: the accumulators of key blocks 2kk and 2kk+1 are the A fragment.
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        uint32_t a[MI][4];
#pragma unroll
        for (int mi = 0; mi < MI; ++mi) {
          a[mi][0] = pack2<T>(s[mi][2 * kk][0], s[mi][2 * kk][1]);
          a[mi][1] = pack2<T>(s[mi][2 * kk][2], s[mi][2 * kk][3]);
          a[mi][2] = pack2<T>(s[mi][2 * kk + 1][0], s[mi][2 * kk + 1][1]);
          a[mi][3] = pack2<T>(s[mi][2 * kk + 1][2], s[mi][2 * kk + 1][3]);
        }
#pragma unroll
        for (int n2 = 0; n2 < D / 16; ++n2) {
          uint32_t r[4];
          ldsm_x4_trans(vs + static_cast<uint32_t>((kk * 16 * LD + n2 * 16) * 2), r);
#pragma unroll
          for (int mi = 0; mi < MI; ++mi) {
            mma<T>(o[mi][2 * n2], a[mi], r[0], r[1]);
            mma<T>(o[mi][2 * n2 + 1], a[mi], r[2], r[3]);
          }
        }
      }
    }
    __syncthreads();  // every warp is done with stage j & 1 (and its Q rows) before reuse
  }

  // out = O / l in the input type. Every row saw key 0, so l > 0. Staged through the
  // warp's own Q rows (no other warp reads them) so the global stores are 16 bytes.
  T* const stage = q_s + warp * RW * LD;
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) {
    const float l0 = quad_sum(l[mi][0]), l1 = quad_sum(l[mi][1]);
    const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
    if (p.lse != nullptr) {  // each row's base-2 log-sum-exp (ZipCache's probe rows reuse it)
      const int r = row_w + 16 * mi + g + 8 * t;  // lane t = 0 row g, t = 1 row g + 8
      if (t < 2 && r < L) {
        p.lse[(static_cast<size_t>(b) * L + r) * p.n_heads + head] = t == 0 ? m[mi][0] + log2f(l0) : m[mi][1] + log2f(l1);
      }
    }
    T* const st = stage + 16 * mi * LD;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      *reinterpret_cast<uint32_t*>(st + g * LD + n * 8 + 2 * t) = pack2<T>(o[mi][n][0] * inv0, o[mi][n][1] * inv0);
      *reinterpret_cast<uint32_t*>(st + (g + 8) * LD + n * 8 + 2 * t) =
          pack2<T>(o[mi][n][2] * inv1, o[mi][n][3] * inv1);
    }
  }
  __syncwarp();
  T* const out = static_cast<T*>(p.out) + static_cast<size_t>(b) * L * q_stride + static_cast<size_t>(head) * D;
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int it = 0; it < RW * kChunks / 32; ++it) {
    const int i = lane + it * 32;
    const int r = i / kChunks, c = (i % kChunks) * 8;
    if (row_w + r < L) {
      *reinterpret_cast<uint4*>(out + static_cast<size_t>(row_w + r) * q_stride + c) =
          *reinterpret_cast<const uint4*>(stage + r * LD + c);
    }
  }
}

template <typename T, int D, int WARPS, int MI>
cudaError_t launch_typed(const PrefillParams& p, cudaStream_t s) {
  constexpr int BM = WARPS * 16 * MI;
  constexpr size_t smem = static_cast<size_t>(BM + 4 * kKeys) * (D + 8) * 2;  // Q + 2 x (K, V)
  if constexpr (smem > 48 * 1024) {
    // Once per instantiation (thread-safe static initialization).
    static const cudaError_t raised = cudaFuncSetAttribute(
        prefill_mma_kernel<T, D, WARPS, MI>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (raised != cudaSuccess) return raised;
  }
  const long long blocks =
      static_cast<long long>((p.tokens + BM - 1) / BM) * p.n_heads * static_cast<long long>(p.batch);
  prefill_mma_kernel<T, D, WARPS, MI><<<static_cast<unsigned>(blocks), WARPS * 32, smem, s>>>(p);
  return cudaGetLastError();
}

template <typename T, int D>
cudaError_t launch_variant(const PrefillParams& p, cudaStream_t s) {
  const int warps = p.warps == 0 ? kPrefillDefaultWarps : p.warps;
  const int rows = p.warp_rows == 0 ? kPrefillDefaultWarpRows : p.warp_rows;
  if (warps == 4 && rows == 16) return launch_typed<T, D, 4, 1>(p, s);
  if (warps == 8 && rows == 16) return launch_typed<T, D, 8, 1>(p, s);
  if (warps == 4 && rows == 32) return launch_typed<T, D, 4, 2>(p, s);
  return cudaErrorInvalidValue;
}

template <typename T>
cudaError_t launch_dim(const PrefillParams& p, cudaStream_t s) {
  if (p.d == 64) return launch_variant<T, 64>(p, s);
  if (p.d == 128) return launch_variant<T, 128>(p, s);
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t launch_prefill(const PrefillParams& p, bool bf16, cudaStream_t s) {
  return bf16 ? launch_dim<__nv_bfloat16>(p, s) : launch_dim<__half>(p, s);
}

}  // namespace zc::cuda::detail
