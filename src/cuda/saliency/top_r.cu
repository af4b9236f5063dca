// Top-r split kernel (SPEC.md section 4; top_r.h): one CTA per list.
// 1. Radix select on order-preserving uint32 keys of the scores, 4 passes of 8 bits
//    with a shared histogram, finds T, the key of the count-th largest score, and k,
//    how many of the keys equal to T are salient (the rest of the salient ones are > T).
// 2. A stable compaction in tiles of the block size: one block-wide exclusive scan of
//    (key > T, key == T) per tile gives, for every token, how many salient tokens come
//    before it; among the keys equal to T the LAST k are salient (ties go to the later
//    token, as saliency::top_r). Salient tokens go to salient[before], the others to
//    regular[i - before], so both lists come out ascending.
#include <cstdint>

#include "cuda/saliency/saliency_launch.h"

namespace zc::cuda::detail {
namespace {

constexpr int kThreads = 1024;  // a multiple of 32, at most 32 warps (one scan warp)
constexpr unsigned kFull = 0xffffffffu;

// Larger float, larger key. -0 maps to +0's key (the CPU compares them equal); every NaN
// maps to 0, below -inf (0x007fffff).
__device__ uint32_t order_key(float f) {
  if (isnan(f)) return 0u;
  uint32_t u = __float_as_uint(f);
  if (u == 0x80000000u) u = 0u;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Exclusive prefix sum of v over the block (all threads must call it); *total gets the
// block's sum. `warp_sums` is shared scratch of 32 ints.
__device__ int block_exclusive_scan(int v, int* warp_sums, int* total) {
  const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
  const int warps = static_cast<int>(blockDim.x / 32);
  int x = v;
  for (int o = 1; o < 32; o *= 2) {
    const int y = __shfl_up_sync(kFull, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) warp_sums[warp] = x;
  __syncthreads();
  if (warp == 0) {
    int w = lane < warps ? warp_sums[lane] : 0;
    for (int o = 1; o < 32; o *= 2) {
      const int y = __shfl_up_sync(kFull, w, o);
      if (lane >= o) w += y;
    }
    warp_sums[lane] = w;  // inclusive over warps
  }
  __syncthreads();
  const int before = (warp > 0 ? warp_sums[warp - 1] : 0) + x - v;
  *total = warp_sums[warps - 1];
  __syncthreads();  // warp_sums is rewritten by the next call
  return before;
}

__global__ void __launch_bounds__(kThreads)
    top_r_kernel(const float* __restrict__ scores, int n, int count, int32_t* __restrict__ salient,
                 int32_t* __restrict__ regular, unsigned long long* nan_at) {
  __shared__ unsigned int hist[256];
  __shared__ uint32_t chosen_prefix;
  __shared__ int chosen_k, chosen_equal;
  __shared__ int warp_sums[32];
  const long long list = blockIdx.x;
  const float* s = scores + list * n;
  const int tid = static_cast<int>(threadIdx.x);

  // 1. Radix select: the count-th largest key, most significant byte first. Invariant:
  //    the wanted key starts with `prefix` (under `mask`) and is the k-th largest of
  //    the keys that do.
  uint32_t prefix = 0u, mask = 0u;
  int k = count, equal = 0;
  if (count > 0) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int b = tid; b < 256; b += kThreads) hist[b] = 0u;
      __syncthreads();
      for (int i = tid; i < n; i += kThreads) {
        const uint32_t key = order_key(s[i]);
        if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 0xffu], 1u);
      }
      __syncthreads();
      if (tid == 0) {
        // Walk digits from the top until the k-th largest is reached; the counts of
        // the matching keys sum to >= k, so digit 0 is reached only if it holds it.
        int above = 0, digit = 255;
        for (; digit > 0; --digit) {
          const int h = static_cast<int>(hist[digit]);
          if (above + h >= k) break;
          above += h;
        }
        chosen_prefix = prefix | (static_cast<uint32_t>(digit) << shift);
        chosen_k = k - above;
        chosen_equal = static_cast<int>(hist[digit]);
      }
      __syncthreads();
      prefix = chosen_prefix;
      mask |= 0xffu << shift;
      k = chosen_k;
      equal = chosen_equal;  // after the last pass: the number of keys equal to T
    }
  }
  const uint32_t T = prefix;
  const int first_taken = equal - k;  // equal keys of rank >= this (from the left) are salient

  // 2. Stable compaction, tile by tile in token order.
  int32_t* sal = salient + list * count;
  int32_t* reg = regular + list * (n - count);
  int greater_base = 0, equal_base = 0;  // counts in the earlier tiles
  for (int base = 0; base < n; base += kThreads) {
    const int i = base + tid;
    int gt = 0, eq = 0;
    if (i < n) {
      const float f = s[i];
      if (isnan(f)) atomicMin(nan_at, static_cast<unsigned long long>(list * n + i));
      const uint32_t key = order_key(f);
      if (count > 0) {
        gt = key > T ? 1 : 0;
        eq = key == T ? 1 : 0;
      }
    }
    // Both counts fit 16 bits (a tile has at most 1024 tokens): one scan for the two.
    int tile_total = 0;
    const int before = block_exclusive_scan(gt | (eq << 16), warp_sums, &tile_total);
    if (i < n) {
      const int gt_before = greater_base + (before & 0xffff);
      const int eq_rank = equal_base + (before >> 16);
      const int eq_taken_before = eq_rank > first_taken ? eq_rank - first_taken : 0;
      const int sal_before = gt_before + eq_taken_before;
      if (gt || (eq && eq_rank >= first_taken)) {
        sal[sal_before] = i;
      } else {
        reg[i - sal_before] = i;
      }
    }
    greater_base += tile_total & 0xffff;
    equal_base += tile_total >> 16;
  }
}

}  // namespace

cudaError_t launch_top_r_split(const float* scores, int lists, int n, int count, int32_t* salient,
                               int32_t* regular, unsigned long long* nan_at, cudaStream_t s) {
  top_r_kernel<<<static_cast<unsigned>(lists), kThreads, 0, s>>>(scores, n, count, salient,
                                                                 regular, nan_at);
  return cudaGetLastError();
}

}  // namespace zc::cuda::detail
