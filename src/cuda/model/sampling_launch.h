// Launcher of the sampling kernel (sampling.cu), internal to src/cuda/model: sampling.cpp
// validates the options and shapes and calls it. Plain C++ declarations so that g++
// compiles the callers; every pointer is a device pointer.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace zc::cuda::detail {

// Most candidates a row keeps (the kernel sorts them in shared memory).
constexpr int kMaxSampleCandidates = 1024;

struct SampleArgs {
  float temperature;  // > 0 (greedy goes through argmax_rows)
  int top_k;          // <= 0: off
  float top_p;        // >= 1: off
  float min_p;        // <= 0: off
  uint64_t seed;
  uint64_t step;
};

// One CTA per row of logits [rows][vocab]: out[r] = the drawn token, -1 for a row with a
// NaN. dist (null, or [vocab] doubles zeroed by the caller, only with rows == 1) receives
// the final probabilities of the kept candidates.
cudaError_t launch_sample_rows(const float* logits, int rows, int vocab, const SampleArgs& args,
                               int32_t* out, double* dist, cudaStream_t s);

}  // namespace zc::cuda::detail
