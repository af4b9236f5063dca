// The second kernel of decode attention (decode_attention.cu): the splits' partial
// (max, sum, weighted value sum) of each (sequence, KV head, query head) merged into
// one softmax, the output written in fp32 and/or the bf16 the output projection reads,
// and, for ZipCache, the streaming window's saliency sums (DecodeParams::window).
#include <cstdint>

#include "cuda/core/launch.cuh"
#include "cuda/kv/decode_launch.h"
#include "cuda/kv/decode_output.cuh"

namespace zc::cuda::detail {
namespace {

// out = sum_s o_s 2^(m_s - M) / sum_s l_s 2^(m_s - M): one CTA per (pair, head of the
// group), one thread per channel. The splits' (m, l) go through shared memory once;
// the partial outputs are read coalesced across channels, all splits in flight.
// With window tracking (DecodeParams::window), the last of a pair's g CTAs to finish
// adds each window token's probability, 2^(score - M) / L summed over the heads in
// order, to its sum: ZipCache's streaming saliency without a launch of its own, and the
// same bits whichever CTA comes last.
__global__ void decode_merge_kernel(const DecodeParams p) {
  wait_for_prior_grids();  // PDL: the split kernel's partial results
  allow_dependent_launch();
  extern __shared__ float ml_s[];  // [splits][2]
  __shared__ bool last_of_pair;
  // The split pairs only (DecodeParams::whole_pairs: the others finished in their CTA).
  const int pair = p.whole_pairs + static_cast<int>(blockIdx.x), j = static_cast<int>(blockIdx.y);
  const int c = static_cast<int>(threadIdx.x), g = p.g, d = p.d, splits = p.splits;
  const size_t first = static_cast<size_t>(blockIdx.x) * splits;
  for (int s = c; s < splits; s += static_cast<int>(blockDim.x)) {
    ml_s[2 * s] = p.part_ml[((first + s) * g + j) * 2];
    ml_s[2 * s + 1] = p.part_ml[((first + s) * g + j) * 2 + 1];
  }
  __syncthreads();
  float m = -INFINITY;
  for (int s = 0; s < splits; ++s) m = fmaxf(m, ml_s[2 * s]);
  float l = 0.0f, acc = 0.0f;
#pragma unroll 4
  for (int s = 0; s < splits; ++s) {
    const float ms = ml_s[2 * s];
    const float w = ms == -INFINITY ? 0.0f : exp2f(ms - m);
    l = fmaf(ml_s[2 * s + 1], w, l);
    acc = fmaf(p.part_o[((first + s) * g + j) * d + c], w, acc);
  }
  const int b = pair / p.n_kv, h = pair % p.n_kv;
  store_output(p, static_cast<size_t>(b) * p.n_heads + h * g + j, c, acc, m, l);
  const WindowSums& win = p.window;
  if (win.sums == nullptr) return;
  // ---- window tracking: the pair's last CTA ----
  float* pair_ml = win.ml + static_cast<size_t>(pair) * g * 2;
  if (c == 0) {
    pair_ml[2 * j] = m, pair_ml[2 * j + 1] = l;
    __threadfence();  // (m, l) visible before the arrival is counted
    // atomicInc wraps to 0 after g - 1: the counter is ready for the next call (and
    // for a CUDA graph's next replay) without a reset.
    last_of_pair = atomicInc(win.arrivals + pair, static_cast<unsigned>(g - 1)) == static_cast<unsigned>(g - 1);
  }
  __syncthreads();
  if (!last_of_pair) return;
  __threadfence();  // the other heads' (m, l) are read after their arrivals
  add_window_probabilities(p, pair, c, static_cast<int>(blockDim.x),
                           [&](int k) { return make_float2(__ldcg(pair_ml + 2 * k), __ldcg(pair_ml + 2 * k + 1)); });
}

}  // namespace

cudaError_t launch_merge(const DecodeParams& p, int pairs, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>(pairs - p.whole_pairs), static_cast<unsigned>(p.g));
  return launch_pdl(PdlKernel::Merge, decode_merge_kernel, grid, static_cast<unsigned>(p.d), 2 * sizeof(float) * p.splits,
                    s, p);
}

}  // namespace zc::cuda::detail
