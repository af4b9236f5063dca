// The last step of decode attention, shared by the merge kernel (decode_merge.cu) and
// the tensor-core kernel when it finishes a pair itself (decode_mma_finish.cuh), so
// that both write the same bits: the output element in fp32 and/or bf16 (the bf16 copy
// the output projection reads, written here rather than by a conversion kernel), the
// softmax stats, and ZipCache's window sums. Include only from .cu files.
#pragma once
#include <cstdint>

#include "cuda/core/bf16.cuh"
#include "cuda/kv/decode_launch.h"

namespace zc::cuda::detail {

// Query head `row` (b * n_heads + head), channel c: out = acc / l; (m, l) once per row.
__device__ __forceinline__ void store_output(const DecodeParams& p, size_t row, int c, float acc, float m, float l) {
  const float o = acc / l;
  if (p.out != nullptr) p.out[row * p.d + c] = o;
  if (p.out_bf16 != nullptr) p.out_bf16[row * p.d + c] = to_bf16_bits(o);
  if (p.out_ml != nullptr && c == 0) p.out_ml[2 * row] = m, p.out_ml[2 * row + 1] = l;
}

// Window tracking (DecodeParams::window): each window token's probability,
// 2^(score - m_k) / l_k summed over the pair's heads k in order, added to its saliency
// sum; tokens w = first, first + step, ... . ml(k) gives head k's (m, l). The scores
// are read through L2 (__ldcg): the split kernels' warps or CTAs wrote them.
template <typename HeadStats>
__device__ __forceinline__ void add_window_probabilities(const DecodeParams& p, int pair, int first, int step,
                                                         HeadStats ml) {
  const WindowSums& win = p.window;
  const int b = pair / p.n_kv;
  const float* scores = win.scores + static_cast<size_t>(pair) * p.g * p.win_stride;
  const int count = min(win.count[b], win.cap);
  for (int w = first; w < count; w += step) {
    float total = 0.0f;
    for (int k = 0; k < p.g; ++k) {
      const float2 s = ml(k);
      total += exp2f(__ldcg(scores + k * p.win_stride + w) - s.x) / s.y;
    }
    win.sums[static_cast<size_t>(pair) * win.cap + w] += total;
  }
}

}  // namespace zc::cuda::detail
