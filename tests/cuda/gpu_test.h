// Shared helpers of the CUDA tests: the skip when no GPU is present (CI builds the
// CUDA code but has no GPU), and host <-> device copies.
#pragma once
#include <gtest/gtest.h>

#include <cuda_runtime.h>

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

}  // namespace zc_test
