// Host side of the GPU top-r split (top_r.h): argument checks, the launch, and the one
// NaN-flag check, or none when the caller defers it (top_r.cu holds the kernel).
#include "cuda/saliency/top_r.h"

#include <limits>
#include <map>

#include "core/error.h"
#include "cuda/core/device.h"
#include "cuda/saliency/saliency_launch.h"

namespace zc::cuda {

namespace {

// Throws on bad arguments; false when there is nothing to split.
bool check_args(const float* scores, int lists, int n, int count, const int32_t* salient_idx,
                const int32_t* regular_idx) {
  if (lists < 0 || n < 0) fail("cuda top_r_split: bad shape {} lists x {} tokens", lists, n);
  if (count < 0 || count > n) {
    fail("cuda top_r_split: salient count {} is outside [0, {}] (the list length)", count, n);
  }
  if (lists == 0 || n == 0) return false;
  if (scores == nullptr) fail("cuda top_r_split: null scores for {} lists x {} tokens", lists, n);
  if (count > 0 && salient_idx == nullptr) {
    fail("cuda top_r_split: null salient_idx for {} salient tokens per list", count);
  }
  if (count < n && regular_idx == nullptr) {
    fail("cuda top_r_split: null regular_idx for {} regular tokens per list", n - count);
  }
  return true;
}

}  // namespace

void top_r_split_deferred(const float* scores, int lists, int n, int count, int32_t* salient_idx,
                          int32_t* regular_idx, unsigned long long* nan_flag, cudaStream_t stream) {
  if (!check_args(scores, lists, n, count, salient_idx, regular_idx)) return;
  if (nan_flag == nullptr) fail("cuda top_r_split_deferred: null NaN flag");
  check(detail::launch_top_r_split(scores, lists, n, count, salient_idx, regular_idx, nan_flag, stream),
        "top-r split kernel");
}

void top_r_split(const float* scores, int lists, int n, int count, int32_t* salient_idx,
                 int32_t* regular_idx, cudaStream_t stream) {
  if (!check_args(scores, lists, n, count, salient_idx, regular_idx)) return;
  // One flag per stream, kept: allocating it per call cost a cudaMalloc and a
  // device-wide synchronizing cudaFree for every layer of every ZipCache prefill.
  static thread_local std::map<cudaStream_t, DeviceBuffer<unsigned long long>> flags;
  DeviceBuffer<unsigned long long>& nan_at = flags[stream];
  if (nan_at.size() == 0) nan_at.resize(1);
  check(cudaMemsetAsync(nan_at.get(), 0xff, sizeof(unsigned long long), stream), "NaN flag reset");
  check(detail::launch_top_r_split(scores, lists, n, count, salient_idx, regular_idx, nan_at.get(),
                                   stream),
        "top-r split kernel");
  unsigned long long first = 0;
  check(cudaMemcpyAsync(&first, nan_at.get(), sizeof(first), cudaMemcpyDeviceToHost, stream),
        "top-r NaN flag");
  check(cudaStreamSynchronize(stream), "top-r split");
  if (first != std::numeric_limits<unsigned long long>::max()) {
    const auto un = static_cast<unsigned long long>(n);
    fail("cuda top_r_split: score of list {}, token {} is NaN (non-finite q/k or invalid probes "
         "upstream?)",
         first / un, first % un);
  }
}

}  // namespace zc::cuda
