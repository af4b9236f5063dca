// The sampling kernel (sampling.h): one CTA of 256 threads per row of logits, the filters
// of engine::Sampler in its order (temperature, top-k, top-p, min-p), then one draw.
//  1. Candidates: the C = min(vocab, top_k or 1024, 1024) largest logits, found by a
//     4-pass radix select on order-preserving 32-bit keys (8 bits a pass, a 256-bin
//     shared histogram), then collected in index order (block scans) so that ties at the
//     threshold keep the lowest ids, as the CPU's stable sort does.
//  2. A bitonic sort of (key << 32 | ~index) descending in shared memory: logits
//     descending, lower id first on ties.
//  3. Softmax at the temperature in double over the candidates, top-p on the inclusive
//     prefix sums (smallest prefix with mass >= top_p), min-p against the best, the kept
//     mass renormalized.
//  4. u in [0, 1) from 53 bits of Philox4x32-10 at counter (step, row), key seed: each
//     (seed, step, row) draws one fixed number; the pick is the first candidate whose
//     cumulative probability exceeds u.
#include <curand_kernel.h>

#include <cmath>
#include <cstdint>

#include "cuda/model/sampling_launch.h"

namespace zc::cuda::detail {
namespace {

constexpr int kThreads = 256;
constexpr int kPer = kMaxSampleCandidates / kThreads;  // candidates per thread, blocked
static_assert(kPer * kThreads == kMaxSampleCandidates, "candidates split evenly");

// Monotone map float -> uint32 (larger float, larger key) for non-NaN values.
__device__ __forceinline__ uint32_t order_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ int cand_index(unsigned long long c) {
  return static_cast<int>(0xffffffffu - static_cast<uint32_t>(c & 0xffffffffull));
}

// Exclusive prefix over the CTA of one value per thread (thread order), and the total.
template <typename T>
__device__ T block_exclusive_scan(T v, T* total) {
  __shared__ T warp_total[kThreads / 32];
  const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
  T inc = v;
  for (int o = 1; o < 32; o *= 2) {
    const T n = __shfl_up_sync(0xffffffffu, inc, o);
    if (lane >= o) inc += n;
  }
  __syncthreads();  // earlier readers of warp_total are done
  if (lane == 31) warp_total[warp] = inc;
  __syncthreads();
  T before = T(0), all = T(0);
  for (int w = 0; w < kThreads / 32; ++w) {
    if (w < warp) before += warp_total[w];
    all += warp_total[w];
  }
  *total = all;
  return before + inc - v;
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* __restrict__ logits, int vocab, SampleArgs a,
                  int32_t* __restrict__ out, double* __restrict__ dist) {
  __shared__ unsigned long long cand[kMaxSampleCandidates];
  __shared__ unsigned hist[256];
  __shared__ int s_nan, s_bin, s_remaining, s_cut, s_pick, s_last;
  __shared__ double s_pmax;
  const int tid = static_cast<int>(threadIdx.x);
  const float* row = logits + static_cast<size_t>(blockIdx.x) * static_cast<size_t>(vocab);
  const int cap = a.top_k > 0 && a.top_k < kMaxSampleCandidates ? a.top_k : kMaxSampleCandidates;
  const int n_cand = vocab < cap ? vocab : cap;
  if (tid == 0) s_nan = 0;

  // 1. Radix select of the n_cand-th largest key: after pass p the top 8(p+1) bits of the
  // threshold are known, and `remaining` counts how deep into the matching keys it lies.
  uint32_t prefix = 0, mask = 0;
  int remaining = n_cand;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = tid; b < 256; b += kThreads) hist[b] = 0;
    __syncthreads();
    bool nan = false;
    for (int i = tid; i < vocab; i += kThreads) {
      const float v = row[i];
      nan |= isnan(v);
      const uint32_t u = order_key(v);
      if ((u & mask) == prefix) atomicAdd(&hist[(u >> shift) & 0xffu], 1u);
    }
    if (nan) s_nan = 1;
    __syncthreads();
    if (tid == 0) {
      int above = 0;
      for (int b = 255; b >= 0; --b) {
        const int h = static_cast<int>(hist[b]);
        if (above + h >= remaining || b == 0) {
          s_bin = b;
          s_remaining = remaining - above;
          break;
        }
        above += h;
      }
    }
    __syncthreads();
    if (s_nan) {
      if (tid == 0) out[blockIdx.x] = -1;
      return;
    }
    prefix |= static_cast<uint32_t>(s_bin) << shift;
    mask |= 0xffu << shift;
    remaining = s_remaining;
  }
  const uint32_t threshold = prefix;
  const int ties_needed = remaining, n_above = n_cand - remaining;

  // Collect in index order: every key above the threshold, and the first ties_needed
  // keys equal to it.
  int run_above = 0, run_ties = 0;
  for (int base = 0; base < vocab; base += kThreads) {
    const int i = base + tid;
    const uint32_t u = i < vocab ? order_key(row[i]) : 0u;
    const int is_above = i < vocab && u > threshold, is_tie = i < vocab && u == threshold;
    int total = 0;
    const int pos = block_exclusive_scan(is_above + (is_tie << 16), &total);
    const unsigned long long c = (static_cast<unsigned long long>(u) << 32) | (0xffffffffu - static_cast<uint32_t>(i));
    if (is_above) cand[run_above + (pos & 0xffff)] = c;
    const int tie_slot = run_ties + (pos >> 16);
    if (is_tie && tie_slot < ties_needed) cand[n_above + tie_slot] = c;
    run_above += total & 0xffff;
    run_ties += total >> 16;
    if (run_above >= n_above && run_ties >= ties_needed) break;  // uniform over the CTA
  }
  int n_sort = 1;
  while (n_sort < n_cand) n_sort *= 2;
  for (int j = n_cand + tid; j < n_sort; j += kThreads) cand[j] = 0ull;  // sorts last
  __syncthreads();

