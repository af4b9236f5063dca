// ZipCache's window tracking inside decode attention (decode_attention.h): what the
// caller passes, and what the kernels read from DecodeParams::window (decode_launch.h).
#pragma once
#include <cstdint>

#include "cuda/kv/kv_page.h"

namespace zc::cuda {

// ZipCache's streaming saliency (gpu_cache.h), folded into decode attention: list
// b * n_kv + h's window, count[b] tokens from slot 0 of page first_page[b * stride] of
// the list (fp16 pages), gets the probability each token received from the step's g
// query heads added to sums[list * cap + w] (tokens w < cap). Scratch the caller owns:
// `scores` for [lists][g][window_scores_stride(cap)] floats (the split kernels keep the
// window's scores there for the merge), `ml` for [lists][g][2] and `arrivals` for
// [lists] counters, zero before the first call (the merge leaves them zero again).
struct WindowSums {
  const int32_t* first_page = nullptr;
  int first_page_stride = 1;
  const int32_t* count = nullptr;
  float* sums = nullptr;
  float* scores = nullptr;
  float* ml = nullptr;
  unsigned* arrivals = nullptr;
  int cap = 0;
};
// Window tokens of `scores` per (list, head): cap rounded up to whole pages.
inline int window_scores_stride(int cap) { return (cap + kPageTokens - 1) / kPageTokens * kPageTokens; }

}  // namespace zc::cuda
