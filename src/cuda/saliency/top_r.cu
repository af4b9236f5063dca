// Top-r split kernel (SPEC.md section 4; top_r.h): one CTA per list.
// 1. A bitwise search on order-preserving uint32 keys of the scores (32 block-wide
//    counts) finds T, the key of the count-th largest score, and k, how many of the
//    keys equal to T are salient (the rest of the salient ones are > T).
// 2. A stable compaction in tiles of the block size: one block-wide exclusive scan of
//    (key > T, key == T) per tile gives, for every token, how many salient tokens come
//    before it; among the keys equal to T the LAST k are salient (ties go to the later
//    token, as saliency::top_r). Salient tokens go to salient[before], the others to
//    regular[i - before], so both lists come out ascending.
#include <cstdint>

#include "cuda/saliency/saliency_launch.h"

namespace zc::cuda::detail {
namespace {

constexpr int kThreads = 1024;  // 32 warps: one scan warp, one count per lane of a warp
static_assert(kThreads == 32 * 32, "block_count and the scan read one warp count per lane");
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

// The first kCached * kThreads keys of a list stay in registers for the 34 counts of the
// search (key j of thread tid: token tid + j * kThreads); longer lists read the rest
// from memory on every count.
constexpr int kCached = 8;

// How many of the n scores' keys satisfy pred, over the whole block (all threads call
// it). Calls alternate between the two rows of `counts` (buf flips): a thread can only
// rewrite a row after every thread passed the barrier of the call in between, so after
// every read of that row.
template <typename Pred>
__device__ int block_count(const uint32_t (&cached)[kCached], const float* __restrict__ s, int n, int tid, Pred pred,
                           int (*counts)[32], int& buf) {
  buf ^= 1;
  int c = 0;
#pragma unroll
  for (int j = 0; j < kCached; ++j) c += tid + j * kThreads < n && pred(cached[j]) ? 1 : 0;
  for (int i = tid + kCached * kThreads; i < n; i += kThreads) c += pred(order_key(s[i])) ? 1 : 0;
  c = __reduce_add_sync(kFull, c);
  if (tid % 32 == 0) counts[buf][tid / 32] = c;
  __syncthreads();
  return __reduce_add_sync(kFull, counts[buf][tid % 32]);  // kThreads / 32 == 32 warps
}

__global__ void __launch_bounds__(kThreads)
    top_r_kernel(const float* __restrict__ scores, int n, int count, int32_t* __restrict__ salient,
                 int32_t* __restrict__ regular, unsigned long long* nan_at) {
  __shared__ int counts[2][32];  // per-warp counts of block_count
  __shared__ int warp_sums[32];
  const long long list = blockIdx.x;
  const float* s = scores + list * n;
  const int tid = static_cast<int>(threadIdx.x);

  // 1. The count-th largest key T, bit by bit from the top: T is the largest value v with
  //    at least `count` keys >= v. Each step is one count over the list (in registers,
  //    warp sums then one shared-memory exchange): no histogram, so no atomics queueing on
  //    the one bin that keys of one scale share.
  uint32_t prefix = 0u;
  int k = count, equal = 0, buf = 0;
  uint32_t cached[kCached];
#pragma unroll
  for (int j = 0; j < kCached; ++j) cached[j] = tid + j * kThreads < n ? order_key(s[tid + j * kThreads]) : 0u;
  if (count > 0) {
    for (int bit = 31; bit >= 0; --bit) {
      const uint32_t cand = prefix | (1u << bit);
      if (block_count(cached, s, n, tid, [cand](uint32_t key) { return key >= cand; }, counts, buf) >= count) {
        prefix = cand;
      }
    }
    const uint32_t t = prefix;
    const int above = block_count(cached, s, n, tid, [t](uint32_t key) { return key > t; }, counts, buf);
    equal = block_count(cached, s, n, tid, [t](uint32_t key) { return key == t; }, counts, buf);
    k = count - above;  // of the keys equal to T, this many are salient
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
