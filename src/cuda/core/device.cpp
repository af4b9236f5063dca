// Host-side CUDA helpers (device.h).
#include "cuda/core/device.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

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

int env_int(const char* name, int lo, int hi, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi) fail("{}={} is not an integer in [{}, {}]", name, v, lo, hi);
  return static_cast<int>(x);
}

unsigned pdl_families(const char* spec) {
  // The default: the families measured faster in CUDA graphs (docs/benchmarks.md,
  // session 10). Decode attention's kernels are left out: a merge CTA resident early
  // takes a slot the split kernel's one wave of CTAs was sized for.
  if (spec == nullptr || *spec == '\0') spec = "gemv,layer,page";
  if (std::strcmp(spec, "0") == 0) return 0u;
  if (std::strcmp(spec, "1") == 0) return (1u << kPdlFamilies) - 1u;
  static const char* const names[kPdlFamilies] = {"gemv", "layer", "page", "split", "merge"};
  const std::string list(spec);
  unsigned mask = 0;
  for (size_t at = 0; at <= list.size();) {
    const size_t end = std::min(list.find_first_of(",+", at), list.size());
    const std::string name = list.substr(at, end - at);
    const auto it = std::find_if(std::begin(names), std::end(names), [&](const char* n) { return name == n; });
    if (it == std::end(names)) {
      fail("ZC_PDL={}: '{}' is not a kernel family (1, 0, or a list joined by , or + of gemv, layer, page, "
           "split, merge)", spec, name);
    }
    mask |= 1u << (it - std::begin(names));
    at = end + 1;
  }
  return mask;
}

bool programmatic_launch_enabled(PdlKernel family) {
  static const unsigned enabled = [] {
    const unsigned mask = pdl_families(std::getenv("ZC_PDL"));
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      return 0u;
    }
    return major >= 9 ? mask : 0u;
  }();
  return (enabled >> static_cast<unsigned>(family)) & 1u;
}

}  // namespace zc::cuda
