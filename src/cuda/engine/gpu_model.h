// A model's weights on the GPU (issue 4): bf16 matrices for cuBLAS, fp32 norms and
// biases, the RoPE frequencies. The q/k/v projections are stacked into one [q; k; v]
// matrix and gate/up into one [gate; up] matrix, so each takes one matrix product.
#pragma once
#include <cstdint>
#include <vector>

#include "cuda/core/device.h"
#include "model/config.h"
#include "model/weights.h"

namespace zc::cuda {

struct GpuLayerWeights {
  DeviceBuffer<uint16_t> wqkv, wo, wgu, wd;          // bf16 [out][in]
  DeviceBuffer<float> bqkv, bo, bgu, bd;             // empty when the model has none
  DeviceBuffer<float> input_norm, post_norm, q_norm, k_norm;
};

class GpuModel {
 public:
  // Converts the CPU model's fp32 weights to bf16 on the host and uploads them.
  static GpuModel upload(const model::ModelConfig& config, const model::ModelWeights& weights);
  // Random weights of the config's exact shapes, made on the GPU (normal-ish values
  // with std 0.02 as HF initializes, norms 1): for benchmarks without a download.
  static GpuModel synthetic(const model::ModelConfig& config, uint64_t seed);

  const model::ModelConfig& config() const { return config_; }
  const GpuLayerWeights& layer(int i) const { return layers_[size_t(i)]; }
  const uint16_t* embed() const { return embed_.get(); }
  const uint16_t* lm_head() const { return lm_head_.size() ? lm_head_.get() : embed_.get(); }
  const float* norm() const { return norm_.get(); }
  const float* inv_freq() const { return inv_freq_.get(); }
  size_t weight_bytes() const;  // device bytes of every weight

  // Sizes the runner needs.
  int qkv_width() const { return (config_.n_heads + 2 * config_.n_kv_heads) * config_.head_dim; }

 private:
  explicit GpuModel(const model::ModelConfig& config);
  model::ModelConfig config_;
  DeviceBuffer<uint16_t> embed_, lm_head_;
  DeviceBuffer<float> norm_, inv_freq_;
  std::vector<GpuLayerWeights> layers_;
};

}  // namespace zc::cuda
