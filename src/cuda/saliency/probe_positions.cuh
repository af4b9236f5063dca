// Device helpers on the probe list shared by both probe-pass paths (probe_scores.cu's
// cuBLAS path and probe_fused.cu): positions are sorted ascending and checked on the
// device, so reads clamp them into [0, L) and a bad list only poisons the outputs.
#pragma once
#include <cstdint>

namespace zc::cuda::detail {

__device__ __forceinline__ int clamp_position(int t, int L) { return t < 0 ? 0 : (t >= L ? L - 1 : t); }

// First probe index whose position is >= i (probes ascending): the rows that see token i
// are p >= lower_bound(i), i.e. a suffix of the probe list.
__device__ inline int lower_bound(const int32_t* __restrict__ probes, int P, int i) {
  int lo = 0, hi = P;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (probes[mid] < i) lo = mid + 1; else hi = mid;
  }
  return lo;
}

}  // namespace zc::cuda::detail
