// Tensor-core split kernel of decode attention (issue 4; SPEC.md section 4), included
// by decode_attention.cu. Same inputs and partial outputs as the SIMT split kernel
// there (part_o / part_ml, merged by decode_merge_kernel); the page math (q.k and p.v
// on mma.sync) is in decode_mma_page.cuh, the query fold in decode_mma_fold.cuh, the
// stages' copies in decode_mma_stage.cuh.
//
// Each warp walks its own pages of the CTA's range (page warp, warp + 4, ...) with its
// own online softmax; the four warps are combined at the end through shared memory.
//
// Memory pipeline. A quantized page is small (2 bits, d = 128: 2.2 KB with its
// parameters) and its work is short, so a warp that loads a page and then computes it
// waits a full memory latency per page: the first version of this kernel did, and
// reached only ~10% of the copy bandwidth. Here every warp copies its pages STAGES - 1
// ahead into its own ring of shared-memory stages with cp.async (keys, values and value
// parameters; 16-byte copies, no registers held), so each SM keeps tens of KB in flight
// while it computes. fp16 pages (ZipCache's window, a few per list) are too big for a
// stage and are read from the pool directly; a warp takes them first (its pages are
// walked from the end of the list). Descriptors come 32 at a time into a 64-entry ring
// per warp, one batch ahead of the copies.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "cuda/core/launch.cuh"
#include "cuda/core/ptx.cuh"
#include "cuda/kv/decode_launch.h"
#include "cuda/kv/decode_mma_finish.cuh"
#include "cuda/kv/decode_mma_fold.cuh"
#include "cuda/kv/decode_mma_page.cuh"
#include "cuda/kv/decode_mma_stage.cuh"
#include "cuda/kv/decode_trace.cuh"
#include "cuda/kv/kv_page.h"

namespace zc::cuda::detail {
namespace mma {

// One page: scores of the warp's g heads (log2 units), the online softmax update of
// (m_run, l_part, o), and p.v. Specialized per (key bits, value bits, ValueKind)
// so that token order, code unpacking and parameter reads are fixed at compile time,
// and called with sources the compiler sees in shared memory (staged pages) or global
// memory (fp16 pages), so that loads need no generic addressing.
// score_out: when not null, head g's scores of the page's tokens are also stored there
// (window tracking: DecodeParams::window).
template <int D, int KBITS, int VBITS, int VK, bool SPLIT, bool UNITS = true, class Lows>
__device__ __forceinline__ void page_pass(const PageSrc& src, const KvPage& pg, const uint4* frag,
                                          float inv_up, float bias, int lane, float& m_run,
                                          float& l_part, float (&o)[D / 16][4], Lows& lows,
                                          float* score_out = nullptr) {
  const int t4 = lane & 3;
  // ---- q.k: scores of head g for tokens token_of(vbits, t4, nt, i) ----
  float c[4][4];
#pragma unroll
  for (int nt = 0; nt < 4; ++nt) c[nt][0] = c[nt][1] = c[nt][2] = c[nt][3] = 0.0f;
  page_keys<D, KBITS, VBITS>(src, frag, lane, c);
  // Raw scores r = hi + residual rows; the score in log2 units is r inv_up + bias
  // (inv_up > 0), so the page's maximum is taken on r and converted once, and each
  // probability is one FFMA and an ex2 from r: ex2(r inv_up + (bias - m_run)).
  float r[4][2];
  // Only the last page of a block or window is partly filled: full pages skip the mask.
  const int ntok = pg.ntok;
#pragma unroll
  for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
    for (int i = 0; i < 2; ++i) r[nt][i] = c[nt][i] + c[nt][2 + i];
  }
  if (ntok < kPageTokens) {
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        if (token_of<VBITS>(t4, nt, i) >= ntok) r[nt][i] = -INFINITY;
      }
    }
  }
  if (score_out != nullptr) {
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int t = token_of<VBITS>(t4, nt, i);
        if (t < ntok) score_out[t] = fmaf(r[nt][i], inv_up, bias);
      }
    }
  }
  float rmax = -INFINITY;