  // 2. Bitonic sort, descending.
  for (int k = 2; k <= n_sort; k *= 2) {
    for (int j = k / 2; j > 0; j /= 2) {
      for (int i = tid; i < n_sort; i += kThreads) {
        const int ixj = i ^ j;
        if (ixj > i) {
          const unsigned long long x = cand[i], y = cand[ixj];
          if ((i & k) == 0 ? x < y : x > y) {
            cand[i] = y;
            cand[ixj] = x;
          }
        }
      }
      __syncthreads();
    }
  }

  // 3. Softmax at the temperature (double, as engine::Sampler), candidates blocked
  // kPer to a thread in sorted order.
  const double t = static_cast<double>(a.temperature);
  const double best = static_cast<double>(row[cand_index(cand[0])]) / t;
  double p[kPer];
  double local = 0.0;
  for (int q = 0; q < kPer; ++q) {
    const int j = tid * kPer + q;
    p[q] = j < n_cand ? exp(static_cast<double>(row[cand_index(cand[j])]) / t - best) : 0.0;
    local += p[q];
  }
  double sum = 0.0;
  (void)block_exclusive_scan(local, &sum);
  local = 0.0;
  for (int q = 0; q < kPer; ++q) local += p[q] /= sum;
  double mass_all = 0.0;
  const double before = block_exclusive_scan(local, &mass_all);
  double cum[kPer];
  double run = before;
  for (int q = 0; q < kPer; ++q) cum[q] = run += p[q];

  // top-p: keep = 1 + the first j whose inclusive mass reaches top_p.
  if (tid == 0) s_cut = n_cand, s_pmax = p[0];  // thread 0 holds j = 0, the best
  __syncthreads();
  if (a.top_p < 1.0f) {
    for (int q = 0; q < kPer; ++q) {
      const int j = tid * kPer + q;
      if (j < n_cand && cum[q] >= static_cast<double>(a.top_p)) {
        atomicMin(&s_cut, j + 1);
        break;
      }
    }
  }
  __syncthreads();
  int keep = s_cut;
  // min-p: the first j >= 1 (within keep) with p < min_p * p_max ends the kept prefix.
  if (a.min_p > 0.0f) {
    const double floor_p = static_cast<double>(a.min_p) * s_pmax;
    __syncthreads();  // every thread has read keep before s_cut moves again
    for (int q = 0; q < kPer; ++q) {
      const int j = tid * kPer + q;
      if (j >= 1 && j < keep && p[q] < floor_p) {
        atomicMin(&s_cut, j);
        break;
      }
    }
    __syncthreads();
    keep = s_cut;
  }
  double kept_local = 0.0;
  for (int q = 0; q < kPer; ++q) kept_local += tid * kPer + q < keep ? p[q] : 0.0;
  double kept = 0.0;
  (void)block_exclusive_scan(kept_local, &kept);

  // 4. The draw: the first kept candidate whose cumulative probability exceeds u.
  const uint4 bits = curand_Philox4x32_10(
      make_uint4(static_cast<uint32_t>(a.step), static_cast<uint32_t>(a.step >> 32), blockIdx.x, 0u),
      make_uint2(static_cast<uint32_t>(a.seed), static_cast<uint32_t>(a.seed >> 32)));
  const unsigned long long r53 =
      ((static_cast<unsigned long long>(bits.x) << 32) | bits.y) >> 11;
  const double u = static_cast<double>(r53) * 0x1p-53;
  if (tid == 0) s_pick = keep, s_last = 0;
  __syncthreads();
  for (int q = 0; q < kPer; ++q) {
    const int j = tid * kPer + q;
    if (j >= keep) break;
    if (p[q] > 0.0) atomicMax(&s_last, j);
    if (cum[q] / kept > u && p[q] > 0.0) {
      atomicMin(&s_pick, j);
      break;
    }
  }
  __syncthreads();
  if (tid == 0) {
    // Rounding can leave u above the last cumulative value: the last candidate with
    // mass takes that sliver, as engine::Sampler does.
    const int pick = s_pick < keep ? s_pick : s_last;
    out[blockIdx.x] = cand_index(cand[pick]);
  }
  if (dist != nullptr) {
    for (int q = 0; q < kPer; ++q) {
      const int j = tid * kPer + q;
      if (j < keep) dist[cand_index(cand[j])] = p[q] / kept;
    }
  }
}

}  // namespace

cudaError_t launch_sample_rows(const float* logits, int rows, int vocab, const SampleArgs& args,
                               int32_t* out, double* dist, cudaStream_t s) {
  sample_kernel<<<static_cast<unsigned>(rows), kThreads, 0, s>>>(logits, vocab, args, out, dist);
  return cudaGetLastError();
}

}  // namespace zc::cuda::detail
