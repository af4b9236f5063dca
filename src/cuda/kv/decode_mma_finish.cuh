// The end of a decode_mma_kernel CTA (decode_mma.cuh): its warps' (max, sum, value
// sums) combined into the (sequence, KV head) pair's result for its split. For a split
// pair that is a partial for the merge kernel (decode_merge.cu); for a whole pair
// (DecodeParams::whole_pairs) the CTA has the whole softmax and does the merge's work itself: the normalized output
// (fp32 and/or bf16), the softmax stats, and ZipCache's window sums (every head of the
// pair is here, so no arrival counting). At large batches (one split per pair) that
// saves the merge launch, whose ~18k small CTAs took 24-35 us per layer at 574
// sequences (H100, ncu), and the partials' round trip through memory. The arithmetic
// is the merge's with one split (weight 2^0 = 1), and both write through
// decode_output.cuh, so the outputs are the same bits.
// (ZC_DECODE_MERGE=always keeps the merge kernel: decode_attention.cpp.)
#pragma once
#include <cstdint>

#include "cuda/kv/decode_launch.h"
#include "cuda/kv/decode_mma_page.cuh"
#include "cuda/kv/decode_output.cuh"

namespace zc::cuda::detail {
namespace mma {

// wstat: [warp][kHeads][2] (max, sum) per warp and head; done: [warp][G][D] value sums
// at the warp's max. Called by every thread after the barrier that publishes both.
template <int D>
__device__ __forceinline__ void finish_pair(const DecodeParams& p, int pair, int split, int G, int tid,
                                            const float* wstat, const float* done) {
  __shared__ float2 fin_ml[kHeads];  // one split: each head's (max, sum)
  const bool whole = pair < p.whole_pairs;  // the CTA took all of the pair's pages
  const int b = pair / p.n_kv, h = pair % p.n_kv;
  const size_t part = size_t(pair - p.whole_pairs) * p.splits + split;
  for (int i = tid; i < G * D; i += kThreads) {
    const int j = i / D, ch = i % D;
    float mx = -INFINITY;
    for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, wstat[(w * kHeads + j) * 2]);
    float acc = 0.0f, l = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      const float mw = wstat[(w * kHeads + j) * 2];
      const float wt = mw == -INFINITY ? 0.0f : exp2f(mw - mx);
      acc = fmaf(wt, done[(w * G + j) * D + ch], acc);
      l = fmaf(wt, wstat[(w * kHeads + j) * 2 + 1], l);
    }
    if (whole) {
      store_output(p, size_t(b) * p.n_heads + size_t(h) * G + j, ch, acc, mx, l);
      if (ch == 0) fin_ml[j] = make_float2(mx, l);
    } else {
      p.part_o[(part * G + j) * D + ch] = acc;
      if (ch == 0) p.part_ml[(part * G + j) * 2] = mx, p.part_ml[(part * G + j) * 2 + 1] = l;
    }
  }
  if (!whole || p.window.sums == nullptr) return;
  __syncthreads();  // fin_ml, and the scores this CTA's warps kept (page_pass)
  add_window_probabilities(p, pair, tid, kThreads, [&](int k) { return fin_ml[k]; });
}

}  // namespace mma
}  // namespace zc::cuda::detail