#pragma unroll
  for (int nt = 0; nt < 4; ++nt) rmax = fmaxf(rmax, fmaxf(r[nt][0], r[nt][1]));
  rmax = fmaxf(rmax, __shfl_xor_sync(0xffffffffu, rmax, 1));
  rmax = fmaxf(rmax, __shfl_xor_sync(0xffffffffu, rmax, 2));
  const float mt = fmaf(rmax, inv_up, bias);  // every page has a valid token of head g
  // ---- online softmax: rescale only when some head's max grows ----
  if (__any_sync(0xffffffffu, mt > m_run)) {
    const float m_new = fmaxf(m_run, mt);
    const float corr = m_run == -INFINITY ? 0.0f : ptx::ex2(m_run - m_new);
    m_run = m_new;
    l_part *= corr;
    const float c0 = __shfl_sync(0xffffffffu, corr, 8 * t4);
    const float c1 = __shfl_sync(0xffffffffu, corr, 8 * t4 + 4);
#pragma unroll
    for (int m = 0; m < D / 16; ++m) o[m][0] *= c0, o[m][1] *= c1, o[m][2] *= c0, o[m][3] *= c1;
    lows.scale(corr);
  }
  const float shift = bias - m_run;
  float pr[4][2];
#pragma unroll
  for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      pr[nt][i] = ptx::ex2(fmaf(r[nt][i], inv_up, shift));  // -inf (padding) -> 0
      l_part += pr[nt][i];
    }
  }
  // ---- p.v ----
  page_values_any<D, VBITS, VK, SPLIT, UNITS, Lows>(src, pg, pr, lane, o, lows);
}

// cur_vs of pages without channel scales (fp16, tokenwise, groupwise values).
constexpr uint32_t kUnscaled = 0xffffffffu;

// Pages in flight per warp: two stages (one page computed while the next one lands);
// three stages measured slower on an H100 (fewer CTAs per SM).
constexpr int kStages = 2;

// Descriptor ring per warp: pages [k, k + 32) arrive when page k (k % 32 == 0) is
// issued, into half (k / 32) % 2.
constexpr int kDescRing = 64, kDescBatch = kDescRing / 2;

// CTAs per SM the d <= 128 builds are made for (registers up to 168 per thread); d = 256
// keeps one CTA's registers. Four CTAs (128 registers, and the shared memory cut to
// ~56 KB per CTA with a 32-entry descriptor ring) measured 8% slower at 574 sequences
// on an H100 than three: the kernel needs its registers for independent work more
// than it needs more warps (docs/benchmarks.md, session 11).
template <int D>
constexpr int kMinCtas = D >= 256 ? 1 : 3;

// SPLIT's o holds heads 0-3's hi parts in columns 0-3 (lanes t4 = 0, 1) and their
// residuals' in columns 4-7 (lanes t4 = 2, 3, i.e. lane ^ 2): their sum, in the lanes
// of columns 0-3, before o is read (the columns 4-7 are not read after).
template <int D, bool SPLIT>
__device__ __forceinline__ void fold_split_columns(float (&o)[D / 16][4]) {
  if constexpr (SPLIT) {
#pragma unroll
    for (int m = 0; m < D / 16; ++m) {
#pragma unroll
      for (int i = 0; i < 4; ++i) o[m][i] += __shfl_xor_sync(0xffffffffu, o[m][i], 2);
    }
  }
}

// Fragment halves of a warp's folded query: lanes 16-31 (rows / heads 4-7) need their
// own only when the group has more than 4 heads; otherwise they read lanes 0-15's
// (heads duplicated into rows that nothing reads) and the fragments take half the space.
__host__ __device__ inline int frag_halves(int g) { return g > 4 ? 2 : 1; }

