// Choosing the next token on the GPU (issue 4): greedy, temperature, top-k, top-p and
// min-p with a seed, in engine::Sampler's order and meaning (HF's: temperature, top-k,
// top-p, min-p), for every row of a logits matrix at once.
//
// Differences from engine::Sampler, by design:
// - No repetition penalty on the GPU (it needs each row's history); the caller applies
//   it to the logits first or samples on the CPU.
// - At most 1024 candidates per row: the 1024 most likely tokens (or the top_k most
//   likely when top_k <= 1024) enter the softmax, tokens beyond are dropped. That is exact
//   whenever 0 < top_k <= 1024 (and whenever vocab <= 1024); with top_k off or above 1024
//   it is an approximation that drops the probability mass past the 1024th token before
//   top-p / min-p (the mass there is normally negligible after top-p / min-p anyway).
// - The random numbers: u in [0, 1) from Philox4x32-10 with key `seed` and counter
//   (step, row), so the draw for (seed, step, row) is fixed and each step is fresh; the
//   token is the first kept candidate, in descending-probability order, whose cumulative
//   probability exceeds u.
// - A row holding a NaN gives token -1 (the caller turns it into an error), as
//   argmax_rows does.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "cuda/core/device.h"

namespace zc::cuda {

struct GpuSampling {
  float temperature = 0.0f;  // <= 0: greedy (argmax_rows)
  int top_k = 0;             // <= 0: off
  float top_p = 1.0f;        // >= 1: off; must be > 0
  float min_p = 0.0f;        // <= 0: off; keeps tokens with p >= min_p * p_max; <= 1
  uint64_t seed = 0;
};

class GpuSampler {
 public:
  // Throws zc::Error naming the bad option (the checks of engine::SamplingParams).
  explicit GpuSampler(const GpuSampling& params);

  // logits: device [rows][vocab]; out: device [rows]. Asynchronous on `stream`.
  void sample(const float* logits, int rows, int vocab, uint64_t step, int32_t* out,
              cudaStream_t stream = nullptr);

  // The final probabilities of one row of logits (device pointer, vocab values) after
  // every filter, zeros for removed tokens, from the same kernel path as sample() (its
  // debug output); for greedy, one-hot at the argmax. Synchronizes. Exposed for tests.
  std::vector<double> distribution(const float* logits_device, int vocab);

  const GpuSampling& params() const { return params_; }

 private:
  GpuSampling params_;
  DeviceBuffer<double> dist_;     // distribution(): the debug output row
  DeviceBuffer<int32_t> token_;   // distribution(): the token it also draws
};

}  // namespace zc::cuda
