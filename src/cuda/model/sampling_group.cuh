// The CTAs that draw one row of logits (sampling.cu) and the passes they make over it:
// a thread block cluster on sm_90, each CTA taking an interleaved share of a pass, or one
// CTA elsewhere. Include only from sampling.cu.
#pragma once
#include <cstdint>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#include <cooperative_groups.h>
#endif

#include "cuda/model/sampling_launch.h"

namespace zc::cuda::detail::sampling {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;
constexpr int kMaxGroup = kMaxCtasPerRow;

// The CTAs that draw one row: a thread block cluster (sm_90), or the CTA alone.
// sync() is a barrier of the whole group that also orders shared-memory writes before
// it with reads after it, in any CTA of the group; at(p, r) is p's counterpart in CTA
// r's shared memory.
struct RowGroup {
  int rank = 0, size = 1;
  __device__ RowGroup() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    rank = static_cast<int>(cooperative_groups::this_cluster().block_rank());
    size = static_cast<int>(cooperative_groups::this_cluster().num_blocks());
#endif
  }
  __device__ __forceinline__ void sync() const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (size > 1) {
      cooperative_groups::this_cluster().sync();
      return;
    }
#endif
    __syncthreads();
  }
  template <class T>
  __device__ __forceinline__ T* at(T* p, int r) const {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (size > 1) return cooperative_groups::this_cluster().map_shared_rank(p, static_cast<unsigned>(r));
#endif
    (void)r;
    return p;
  }
  // This thread's index among the group's threads, and their count.
  __device__ __forceinline__ int thread() const { return rank * kThreads + static_cast<int>(threadIdx.x); }
  __device__ __forceinline__ int threads() const { return size * kThreads; }
};

// Loads a thread has in flight in a pass: a pass that waited for each load in turn was
// bound by L2's latency (60k cycles a pass at Llama 3's vocabulary for 125 loads a thread).
constexpr int kUnroll = 8;

// f(value, i, valid) for i = g.thread() + g.threads() * j, in rounds of kUnroll loads
// issued before any is used; every thread calls f equally often (valid false past n),
// so f may use warp-wide intrinsics.
template <class F>
__device__ __forceinline__ void strided_pass(const float* row, int n, const RowGroup& g, const F& f) {
  const int t = g.thread(), stride = g.threads();
  for (int base = 0; base < n; base += stride * kUnroll) {
    float v[kUnroll];
#pragma unroll
    for (int j = 0; j < kUnroll; ++j) {
      const int i = base + j * stride + t;
      v[j] = i < n ? row[i] : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < kUnroll; ++j) {
      const int i = base + j * stride + t;
      f(v[j], i, i < n);
    }
  }
}

// The ids of a row split into one contiguous chunk per warp of the group (in rank order,
// then warp order), which its lanes read 32 consecutive ids at a time (coalesced; a run
// of ids per thread cost ~70 us a pass at Llama 3's vocabulary, a cache line per lane
// per load).
struct WarpChunk {
  int lo, hi;
  __device__ WarpChunk(int n, const RowGroup& g) {
    const int warps = g.size * kWarps;
    const int per = (n + warps - 1) / warps;
    lo = min(n, (g.rank * kWarps + static_cast<int>(threadIdx.x / 32)) * per);
    hi = min(n, lo + per);
  }
};

// f(value, i, valid) over the warp's chunk, lane + 32 j, in rounds of kUnroll loads
// issued first; every lane calls f equally often (valid false past the chunk).
template <class F>
__device__ __forceinline__ void chunk_pass(const float* row, const WarpChunk& c, const F& f) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  for (int base = c.lo; base < c.hi; base += 32 * kUnroll) {
    float v[kUnroll];
#pragma unroll
    for (int j = 0; j < kUnroll; ++j) {
      const int i = base + 32 * j + lane;
      v[j] = i < c.hi ? row[i] : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < kUnroll; ++j) {
      const int i = base + 32 * j + lane;
      f(v[j], i, i < c.hi);
    }
  }
}

// The shared memory of warp_exclusive_scan, one per CTA.
struct GroupScan {
  uint64_t warp_sum[kWarps];                                      // this CTA's warps' values
  uint64_t value[kMaxGroup * kWarps], before[kMaxGroup * kWarps];  // the group's
  uint64_t total;
};

// The exclusive prefix, over the group's warps in WarpChunk's order, of one value per
// warp (lane 0's), and the total.
__device__ inline uint64_t warp_exclusive_scan(uint64_t v, uint64_t* total, const RowGroup& g, GroupScan& sh) {
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  g.sync();  // earlier readers of warp_sum and the scan's results are done, in every CTA
  if (lane == 0) sh.warp_sum[warp] = v;
  g.sync();
  for (int t = tid; t < g.size * kWarps; t += kThreads) sh.value[t] = g.at(sh.warp_sum, t / kWarps)[t % kWarps];
  __syncthreads();
  if (warp == 0) {
    // Lane l scans the group's warps l * size .. l * size + size - 1.
    const int per = g.size;
    uint64_t s = 0;
    for (int q = 0; q < per; ++q) s += sh.value[lane * per + q];
    uint64_t inc = s;
    for (int o = 1; o < 32; o *= 2) {
      const uint64_t x = __shfl_up_sync(kFull, inc, o);
      if (lane >= o) inc += x;
    }
    uint64_t acc = inc - s;
    for (int q = 0; q < per; ++q) {
      sh.before[lane * per + q] = acc;
      acc += sh.value[lane * per + q];
    }
    if (lane == 31) sh.total = inc;
  }
  __syncthreads();
  *total = sh.total;
  return sh.before[g.rank * kWarps + warp];
}

__device__ __forceinline__ uint64_t warp_sum(uint64_t v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

}  // namespace zc::cuda::detail::sampling