// BLOCK_SUMS: the cache holds quantized pages (p.quantized), whose value sums go through
// flush() below; a cache of fp16 pages only keeps the plain per-page accumulation (the
// block-sum form measured 7-15% slower there: 1165 vs 1091 us at batch 256).
// SPLIT: the group has at most 4 heads (frag_halves(g) == 1) and p.v takes one MMA per
// K-tile (page_values).
// GROUPS: the cache's groupwise values have several parameter groups (p.groups > 1:
// KIVI), whose sums of p lo the kernel keeps apart (LowSums).
template <int D, bool BLOCK_SUMS, bool SPLIT, bool GROUPS>
__global__ void __launch_bounds__(kThreads, kMinCtas<D>) decode_mma_kernel(const DecodeParams p) {
  ZC_TRACE_START();  // decode_trace.cuh: phase timestamps in -DZC_DECODE_TRACE=ON builds only
  wait_for_prior_grids();  // PDL (core/launch.cuh): q and the pages come from the kernels before
  constexpr int STAGES = kStages;
  const int G = p.g, H = SPLIT ? 1 : 2;
  extern __shared__ __align__(16) unsigned char smem[];
  float* q_s = reinterpret_cast<float*>(smem);                                  // [G][D]
  uint4* frag_all = reinterpret_cast<uint4*>(q_s + ((G * D + 3) & ~3));        // [warp][H][D/16][16]
  float* wstat = reinterpret_cast<float*>(frag_all + kWarps * H * D);           // [warp][8][2]
  FoldTable* ft = reinterpret_cast<FoldTable*>(wstat + kWarps * kHeads * 2);
  KvPage* desc_all = reinterpret_cast<KvPage*>(ft + 1);                         // [warp][kDescRing]
  uint4* stage_all = reinterpret_cast<uint4*>(desc_all + kWarps * kDescRing);  // [warp][STAGES][sv]
  // Stages only for caches with codes: a cache of fp16 pages stages nothing, and the
  // shared memory it does not take stays L1 for its pages' loads.
  // Key parameters through the stages (kStagedKp): in GROUPS kernels only (KIVI's caches).
  const bool stage_kp = GROUPS && p.stage_kp;
  const int sv = BLOCK_SUMS ? stage_vectors(D, p.groups, stage_kp) : 0;
  const int kp_vector = GROUPS ? staged_kp_vector(D, p.groups) : 0;  // in a stage
  float* done_all = reinterpret_cast<float*>(stage_all + kWarps * STAGES * sv);  // [warp][g][D] (BLOCK_SUMS)
  // LowSums::grp of caches with groupwise values in several groups (p.groups > 1).
  const int n_grp = GROUPS ? p.groups : 0;
  float* grp_all = done_all + (BLOCK_SUMS ? kWarps * G * D : 0);  // [warp][n_grp][32]

  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int g = lane >> 2, t4 = lane & 3;
  // One CTA per whole pair first, then `splits` per split pair (DecodeParams::whole_pairs).
  const int cta = static_cast<int>(blockIdx.x);
  const bool whole = cta < p.whole_pairs;
  const int pair = whole ? cta : p.whole_pairs + (cta - p.whole_pairs) / p.splits;
  const int split = whole ? 0 : (cta - p.whole_pairs) % p.splits;
  const int b = pair / p.n_kv, h = pair % p.n_kv;
  const int list0 = p.starts[pair], n_pages = p.ends[pair] - list0;
  const int p_begin = split * p.pages_per_split;
  const int p_end = whole ? n_pages : min(n_pages, p_begin + p.pages_per_split);

  // The warp's pages are p_begin + warp + kWarps * j, j < n_mine, walked from the last
  // (k = 0: j = n_mine - 1): a list ends with its fp16 window pages, which are read from
  // the pool without a stage, so taken first their latency overlaps the first copies
  // instead of standing alone at the end while the CTA's other warps wait at its barrier.
  KvPage* desc = desc_all + warp * kDescRing;
  uint4* stages = stage_all + size_t(warp) * STAGES * sv;
  const int n_mine = p_begin + warp < p_end ? (p_end - p_begin - warp + kWarps - 1) / kWarps : 0;
  const KvPage* my_pages = p.pages + list0 + p_begin + warp;
  const auto page_of = [&](int k) { return kWarps * (n_mine - 1 - k); };  // list-relative to my_pages
  // Page k's copies into stage k % STAGES; descriptors of pages [k, k + 32) arrive when
  // page k (k % 32 == 0) is issued, into half (k / 32) % 2 of the ring, whose previous
  // batch was computed long before (the copies run at most STAGES - 1 < 32 ahead).
  static_assert(kDescBatch == 32, "one descriptor per lane");
  auto issue = [&](int k) {
    if (k % kDescBatch == 0) {
      __syncwarp();
      if (k + lane < n_mine) {
        KvPage d = my_pages[page_of(k + lane)];
        d.scratch = page_kind(d);
        d.allocated = stage_plan<D>(d, stage_kp);
        // The per-page tests below compare one field each: kp names the key fold (fp16
        // keys have none: kFp16Fold), vs the channel scales flush() applies (kUnscaled
        // unless a staged CSTQ page).
        if (d.kbits == 16) d.kp = kFp16Fold;
        if (d.scratch == kUnstaged || d.values != PageValues::Cstq) d.vs = kUnscaled;
        desc[(k + lane) % kDescRing] = d;
      }
      __syncwarp();
    }
    const KvPage pg = desc[k % kDescRing];
    if (pg.scratch != kUnstaged) stage_page<D, GROUPS>(p.pool, pg, stages + (k % STAGES) * sv, kp_vector, lane);
  };
  // The query's loads go out before the first descriptors' (issue waits for those), so
  // the CTA's start pays one memory latency for both, not two in a row.
  constexpr int kQPerThread = kHeads * D / kThreads;
  float qv[kQPerThread];
#pragma unroll
  for (int r = 0; r < kQPerThread; ++r) {
    const int i = tid + r * kThreads, j = i / D, c = i % D;
    qv[r] = j < G ? p.q[size_t(b) * p.q_stride + size_t(h * G + j) * D + c] : 0.0f;
  }
#pragma unroll
  for (int k = 0; k < STAGES - 1; ++k) {
    if (k < n_mine) issue(k);
    ptx::cp_async_commit();
  }
#pragma unroll
  for (int r = 0; r < kQPerThread; ++r) {
    if (tid + r * kThreads < G * D) q_s[tid + r * kThreads] = qv[r] * p.scale_log2;  // fold_query takes q scale log2(e)
  }
  if (tid == 0) ft->count = 0;
  __syncthreads();
  ZC_TRACE_CLOCK(kTracePrologue);
  ZC_TRACE_VALUE(kTracePages, n_mine);

  // The lane's fragment slot (frag_halves): with one half, lanes 16-31 read lanes
  // 0-15's and fold (without storing) the same heads, so that their rows' scores, maxima
  // and rescale votes are lanes 0-15's and never reach a head of the group.
  const auto frag_slot = [&](int j) { return frag_all + (j * H + (lane >> 4) % H) * D + (lane & 15); };
  const uint4* frag = frag_slot(warp);
  const bool frag_writer = H == 2 || lane < 16;
  const float* qhead = q_s + min(H == 2 ? g : g & 3, G - 1) * D;
  // One query fold, into slot j, for key blocks of `bits` bits with parameters at kp
  // (16-byte units from the pool base) or, staged, at kps.
  const auto fold_into = [&](int j, uint32_t bits, uint32_t kp, float* bias_out, const uint4* kps = nullptr) {
    const uint4* params = kps != nullptr ? kps : reinterpret_cast<const uint4*>(p.pool) + kp;
    if (bits == 2) return fold_query<D, 2, SPLIT>(qhead, frag_slot(j), frag_writer, params, lane, bias_out);
    if (bits == 4) return fold_query<D, 4, SPLIT>(qhead, frag_slot(j), frag_writer, params, lane, bias_out);
    return fold_query<D, 16, SPLIT>(qhead, frag_slot(j), frag_writer, params, lane, bias_out);
  };
  // ---- the fold table (FoldTable): the range's distinct key blocks, each folded once ----
  for (int i = tid; i < p_end - p_begin; i += kThreads) {
    const KvPage* pp = p.pages + list0 + p_begin + i;
    const uint32_t tag = fold_tag(pp);
    if (i == 0 || fold_tag(pp - 1) != tag) {
      const int slot = atomicAdd(&ft->count, 1);
      if (slot < kWarps) ft->kp[slot] = tag, ft->bits[slot] = __ldg(&pp->kbits);
    }
  }
  __syncthreads();
  const int n_folds = ft->count;
  const bool fold_table = n_folds <= kWarps;
  if (fold_table && warp < n_folds) {
    float bias_w = 0.0f;
    const float inv = fold_into(warp, ft->bits[warp], ft->kp[warp], &bias_w);
    ft->bias[warp][lane] = bias_w;
    if (lane == 0) ft->inv_up[warp] = inv;
  }
  if (fold_table) __syncthreads();  // (uniform over the CTA)
  // o sums the pages of the current value block (CSTQ scales not applied, sum p lo kept
  // apart in lows, the lane's share of head g's; o in units of 2^-kValueUnitLog2 when
  // BLOCK_SUMS, decode_mma_page.cuh); flush() adds s_c (o 2^18 + lo) into the
  // warp's finished sums `done` in shared memory when the block changes. done is kept at
  // the running max of the last flush (mf0 / mf1) and rescaled only then, so the
  // per-page work of a CSTQ block is the mma alone (it was an add and a multiply-add
  // per output element per page).
  float o[D / 16][4];
#pragma unroll
  for (int m = 0; m < D / 16; ++m) o[m][0] = o[m][1] = o[m][2] = o[m][3] = 0.0f;
  float m_run = -INFINITY, l_part = 0.0f, bias = 0.0f, inv_up = 1.0f;
  float mf0 = -INFINITY, mf1 = -INFINITY;
  float* done = done_all + warp * G * D;
  LowSums<GROUPS> lows;
  lows.grp = grp_all + warp * n_grp * 32 + lane;
  lows.n_grp = n_grp;
  if constexpr (BLOCK_SUMS) {
    for (int i = lane; i < G * D; i += 32) done[i] = 0.0f;
    for (int j = 0; j < n_grp; ++j) lows.grp[32 * j] = 0.0f;  // the lane's own slots
    __syncwarp();
  }
  // The lane's key offsets in a stage (key_lane_bytes), by key bits: lane constants
  // that the page loop recomputed per page (~10 instructions) when worked out there.
  static_assert(token_of<2>(1, 2, 1) == token_of<4>(1, 2, 1), "staged pages share one token order");
  const int key_lane2 = key_lane_bytes<D, 2, 2>(lane, true), key_lane4 = key_lane_bytes<D, 4, 4>(lane, true);
  uint32_t cur_kp = kNoFold, cur_vs = kUnscaled;
  // sum p lo: head g's over its four lanes, then heads 2 t4 / 2 t4 + 1 for o's columns
  // (with SPLIT, lanes t4 >= 2 hold the residual columns, which take no lows).
  const auto head_lows = [&](float x, float& l0, float& l1) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    x += __shfl_xor_sync(0xffffffffu, x, 2);
    l0 = __shfl_sync(0xffffffffu, x, 8 * t4), l1 = __shfl_sync(0xffffffffu, x, 8 * t4 + 4);
    if (SPLIT && t4 >= 2) l0 = l1 = 0.0f;
  };
  auto flush = [&] {
    constexpr float kUnit = 1.0f / kValueUnit;  // o's units (page_values_any)
    fold_split_columns<D, SPLIT>(o);
    const float mr0 = __shfl_sync(0xffffffffu, m_run, 8 * t4), mr1 = __shfl_sync(0xffffffffu, m_run, 8 * t4 + 4);
    const float f0 = mf0 == -INFINITY ? 0.0f : ptx::ex2(mf0 - mr0), f1 = mf1 == -INFINITY ? 0.0f : ptx::ex2(mf1 - mr1);
    const __half2* vs = reinterpret_cast<const __half2*>(reinterpret_cast<const uint4*>(p.pool) + cur_vs);
    const int h0 = 2 * t4, h1 = 2 * t4 + 1;
    float lo0, lo1;
    head_lows(lows.tok, lo0, lo1);
#pragma unroll
    for (int m = 0; m < D / 16; ++m) {
      const int ch = 2 * (8 * m + g);
      const float2 sc = cur_vs == kUnscaled ? make_float2(1.0f, 1.0f) : __half22float2(vs[8 * m + g]);
      if (h0 < G) {
        done[h0 * D + ch] = fmaf(done[h0 * D + ch], f0, sc.x * fmaf(o[m][0], kUnit, lo0));
        done[h0 * D + ch + 1] = fmaf(done[h0 * D + ch + 1], f0, sc.y * fmaf(o[m][2], kUnit, lo0));
      }
      if (h1 < G) {
        done[h1 * D + ch] = fmaf(done[h1 * D + ch], f1, sc.x * fmaf(o[m][1], kUnit, lo1));
        done[h1 * D + ch + 1] = fmaf(done[h1 * D + ch + 1], f1, sc.y * fmaf(o[m][3], kUnit, lo1));
      }
      o[m][0] = o[m][1] = o[m][2] = o[m][3] = 0.0f;
    }
    lows.tok = 0.0f, mf0 = mr0, mf1 = mr1;
  };

  for (int k = 0; k < n_mine; ++k) {
    if (k + STAGES - 1 < n_mine) issue(k + STAGES - 1);
    ptx::cp_async_commit();  // possibly empty: keeps one group per page
    ptx::cp_async_wait<STAGES - 1>();
    __syncwarp();  // page k's copies by every lane are visible to the warp
    ZC_TRACE_CLOCK_IF(k == 0, kTracePage0Landed);
    const KvPage pg = desc[k % kDescRing];
    if (pg.kp != cur_kp) {  // a block's keys all have its bits; fp16 keys: kFp16Fold
      if (fold_table) {  // the block's slot (every block of the range has one)
        int j = 0;
        while (j + 1 < n_folds && ft->kp[j] != pg.kp) ++j;
        frag = frag_slot(j);
        bias = ft->bias[j][lane];
        inv_up = ft->inv_up[j];
      } else {
        const bool staged_kp = GROUPS && (pg.allocated & kStagedKp);  // staged pages only (stage_plan)
        inv_up = fold_into(warp, pg.kbits, pg.kp, &bias, staged_kp ? stages + (k % STAGES) * sv + kp_vector : nullptr);
      }
      cur_kp = pg.kp;
    }
    ZC_TRACE_CLOCK_IF(k == 0, kTracePage0Folded);
    if constexpr (BLOCK_SUMS) {
      if (pg.vs != cur_vs) {  // kUnscaled unless a staged CSTQ page (issue)
        flush();
        cur_vs = pg.vs;
      }
    }
    if (!BLOCK_SUMS || pg.scratch == kUnstaged) {  // without BLOCK_SUMS every page is fp16 (p.quantized)
      // Window tracking: head g's scores of a window page (fp16) are kept for the merge.
      float* score_out = window_score_slots(p, pair, p_begin + warp + page_of(k));
      if (score_out != nullptr) score_out = g < G ? score_out + g * p.win_stride : nullptr;
      page_pass<D, 16, 16, kPlainValues, SPLIT, BLOCK_SUMS>(pool_src(p.pool, pg), pg, frag, inv_up, bias, lane, m_run, l_part, o,
                                                lows, score_out);
    } else {
      const uint4* st = stages + (k % STAGES) * sv;
      const PageSrc src2 = staged_src(st, D, key_lane2), src4 = staged_src(st, D, key_lane4);
      switch (pg.scratch) {
        case 0: page_pass<D, 2, 2, kPlainValues, SPLIT>(src2, pg, frag, inv_up, bias, lane, m_run, l_part, o, lows); break;
        case 1: page_pass<D, 2, 2, kCstqValues, SPLIT>(src2, pg, frag, inv_up, bias, lane, m_run, l_part, o, lows); break;
        case 2: page_pass<D, 2, 2, kGroupedValues, SPLIT>(src2, pg, frag, inv_up, bias, lane, m_run, l_part, o, lows); break;
        case 3: page_pass<D, 2, 4, kPlainValues, SPLIT>(src2, pg, frag, inv_up, bias, lane, m_run, l_part, o, lows); break;
        case 4: page_pass<D, 2, 4, kCstqValues, SPLIT>(src2, pg, frag, inv_up, bias, lane, m_run, l_part, o, lows); break;
        case 5: page_pass<D, 2, 4, kGroupedValues, SPLIT>(src2, pg, frag, inv_up, bias, lane, m_run, l_part, o, lows); break;
        case 6: page_pass<D, 4, 2, kPlainValues, SPLIT>(src4, pg, frag, inv_up, bias, lane, m_run, l_part, o, lows); break;
        case 7: page_pass<D, 4, 2, kCstqValues, SPLIT>(src4, pg, frag, inv_up, bias, lane, m_run, l_part, o, lows); break;
        case 8: page_pass<D, 4, 2, kGroupedValues, SPLIT>(src4, pg, frag, inv_up, bias, lane, m_run, l_part, o, lows); break;
        case 9: page_pass<D, 4, 4, kPlainValues, SPLIT>(src4, pg, frag, inv_up, bias, lane, m_run, l_part, o, lows); break;
        case 10: page_pass<D, 4, 4, kCstqValues, SPLIT>(src4, pg, frag, inv_up, bias, lane, m_run, l_part, o, lows); break;
        default: page_pass<D, 4, 4, kGroupedValues, SPLIT>(src4, pg, frag, inv_up, bias, lane, m_run, l_part, o, lows); break;
      }
    }
    __syncwarp();  // the stage is refilled by the next iteration's issue
    ZC_TRACE_CLOCK_IF(k == 0, kTracePage0Done);
  }
  ptx::cp_async_wait<0>();  // no copy may land after the CTA's shared memory is reused
  ZC_TRACE_CLOCK(kTraceLoopDone);
  // The merge may launch once every CTA is this far (not earlier: merge CTAs resident
  // early would take the slots of split CTAs not yet started).
  allow_dependent_launch();
  // ---- combine the warps: (m, l) and the sums per warp, then one weighted sum ----
  l_part += __shfl_xor_sync(0xffffffffu, l_part, 1);
  l_part += __shfl_xor_sync(0xffffffffu, l_part, 2);
  if constexpr (BLOCK_SUMS) {
    flush();  // the last block: done now holds the warp's sums at m_run
    // Groupwise values in n_grp groups: group j's sums of p lo into its channels' sums
    // (M-tiles [j tiles, (j + 1) tiles); powers of two: gpu_cache.cpp). Once, here:
    // they follow m_run like o (LowSums::scale), so a block's flush need not take them,
    // and their pages carry no channel scales. (In flush they spilled registers.)
    const int tiles = GROUPS ? (D / 16) >> (__ffs(n_grp) - 1) : 0;
    const int h0 = 2 * t4, h1 = 2 * t4 + 1;
    for (int j = 0; GROUPS && j < n_grp; ++j) {
      float g0, g1;
      head_lows(lows.grp[32 * j], g0, g1);
      for (int m = j * tiles; m < (j + 1) * tiles; ++m) {
        const int ch = 2 * (8 * m + g);
        if (h0 < G) done[h0 * D + ch] += g0, done[h0 * D + ch + 1] += g0;
        if (h1 < G) done[h1 * D + ch] += g1, done[h1 * D + ch + 1] += g1;
      }
    }
  } else {
    __syncthreads();  // every warp is done with its fragments: their space takes the sums
    fold_split_columns<D, SPLIT>(o);
    done_all = reinterpret_cast<float*>(frag_all);
    done = done_all + warp * G * D;
    const int h0 = 2 * t4, h1 = 2 * t4 + 1;
#pragma unroll
    for (int m = 0; m < D / 16; ++m) {
      const int ch = 2 * (8 * m + g);
      if (h0 < G) done[h0 * D + ch] = o[m][0], done[h0 * D + ch + 1] = o[m][2];
      if (h1 < G) done[h1 * D + ch] = o[m][1], done[h1 * D + ch + 1] = o[m][3];
    }
  }
  if (t4 == 0) wstat[(warp * kHeads + g) * 2] = m_run, wstat[(warp * kHeads + g) * 2 + 1] = l_part;
  __syncthreads();
  ZC_TRACE_CLOCK(kTraceBarrier);
  finish_pair<D>(p, pair, split, G, tid, wstat, done_all);
  ZC_TRACE_END();
}

