// Host side of the GPU sampler (sampling.h): option and shape checks, greedy through
// argmax_rows, the debug distribution (sampling.cu holds the kernel).
#include "cuda/model/sampling.h"

#include <cmath>

#include "core/error.h"
#include "cuda/model/layer_kernels.h"
#include "cuda/model/sampling_launch.h"

namespace zc::cuda {

namespace {

detail::SampleArgs args_of(const GpuSampling& p, uint64_t step) {
  return {p.temperature, p.top_k, p.top_p, p.min_p, p.seed, step};
}

void check_shape(const char* fn, const float* logits, int rows, int vocab, const void* out) {
  if (rows < 0) fail("cuda GpuSampler::{}: rows must be >= 0, got {}", fn, rows);
  if (vocab < 1) fail("cuda GpuSampler::{}: vocab must be >= 1, got {}", fn, vocab);
  if (rows == 0) return;
  if (logits == nullptr) fail("cuda GpuSampler::{}: logits is a null pointer", fn);
  if (out == nullptr) fail("cuda GpuSampler::{}: out is a null pointer", fn);
}

}  // namespace

GpuSampler::GpuSampler(const GpuSampling& params) : params_(params) {
  // engine::SamplingParams::validate's rules (NaN min_p is refused here as well).
  if (!std::isfinite(params.temperature)) {
    fail("GpuSampling.temperature must be a finite number, got {}", params.temperature);
  }
  if (!(params.top_p > 0.0f)) fail("GpuSampling.top_p must be in (0, 1], got {}", params.top_p);
  if (!(params.min_p >= 0.0f && params.min_p <= 1.0f)) {
    fail("GpuSampling.min_p must be in [0, 1], got {}", params.min_p);
  }
}

void GpuSampler::sample(const float* logits, int rows, int vocab, uint64_t step, int32_t* out,
                        cudaStream_t stream) {
  check_shape("sample", logits, rows, vocab, out);
  if (rows == 0) return;
  if (params_.temperature <= 0.0f) {
    argmax_rows(logits, rows, vocab, out, stream);
    return;
  }
  check(detail::launch_sample_rows(logits, rows, vocab, args_of(params_, step), out, nullptr,
                                   stream),
        "GpuSampler::sample");
  check_launch("GpuSampler::sample");
}

std::vector<double> GpuSampler::distribution(const float* logits_device, int vocab) {
  if (vocab < 1) fail("cuda GpuSampler::distribution: vocab must be >= 1, got {}", vocab);
  if (logits_device == nullptr) fail("cuda GpuSampler::distribution: logits is a null pointer");
  token_.resize(1);
  std::vector<double> p(static_cast<size_t>(vocab), 0.0);
  if (params_.temperature <= 0.0f) {
    argmax_rows(logits_device, 1, vocab, token_.get());
    const int32_t best = token_.download()[0];
    if (best < 0) fail("cuda GpuSampler::distribution: the logits hold a NaN");
    p[static_cast<size_t>(best)] = 1.0;
    return p;
  }
  dist_.resize(static_cast<size_t>(vocab));
  dist_.fill_bytes(0);  // removed tokens stay 0.0 (all-zero bits)
  check(detail::launch_sample_rows(logits_device, 1, vocab, args_of(params_, 0), token_.get(),
                                   dist_.get(), nullptr),
        "GpuSampler::distribution");
  check_launch("GpuSampler::distribution");
  check(cudaDeviceSynchronize(), "GpuSampler::distribution");
  if (token_.download()[0] < 0) fail("cuda GpuSampler::distribution: the logits hold a NaN");
  return dist_.download();
}

}  // namespace zc::cuda
