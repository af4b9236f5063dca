// Launcher of the sampling kernel (sampling.cu), internal to src/cuda/model: sampling.cpp
// validates the draws and shapes and calls it. Plain C++ declarations so that g++
// compiles the callers; every pointer is a device pointer.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace zc::cuda::detail {

// One row's draw (sampling.h's GpuDraw, checked), as the kernel reads it.
struct DrawArgs {
  int32_t row;        // the row of logits, and of out
  float temperature;  // > 0
  int32_t top_k;      // <= 0 or >= vocab: off
  float top_p;        // in (0, 1]; 1: off
  float min_p;        // in [0, 1]; 0: off
  double u;           // in [0, 1)
};

// The most CTAs that may draw one row (a thread block cluster of up to 16 needs Hopper's
// non-portable cluster sizes; 8 is portable).
constexpr int kMaxCtasPerRow = 16;

// The largest count of CTAs per row, at most `limit`, whose clusters the current device
// can run (cudaOccupancyMaxActiveClusters: a GPC must hold a cluster of CTAs that each
// fill an SM, which a partitioned GPU may not); 1 without clusters. *largest receives it.
cudaError_t largest_ctas_per_row(int limit, int* largest);

// ctas_per_row CTAs per draw (1, or a thread block cluster of that many: sm_90 and
// later): out[draws[j].row] = the token drawn from that row of logits
// [rows][vocab], -1 for a row holding a NaN, -2 for a row whose largest logit is not
// finite. dist (null, or [vocab] doubles, only with n == 1) receives the final
// probabilities (0 for removed tokens).
cudaError_t launch_draw_rows(const float* logits, int vocab, const DrawArgs* draws, int n, int32_t* out,
                             double* dist, int ctas_per_row, cudaStream_t s);

}  // namespace zc::cuda::detail