// The kernel's layout (decode_mma_kernel's pointers, in order) for group g.
inline size_t smem_bytes(int d, int g, int groups, bool stage_kp, int stages, bool block_sums) {
  return size_t((g * d + 3) & ~3) * 4 + size_t(kWarps) * frag_halves(g) * d * 16 + size_t(kWarps) * kHeads * 2 * 4 +
         sizeof(FoldTable) + size_t(kWarps) * kDescRing * sizeof(KvPage) + (block_sums ? size_t(kWarps) * stages * stage_vectors(d, groups, stage_kp) * 16 : 0) +
         (block_sums ? size_t(kWarps) * g * d * 4 : 0) + (block_sums && groups > 1 ? size_t(kWarps) * groups * 32 * 4 : 0);
}

// Raises the kernel's dynamic shared-memory limit to at least `smem` (never lowers it:
// a launch of a smaller configuration must not break a larger one's).
template <int D, bool BLOCK_SUMS, bool SPLIT, bool GROUPS>
cudaError_t allow_smem(size_t smem) {
  static size_t raised = 48 * 1024;  // the default dynamic limit
  if (smem <= raised) return cudaSuccess;
  const auto kernel = decode_mma_kernel<D, BLOCK_SUMS, SPLIT, GROUPS>;
  // (The carve-out is the driver's: forcing all of L1 into shared memory made the fp16
  // kernel, whose pages are read through L1, 4% slower at batch 256.)
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(smem));
  if (e == cudaSuccess) raised = smem;
  return e;
}

