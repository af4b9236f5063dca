// Shared helpers of the CUDA tests: the skip when no GPU is present (CI builds the
// CUDA code but has no GPU), and host <-> device copies.
#pragma once
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cuda/core/device.h"

// Skips the current test with the reason when no CUDA device can be used.
#define ZC_REQUIRE_GPU()                                          \
  do {                                                            \
    std::string zc_why_;                                          \
    if (!::zc::cuda::device_available(&zc_why_)) {                \
      GTEST_SKIP() << "no CUDA GPU: " << zc_why_;                 \
    }                                                             \
  } while (0)

namespace zc_test {

// A device copy of host data.
template <typename T>
zc::cuda::DeviceBuffer<T> dev(const std::vector<T>& host) {
  zc::cuda::DeviceBuffer<T> d;
  d.upload(host);
  return d;
}

// The buffer's contents after every queued kernel (launches on any stream) finished.
template <typename T>
std::vector<T> sync_download(const zc::cuda::DeviceBuffer<T>& d) {
  zc::cuda::check(cudaDeviceSynchronize(), "test sync");
  return d.download();
}

// The timing tests' measurement: fn(i) for i = 0 .. warmup + runs - 1, each call between
// two cudaEvents on the default stream; the last `runs` times in ms, sorted.
template <typename F>
std::vector<float> event_times_ms(int runs, int warmup, F&& fn) {
  cudaEvent_t start = nullptr, stop = nullptr;
  zc::cuda::check(cudaEventCreate(&start), "event");
  zc::cuda::check(cudaEventCreate(&stop), "event");
  std::vector<float> ms;
  for (int i = 0; i < warmup + runs; ++i) {
    zc::cuda::check(cudaEventRecord(start), "event");
    fn(i);
    zc::cuda::check(cudaEventRecord(stop), "event");
    zc::cuda::check(cudaEventSynchronize(stop), "event");
    float t = 0.0f;
    zc::cuda::check(cudaEventElapsedTime(&t, start, stop), "event");
    if (i >= warmup) ms.push_back(t);
  }
  zc::cuda::check(cudaEventDestroy(start), "event");
  zc::cuda::check(cudaEventDestroy(stop), "event");
  std::sort(ms.begin(), ms.end());
  return ms;
}

}  // namespace zc_test
