// The folded query of the tensor-core decode kernel (decode_mma.cuh; issue 4, SPEC.md
// section 4): the query of a warp's heads times each key block's steps, as the A
// fragments of the key MMAs (decode_mma_page.cuh, "Keys"), once per key block: per CTA
// where its pages come from at most four blocks (decode_mma.cuh, FoldTable), else per
// warp as it meets each block.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/kv/decode_mma_page.cuh"
#include "cuda/kv/kv_page.h"

namespace zc::cuda::detail {
namespace mma {

// kp in the ring's copy of a page with fp16 keys (one fold for all of them), and
// cur_kp before the first fold: neither is a block's kp (16-byte units below 2^32, and
// a block's 4d bytes of key parameters cannot start in the last 32 of 64 GiB).
constexpr uint32_t kFp16Fold = 0xfffffffeu, kNoFold = 0xffffffffu;

// The CTA's key blocks, each folded once (fold_query) for every warp. A CTA's pages
// come from a handful of key blocks in most caches (ZipCache: its salient and regular
// sets, the fp16 window, a few streamed blocks), and its four warps met them at about
// the same time, each folding the same block: four folds where one would do, ~250
// instructions each. When the CTA's range holds at most kWarps distinct blocks, warp j
// folds block j into fragment slot j before decode_mma.cuh's page loop and every warp reads the
// slot of its page's block (a table lookup where the fold was); otherwise (KIVI's
// one-page blocks) each warp folds into its own slot as it goes.
struct FoldTable {
  uint32_t kp[kWarps];    // the block's key parameters (its fold's tag; kFp16Fold for fp16 keys)
  uint32_t bits[kWarps];  // its key bits
  float inv_up[kWarps];   // fold_query's result
  int count, pad[3];      // distinct blocks in the CTA's range (slots used: min(count, kWarps))
  float bias[kWarps][32];  // fold_query's bias, per lane
};
static_assert(sizeof(FoldTable) % 16 == 0, "keeps the shared-memory layout's 16-byte alignment");

// The fold tag of a page: its key parameters, one tag for every fp16-key page.
__device__ __forceinline__ uint32_t fold_tag(const KvPage* pg) {
  return __ldg(&pg->kbits) == 16 ? kFp16Fold : __ldg(&pg->kp);
}

// Channel of key register r's half h (0: low, 1: high) for thread t4, which holds words
// [t4 WK, (t4 + 1) WK) of a token: register r = j RPW + a of word j holds channels
// CPW j + a and, in its high half, CPW j + a + CPW / 2 (one channel per half for fp16).
template <int D, int BITS>
__host__ __device__ constexpr int key_channel(int t4, int r, int h) {
  constexpr int WK = D * BITS / 128, CPW = 32 / BITS, RPW = BITS == 16 ? 1 : CPW / 2;
  return CPW * (t4 * WK + r / RPW) + r % RPW + h * (BITS == 16 ? 1 : CPW / 2);
}

// So (CPW WK = D / 4) thread t4's channels are the one run [t4 D / 4, (t4 + 1) D / 4),
// and register r's half h is slot key_channel(0, r, h) of that run: what fold_query
// reads its folds by.

// The code shift of the register behind slot l of a thread's run.
template <int BITS>
__host__ __device__ constexpr int slot_shift(int l) {
  return BITS == 16 ? 0 : code_shift<BITS>((l % (32 / BITS)) % (16 / BITS));
}

// Compile-time proof of both for every (t4, register, half).
template <int D, int BITS>
constexpr bool fold_slots_match() {
  for (int t4 = 0; t4 < 4; ++t4) {
    for (int r = 0; r < D / 8; ++r) {
      for (int h = 0; h < 2; ++h) {
        const int l = key_channel<D, BITS>(0, r, h);
        if (key_channel<D, BITS>(t4, r, h) != t4 * (D / 4) + l) return false;
        if (BITS != 16 && slot_shift<BITS>(l) != code_shift<BITS>(r % (16 / BITS))) return false;
      }
    }
  }
  return true;
}
static_assert(fold_slots_match<64, 2>() && fold_slots_match<128, 2>() && fold_slots_match<256, 2>() &&
              fold_slots_match<64, 4>() && fold_slots_match<128, 4>() && fold_slots_match<256, 4>() &&
              fold_slots_match<64, 16>() && fold_slots_match<128, 16>() && fold_slots_match<256, 16>());

// Whether the fragments kk < D / 32 take exactly the run's first D / 8 slots and
// fragment kk + D / 32 the slots of kk shifted by D / 8, with the same code shifts
// (fold_query's HALVES).
template <int D, int BITS>
__host__ __device__ constexpr bool fold_halves_split() {
  constexpr int CH = D / 4, K2 = D / 32;
  for (int kk = 0; kk < K2; ++kk) {
    for (int h = 0; h < 2; ++h) {
      for (int hh = 0; hh < 2; ++hh) {
        const int l = key_channel<D, BITS>(0, 2 * kk + h, hh), l2 = key_channel<D, BITS>(0, 2 * (kk + K2) + h, hh);
        if (l >= CH / 2 || l2 != l + CH / 2) return false;
        if (BITS != 16 && slot_shift<BITS>(l2) != slot_shift<BITS>(l)) return false;
      }
    }
  }
  return true;
}
static_assert(fold_halves_split<128, 2>() && fold_halves_split<128, 4>() && fold_halves_split<128, 16>() &&
                  fold_halves_split<256, 2>() && fold_halves_split<64, 4>() && !fold_halves_split<64, 2>(),
              "the splits the comment at fold_query names");

// The folded query of a warp as A fragments: frag[16 kk] = (hi, lo, hi, lo) of head g
// at the channels of the thread's key registers 2kk and 2kk + 1, each fq_c = q_c step_c
// scale log2(e) (q_c scale log2(e) for fp16 keys) times 2^-s, s = the bit offset of the
// channel's codes in its register (code_shift: the code registers hold code 2^(s - 24)),
// all times 2^E (E puts the largest q_c step_c of the warp near 2^14, away from fp16
// over- and underflow). Returns the factor from the MMA's sums to scores: 2^-E, times 2^24 for
// codes; bias (head g, log2 units) through *bias.
//
// The thread's D / 4 channels are one run, so their steps and lows arrive as D / 16
// 16-byte loads issued together: one memory latency per fold. Loading them per channel
// inside the loops (the first form) chained ~8 latencies and was a fifth of the stall
// samples at batch 8 (ncu), where every CTA folds once or twice for a few pages.
//
// frag is the lane's own slot (decode_mma.cuh, frag_halves): kk's fragment at
// frag[16 kk]. qhead is the query (times scale log2(e), as the kernel stores it) of the
// lane's head (head g, or the group's last head
// for rows g >= G, so that every row holds finite values); only `writer` lanes store
// (lanes 16-31 of a one-half layout read lanes 0-15's slots).
//
// HALVES (one fragment half, decode_mma.cuh's SPLIT): lanes L and L + 16 fold the same
// head into the same slot, so each takes half of it: lane half hb = L / 16 the
// fragments kk in [hb D / 32, (hb + 1) D / 32), whose channels are the run's slots
// [hb D / 8, (hb + 1) D / 8) wherever fold_halves_split says so (all but d = 64 with
// 2-bit keys, which folds whole). Both halves computing the whole fold was half of each
// fold's work wasted, ~2 of every 100 instructions at 574 sequences.
// params: the key block's parameters (lo[D], step[D] in fp16), in the pool or in the
// stage of a page that is its own key block (decode_mma_stage.cuh, kStagedKp); not read
// for fp16 keys.
template <int D, int BITS, bool HALVES>
__device__ float fold_query(const float* qhead, uint4* frag, bool writer, const uint4* params, int lane,
                            float* bias) {
  constexpr bool SPLITF = HALVES && fold_halves_split<D, BITS>();
  constexpr int CH = D / 4, NV = CH / 8, CHF = SPLITF ? CH / 2 : CH, NVF = SPLITF ? NV / 2 : NV;
  constexpr int KF = SPLITF ? D / 32 : D / 16;
  const int t4 = lane & 3, hb = SPLITF ? lane >> 4 : 0;
  const float* qrow = qhead + CH * t4 + CHF * hb;
  float f[CHF], acc = 0.0f;
  if constexpr (BITS == 16) {
#pragma unroll
    for (int l = 0; l < CHF; ++l) f[l] = qrow[l];
  } else {
    const uint4* lo4 = params + NV * t4 + NVF * hb;  // lows: [0, D)
    const uint4* st4 = lo4 + D / 8;                                                        // steps: [D, 2D)
    uint4 lov[NVF], stv[NVF];
#pragma unroll
    for (int i = 0; i < NVF; ++i) lov[i] = lo4[i], stv[i] = st4[i];
    const __half* lo = reinterpret_cast<const __half*>(lov);
    const __half* st = reinterpret_cast<const __half*>(stv);
#pragma unroll
    for (int l = 0; l < CHF; ++l) {  // (the code shifts 2^-s come with 2^E below)
      f[l] = qrow[l] * __half2float(st[l]);
      acc = fmaf(qrow[l], __half2float(lo[l]), acc);
    }
  }
  float amax = 0.0f;
#pragma unroll
  for (int l = 0; l < CHF; ++l) amax = fmaxf(amax, fabsf(f[l]));
  for (int o = 16; o > 0; o /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  acc += __shfl_xor_sync(0xffffffffu, acc, 1);
  acc += __shfl_xor_sync(0xffffffffu, acc, 2);
  if constexpr (SPLITF) acc += __shfl_xor_sync(0xffffffffu, acc, 16);
  *bias = acc;
  // E from the exponent field (ilogbf and ldexpf cost ~20 instructions of special
  // cases, and KIVI folds once per page): a subnormal amax reads as 2^-127, which the
  // clamp covers. E is taken before the code shifts, so the largest fq lands at or below
  // 2^15 and the others keep ~22 bits down to 2^-3 (hi and residual) as before.
  int e = 0;
  if (amax > 0.0f && amax < INFINITY) e = min(max(14 - (((__float_as_int(amax) >> 23) & 0xff) - 127), -100), 100);
  // 2^(E - s) for slot l (s = slot_shift, a compile-time constant per slot: a handful of
  // distinct values, each an integer add).
  const auto up_of = [&](int l) { return __int_as_float((127 + e - slot_shift<BITS>(l)) << 23); };
  uint4* out = frag + hb * KF * 16;
#pragma unroll
  for (int kk = 0; kk < KF; ++kk) {
    uint32_t part[4];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int l0 = key_channel<D, BITS>(0, 2 * kk + h, 0), l1 = key_channel<D, BITS>(0, 2 * kk + h, 1);
      const float f0 = f[l0] * up_of(l0);
      const float f1 = f[l1] * up_of(l1);
      const __half2 hi = __floats2half2_rn(f0, f1);
      part[2 * h] = h2_bits(hi);
      part[2 * h + 1] = h2_bits(__floats2half2_rn(f0 - __low2float(hi), f1 - __high2float(hi)));
    }
    if (SPLITF || writer) out[kk * 16] = make_uint4(part[0], part[1], part[2], part[3]);
  }
  __syncwarp();
  return __int_as_float((127 + (BITS == 16 ? 0 : 24) - e) << 23);  // 2^(24 - E) (2^-E for fp16 keys)
}

}  // namespace mma
}  // namespace zc::cuda::detail