template <int D, bool BLOCK_SUMS, bool SPLIT, bool GROUPS>
cudaError_t launch_kernel(const DecodeParams& p, int pairs, cudaStream_t s) {
  const size_t smem = smem_bytes(D, p.g, p.groups, GROUPS && p.stage_kp, kStages, BLOCK_SUMS);
  if (const cudaError_t e = allow_smem<D, BLOCK_SUMS, SPLIT, GROUPS>(smem); e != cudaSuccess) return e;
  const auto ctas = static_cast<unsigned>(p.whole_pairs + (pairs - p.whole_pairs) * p.splits);
  return launch_pdl(PdlKernel::Split, decode_mma_kernel<D, BLOCK_SUMS, SPLIT, GROUPS>, ctas, kThreads, smem, s, p);
}

// CTAs per SM of the kernel for p (1 when the runtime cannot say).
template <int D, bool BLOCK_SUMS, bool SPLIT, bool GROUPS>
int resident_kernel(const DecodeParams& p) {
  int n = 0;
  const size_t smem = smem_bytes(D, p.g, p.groups, GROUPS && p.stage_kp, kStages, BLOCK_SUMS);
  if (allow_smem<D, BLOCK_SUMS, SPLIT, GROUPS>(smem) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, decode_mma_kernel<D, BLOCK_SUMS, SPLIT, GROUPS>, kThreads, smem) !=
          cudaSuccess) {
    (void)cudaGetLastError();
    return 1;
  }
  return n > 0 ? n : 1;
}

