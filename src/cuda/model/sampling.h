// Choosing tokens on the GPU (issue 4): engine::Sampler's draw made where the logits
// are, so that a sampled row need not be copied to the host (0.5 MB at Llama 3's
// vocabulary) nor scanned there (~1 ms of a core in double).
//
// A draw is engine::Sampler's with its uniform given (engine::DrawSpec): temperature,
// top-k, top-p and min-p in HF's order, then the walk over the kept tokens in id order
// to where u of their mass falls. The host keeps the random stream (the sampler's seeded
// generator hands out one u per token), so a seed means the same text whether a token is
// drawn here or by engine::Sampler, up to the precision below.
//
// Precision (sampling.cu): each softmax term is exp in float (~1e-7 relative), then
// fixed point (2^-45 of the best token's term at Llama 3's vocabulary), summed exactly.
// A draw therefore equals engine::Sampler's (double throughout) unless u falls within
// ~1e-6 of a boundary between two tokens' cumulative probabilities, and the same draw on
// the same logits gives the same token every time, whatever the batch and the count of
// CTAs drawing a row. No repetition or additive penalty here: those rows stay on the host.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <span>
#include <vector>

#include "cuda/core/device.h"

namespace zc::cuda {

struct GpuDraw {
  int32_t row = 0;           // the row of logits, and of out
  float temperature = 1.0f;  // > 0 (greedy rows take argmax_rows)
  int32_t top_k = 0;         // <= 0: off
  float top_p = 1.0f;        // in (0, 1]; 1: off
  float min_p = 0.0f;        // in [0, 1]; 0: off; keeps tokens with p >= min_p * p_max
  double u = 0.0;            // the uniform of the walk, in [0, 1)
};

class GpuSampler {
 public:
  // Queues draws[j]'s token into out[draws[j].row] (device memory): -1 for a row holding
  // a NaN, -2 for one whose largest logit is not finite (engine::check_picked's codes).
  // logits: device [rows][vocab]. The draws are staged through pinned memory that the
  // next call reuses: it must not come before this one's copy ran (a stream sync).
  // Throws zc::Error naming a bad draw or shape before any launch.
  void draw(const float* logits, int rows, int vocab, std::span<const GpuDraw> draws, int32_t* out,
            cudaStream_t stream = nullptr);

  // The probabilities one draw keeps (zeros for removed tokens) from the same kernel,
  // and its token; synchronizes. Exposed for tests.
  std::vector<double> distribution(const float* logits_device, int vocab, const GpuDraw& draw,
                                   int32_t* token = nullptr);

  // How many CTAs draw one row: 0 (the default) chooses per launch, enough to spread the
  // rows over the SMs, at most 8 (a thread block cluster: sm_90; 1 elsewhere); 1 to 16
  // force it. Any count gives the same tokens. Throws outside 0..16, or (at the next
  // draw) above what the GPU's clusters hold.
  void set_ctas_per_row(int ctas);
  int ctas_per_row(int rows, int vocab);  // the count the next launch of `rows` rows takes

 private:
  void grow_draws(size_t n);  // draws_ holds at least n

  int forced_ctas_ = 0;
  int sms_ = 0, largest_ = -1;  // the current device's SMs and largest cluster, read once
  PinnedBuffer<GpuDraw> staged_;
  DeviceBuffer<GpuDraw> draws_;
  DeviceBuffer<double> dist_;
  DeviceBuffer<int32_t> token_;
};

}  // namespace zc::cuda
