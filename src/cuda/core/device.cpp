// Host-side CUDA helpers (device.h).
#include "cuda/core/device.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace zc::cuda {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    fail("cuda: {}: {} ({})", what, cudaGetErrorName(e), cudaGetErrorString(e));
  }
}

void check_launch(const char* what) { check(cudaGetLastError(), what); }

bool device_available(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    // Clear the sticky-free error so later runtime calls do not report it again.
    (void)cudaGetLastError();
    if (why) *why = fmt::format("cudaGetDeviceCount: {} ({})", cudaGetErrorName(e), cudaGetErrorString(e));
    return false;
  }
  if (n == 0) {
    if (why) *why = "cudaGetDeviceCount found 0 devices";
    return false;
  }
  return true;
}

int sm_count() {
  static const int count = [] {
    int dev = 0, n = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev), "multiprocessor count");
    return n;
  }();
  return count;
}

bool programmatic_launch_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("ZC_PDL");
    if (env == nullptr || std::strcmp(env, "1") != 0) return false;
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return major >= 9;
  }();
  return enabled;
}

}  // namespace zc::cuda