// f(D, BLOCK_SUMS, SPLIT, GROUPS) as std::integral_constants for the kernel
// configuration p runs (head_dim D; BLOCK_SUMS: the cache holds codes; SPLIT: groups of
// at most 4 heads; GROUPS: value parameters in several groups): the one place the
// runtime shape picks a build (C++17: the CUDA sources are built as such).
template <typename F>
auto with_kernel(const DecodeParams& p, F&& f) {
  const auto by_split = [&](auto d, auto sums, auto groups) {
    return frag_halves(p.g) == 1 ? f(d, sums, std::true_type{}, groups) : f(d, sums, std::false_type{}, groups);
  };
  const auto by_sums = [&](auto d) {
    if (!p.quantized) return by_split(d, std::false_type{}, std::false_type{});
    return p.groups > 1 ? by_split(d, std::true_type{}, std::true_type{})
                        : by_split(d, std::true_type{}, std::false_type{});
  };
  if (p.d == 64) return by_sums(std::integral_constant<int, 64>{});
  if (p.d == 128) return by_sums(std::integral_constant<int, 128>{});
  return by_sums(std::integral_constant<int, 256>{});
}

inline int resident_split(const DecodeParams& p) {
  return with_kernel(p, [&](auto d, auto sums, auto split, auto groups) {
    return resident_kernel<decltype(d)::value, decltype(sums)::value, decltype(split)::value, decltype(groups)::value>(p);
  });
}

// The tensor-core kernel serves every head_dim and GQA group of the SIMT one except
// value groups narrower than 16 channels (an M-tile would span two groups).
inline bool supported(const DecodeParams& p) { return p.g <= kHeads && p.groups <= p.d / 16; }

inline cudaError_t launch_split(const DecodeParams& p, int pairs, cudaStream_t s) {
  return with_kernel(p, [&](auto d, auto sums, auto split, auto groups) {
    return launch_kernel<decltype(d)::value, decltype(sums)::value, decltype(split)::value, decltype(groups)::value>(
        p, pairs, s);
  });
}

}  // namespace mma
}  // namespace zc::cuda::detail
