// The end of a decode_mma_kernel CTA (decode_mma.cuh): its warps' (max, sum, value
// sums) combined into the (sequence, KV head) pair's result for its split. With several
// splits that is a partial for the merge kernel (decode_merge.cu); with one split the
// CTA has the whole softmax and does the merge's work itself: the normalized output
// (fp32 and/or bf16), the softmax stats, and ZipCache's window sums (every head of the
// pair is here, so no arrival counting). At large batches (one split per pair) that
// saves the merge launch, whose ~18k small CTAs took 24-35 us per layer at 574
// sequences (H100, ncu), and the partials' round trip through memory. The arithmetic
// is the merge's with one split (weight 2^0 = 1), so the outputs are the same bits.
// (ZC_DECODE_MERGE=always keeps the merge kernel: decode_attention.cpp.)
#pragma once
#include <cstdint>

#include "cuda/core/bf16.cuh"
#include "cuda/kv/decode_launch.h"

namespace zc::cuda::detail {
namespace mma {

// wstat: [warp][8][2] (max, sum) per warp and head; done: [warp][G][D] value sums at
// the warp's max. Called by every thread after the barrier that publishes both.
template <int D, int WARPS, int THREADS>
__device__ __forceinline__ void finish_pair(const DecodeParams& p, int pair, int split, int G, int tid,
                                            const float* wstat, const float* done) {
  constexpr int kHeadSlots = 8;
  __shared__ float fin_ml[kHeadSlots][2];  // one split: each head's (max, sum)
  const bool whole = p.finish_in_split;  // p.splits == 1
  const int b = pair / p.n_kv, h = pair % p.n_kv;
  const size_t part = size_t(pair) * p.splits + split;
  for (int i = tid; i < G * D; i += THREADS) {
    const int j = i / D, ch = i % D;
    float mx = -INFINITY;
    for (int w = 0; w < WARPS; ++w) mx = fmaxf(mx, wstat[(w * kHeadSlots + j) * 2]);
    float acc = 0.0f, l = 0.0f;
    for (int w = 0; w < WARPS; ++w) {
      const float mw = wstat[(w * kHeadSlots + j) * 2];
      const float wt = mw == -INFINITY ? 0.0f : exp2f(mw - mx);
      acc = fmaf(wt, done[(w * G + j) * D + ch], acc);
      l = fmaf(wt, wstat[(w * kHeadSlots + j) * 2 + 1], l);
    }
    if (!whole) {
      p.part_o[(part * G + j) * D + ch] = acc;
      if (ch == 0) p.part_ml[(part * G + j) * 2] = mx, p.part_ml[(part * G + j) * 2 + 1] = l;
      continue;
    }
    const size_t row = size_t(b) * p.n_heads + size_t(h) * G + j;
    const float o = acc / l;
    if (p.out != nullptr) p.out[row * D + ch] = o;
    if (p.out_bf16 != nullptr) p.out_bf16[row * D + ch] = to_bf16_bits(o);
    if (ch == 0) {
      if (p.out_ml != nullptr) p.out_ml[2 * row] = mx, p.out_ml[2 * row + 1] = l;
      fin_ml[j][0] = mx, fin_ml[j][1] = l;
    }
  }
  const WindowSums& win = p.window;
  if (!whole || win.sums == nullptr) return;
  // Window tracking: each window token's probability summed over the heads in order
  // (decode_merge.cu's sum); the scores came from this CTA's warps (page_pass).
  __syncthreads();
  const float* scores = win.scores + size_t(pair) * G * p.win_stride;
  const int count = min(win.count[b], win.cap);
  for (int w = tid; w < count; w += THREADS) {
    float total = 0.0f;
    for (int k = 0; k < G; ++k) total += exp2f(scores[k * p.win_stride + w] - fin_ml[k][0]) / fin_ml[k][1];
    win.sums[size_t(pair) * win.cap + w] += total;
  }
}

}  // namespace mma
}  // namespace zc::cuda::detail
