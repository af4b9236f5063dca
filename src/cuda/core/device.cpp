// Host-side CUDA helpers (device.h).
#include "cuda/core/device.h"

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

}  // namespace zc::cuda
