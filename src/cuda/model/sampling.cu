// The sampling kernel (sampling.h): a group of CTAs per drawn row (sampling_group.cuh),
// engine::Sampler's filters in its order (temperature, top-k, top-p, min-p) and its walk
// in id order, so that a draw with the uniform u picks the token engine::Sampler picks
// with it.
//
// Every sum is exact and independent of the thread count and order: a token's softmax
// term exp((l - l_max) / T) is held in fixed point, rounded to a multiple of 2^-s where
// s = 62 - ceil(log2 vocab) (2^-45 at Llama 3's vocabulary), so that a row's sum fits
// 64 bits and adds in any order give the same bits. (Terms below 2^-(s+1) round to 0 and
// cannot be drawn: together at most vocab * 2^-(s+1) of the best token's term, 2^-29 at
// Llama 3's vocabulary.)
//
// The passes over a row (each a read of the row from L2, eight loads in flight a thread;
// each term recomputed from its logit in float, ~1e-7 relative):
//  1. its NaN check and largest logit;
//  2. top-k: the k-th key in rank order (larger logit first, lower id on ties, as the CPU's
//     stable sort) by a radix select over order-preserving 32-bit keys, 8 bits a pass,
//     weighing each token 1; if the k-th falls inside a run of equal logits, the id of
//     the last tie it keeps;
//  3. top-p: the same select weighing each kept token by its term, to the first rank
//     whose running mass reaches top_p times the kept mass (the shortest such prefix);
//  4. min-p: a threshold on the term (the best's is exp(0) = 1), no pass of its own;
//  5. the draw: each warp sums the kept terms of a contiguous chunk of ids (read 32 at a
//     time), the chunks' sums are scanned in order, and the warp whose chunk holds
//     u * (kept mass) walks it.
//
// A row is drawn by a group of CTAs (`RowGroup`, sampling_group.cuh): on Hopper a
// thread block cluster of up to 16 CTAs, each taking an interleaved share of every pass
// and exchanging its partial results (the max, the histograms, the chunk sums) through
// distributed shared memory; elsewhere one CTA. Every CTA of a group then takes the same decisions from the same
// exact sums. One CTA a row left 124 of an H200's 132 SMs idle for a batch of 8 rows.
//
// Cost (H200, 8 rows of Llama 3's 128256 logits in one launch, `ZC_TIMING=1 test_cuda
// --gtest_filter=CudaSampling.Timing*`): 25 us with no filter, 111 us with the CLI's
// defaults, 105 us with top-p 0.9 at 8 CTAs a row (89, 547 and 604 us at one; 16, which
// do not fit every GPC at once, 36, 163 and 124 us). The selects' first two passes are
// most of it: their bins are many per warp, and a warp adds each bin's share in turn.
#include <algorithm>
#include <cfloat>
#include <climits>
#include <cstdint>

#include "cuda/model/sampling_group.cuh"
#include "cuda/model/sampling_launch.h"

namespace zc::cuda::detail {
namespace {

using namespace sampling;  // NOLINT(google-build-using-namespace): the kernel's own helpers

constexpr int kBins = 256;

// Monotone map float -> uint32 (larger float, larger key) for non-NaN values; and back.
__device__ __forceinline__ uint32_t order_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float key_value(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// A token's softmax term in fixed point: round(exp((l - l_max) / T) * 2^shift), the
// exponent's argument in float (~1e-7 relative: within the 1e-5 the tests hold; in
// double, its conversions cost as much as the rest of a pass).
struct Terms {
  float lmax, inv_t;  // inv_t capped at FLT_MAX: T -> 0 keeps only the best tokens
  float scale;        // 2^shift
  __device__ __forceinline__ float exp_term(float l) const { return expf((l - lmax) * inv_t); }
  __device__ __forceinline__ uint64_t fixed(float e) const { return __float2ull_rn(e * scale); }
};

// The tokens a rank cut keeps: every key above `key`, and those equal to it up to id
// `last_tie` (the cut's run of ties keeps its lowest ids).
struct Cut {
  uint32_t key = 0;
  int last_tie = INT_MAX;
  __device__ __forceinline__ bool keeps(uint32_t k, int i) const { return k > key || (k == key && i <= last_tie); }
};

struct Shared {
  uint64_t hist[kBins];        // this CTA's histogram of a select's pass
  uint64_t group_hist[kBins];  // the group's
  GroupScan scan;
  uint32_t kmax;
  int nan;
  int bin, token;
  uint64_t above, at, want;
};

// Each warp's own histogram of a select's pass (dynamic shared memory, kWarps x kBins),
// summed into Shared::hist after the pass: 32 warps adding 64-bit weights into one
// shared histogram cost 700 us a row at Llama 3's vocabulary.
constexpr size_t kWarpHistBytes = sizeof(uint64_t) * kWarps * kBins;

// hist[bin] += w over the lanes of the warp that share a bin: one add per distinct bin
// among the lanes (a first pass puts most of a row in a few bins), by the group's lowest
// lane, into the warp's own histogram (no other warp writes it). Every lane calls it
// (bin < 0: nothing). The groups are found by ballots, not __match_any_sync (~100
// cycles an SM each on an H200: 4/5 of a pass). The 64-bit weights add as three 22-bit
// parts (their 32-lane sums fit 32 bits); the whole stays exact since a row's weights
// sum below 2^63.
__device__ __forceinline__ void hist_add(uint64_t* hist, int bin, uint64_t w) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  unsigned left = __ballot_sync(kFull, bin >= 0);
  while (left != 0) {  // warp-uniform
    const int leader = __ffs(left) - 1;
    const int b = __shfl_sync(kFull, bin, leader);
    const bool in = bin == b;
    const uint64_t x = in ? w : 0;
    const uint32_t p0 = __reduce_add_sync(kFull, static_cast<uint32_t>(x & 0x3fffffu));
    const uint32_t p1 = __reduce_add_sync(kFull, static_cast<uint32_t>((x >> 22) & 0x3fffffu));
    const uint32_t p2 = __reduce_add_sync(kFull, static_cast<uint32_t>(x >> 44));
    if (lane == leader)
      hist[b] += static_cast<uint64_t>(p0) + (static_cast<uint64_t>(p1) << 22) + (static_cast<uint64_t>(p2) << 44);
    left &= ~__ballot_sync(kFull, in);
  }
  __syncwarp();  // the adds are seen by the lanes that add next
}

struct Selected {
  uint32_t key;    // the key where the running weight, from the top, reaches the target
  uint64_t above;  // the weight of the keys above it
  uint64_t at;     // the weight of the keys equal to it
  uint64_t want;   // the weight the keys equal to it must add to reach the target (>= 1)
};

// Radix select from the top: the key K where the running weight of the keys in
// descending order first reaches the target, W(> K) < target <= W(>= K), W summing
// weight(key, id) (0 for a token not counted). target(total) is asked once, with the
// total weight, after the first pass, and capped at the total. Each CTA of the group
// counts its share of a pass; every CTA then sums the group's histograms and takes the
// same bin.
template <class Weight, class Target>
__device__ Selected radix_select(const float* row, int n, const RowGroup& g, const Weight& weight, const Target& target,
                                 Shared& sh, uint64_t* warp_hists) {
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32;
  uint64_t* mine = warp_hists + (tid / 32) * kBins;
  uint32_t prefix = 0, mask = 0;
  uint64_t above = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = tid; b < kWarps * kBins; b += kThreads) warp_hists[b] = 0;
    __syncthreads();
    strided_pass(row, n, g, [&](float v, int i, bool valid) {
      int bin = -1;
      uint64_t w = 0;
      if (valid) {
        const uint32_t k = order_key(v);
        if ((k & mask) == prefix) {
          w = weight(k, i);
          if (w != 0) bin = static_cast<int>((k >> shift) & 0xffu);
        }
      }
      hist_add(mine, bin, w);
    });
    __syncthreads();
    for (int b = tid; b < kBins; b += kThreads) {
      uint64_t sum = 0;
      for (int w = 0; w < kWarps; ++w) sum += warp_hists[w * kBins + b];
      sh.hist[b] = sum;
    }
    g.sync();  // every CTA's histogram is complete
    for (int b = tid; b < kBins; b += kThreads) {
      uint64_t sum = 0;
      for (int r = 0; r < g.size; ++r) sum += g.at(sh.hist, r)[b];
      sh.group_hist[b] = sum;
    }
    __syncthreads();
    if (tid < 32) {
      // Lane l holds bins 255 - 8l down to 248 - 8l: their sum, a scan from the top, and
      // the first lane whose running weight reaches the target walks its eight bins.
      uint64_t s = 0;
      for (int q = 0; q < 8; ++q) s += sh.group_hist[255 - 8 * lane - q];
      uint64_t inc = s;
      for (int o = 1; o < 32; o *= 2) {
        const uint64_t v = __shfl_up_sync(kFull, inc, o);
        if (lane >= o) inc += v;
      }
      uint64_t want = sh.want;
      if (shift == 24) {
        const uint64_t total = __shfl_sync(kFull, inc, 31);
        want = min(target(total), total);
        if (want == 0) want = 1;  // no weight at all: the walk ends at bin 0
      }
      const unsigned hit = __ballot_sync(kFull, inc >= want);
      const int first = hit ? __ffs(hit) - 1 : 31;
      if (lane == first) {
        uint64_t acc = inc - s;
        for (int q = 0; q < 8; ++q) {
          const int b = 255 - 8 * lane - q;
          const uint64_t h = sh.group_hist[b];
          if (acc + h >= want || b == 0) {
            sh.bin = b;
            sh.above = acc;
            sh.at = h;
            sh.want = want - min(acc, want);
            break;
          }
          acc += h;
        }
      }
    }
    __syncthreads();
    prefix |= static_cast<uint32_t>(sh.bin) << shift;
    mask |= 0xffu << shift;
    above += sh.above;
    // Every thread has read sh, and every CTA this one's histogram, before the next
    // pass writes them.
    g.sync();
  }
  return Selected{prefix, above, sh.at, sh.want};
}

// The id of the m-th (1-based) token in id order with key `key` that `member` admits
// (INT_MAX when fewer). The warp that finds it writes it into rank 0's shared memory.
template <class Member>
__device__ int nth_tie(const float* row, int n, uint32_t key, uint64_t m, const Member& member, const RowGroup& g,
                       Shared& sh) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const WarpChunk c(n, g);
  const auto tie = [&](float v, int i, bool valid) {
    const uint32_t k = order_key(v);
    return valid && k == key && member(k, i);
  };
  uint64_t count = 0;
  chunk_pass(row, c, [&](float v, int i, bool valid) { count += __popc(__ballot_sync(kFull, tie(v, i, valid))); });
  int* token = g.at(&sh.token, 0);
  if (g.rank == 0 && threadIdx.x == 0) sh.token = INT_MAX;  // before the scan's barriers
  uint64_t total = 0;
  uint64_t seen = warp_exclusive_scan(count, &total, g, sh.scan);
  if (seen < m && m <= seen + count) {
    // This warp's chunk holds it: the same rounds again, to the ballot that reaches m.
    bool found = false;
    chunk_pass(row, c, [&](float v, int i, bool valid) {
      const unsigned ties = __ballot_sync(kFull, !found && tie(v, i, valid));
      const uint64_t here = static_cast<uint64_t>(__popc(ties));
      if (!found && seen + here >= m) {
        const int at = static_cast<int>(__fns(ties, 0, static_cast<int>(m - seen)));
        if (lane == at) *token = i;
        found = true;
      }
      seen += here;
    });
  }
  g.sync();
  const int id = *token;
  g.sync();  // read everywhere before rank 0's token is set again
  return id;
}

// The cut of a select whose run of ties at its key weighs `each` per token: the ties
// the target needs, in id order, found only when fewer than all of them.
template <class Member>
__device__ Cut cut_at(const float* row, int n, const RowGroup& g, const Selected& s, uint64_t each,
                      const Member& member, Shared& sh) {
  Cut c;
  c.key = s.key;
  if (each == 0) return c;  // not reached: a selected key has weight
  const uint64_t needed = (s.want + each - 1) / each, ties = s.at / each;
  if (needed < ties) c.last_tie = nth_tie(row, n, s.key, needed, member, g, sh);
  return c;
}

__global__ void __launch_bounds__(kThreads)
    draw_kernel(const float* __restrict__ logits, int n, const DrawArgs* __restrict__ draws,
                int32_t* __restrict__ out, double* __restrict__ dist) {
  __shared__ Shared sh;
  extern __shared__ uint64_t warp_hists[];  // kWarps x kBins
  const RowGroup g;
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32;
  const DrawArgs a = draws[blockIdx.x / static_cast<unsigned>(g.size)];
  const float* row = logits + static_cast<size_t>(a.row) * static_cast<size_t>(n);

  // 1. NaN check and the largest logit: this CTA's, then the group's (lane r reads CTA r's).
  int nan = 0;
  uint32_t kmax = 0;
  strided_pass(row, n, g, [&](float v, int, bool valid) {
    nan |= valid && isnan(v);
    if (valid && !isnan(v)) kmax = max(kmax, order_key(v));
  });
  if (tid == 0) sh.kmax = 0;
  kmax = __reduce_max_sync(kFull, kmax);
  nan = __syncthreads_or(nan);
  if (tid % 32 == 0) atomicMax(&sh.kmax, kmax);
  if (tid == 0) sh.nan = nan;
  g.sync();
  kmax = lane < g.size ? *g.at(&sh.kmax, lane) : 0u;
  nan = lane < g.size ? *g.at(&sh.nan, lane) : 0;
  kmax = __reduce_max_sync(kFull, kmax);
  nan = __reduce_or_sync(kFull, static_cast<unsigned>(nan));
  const float lmax = key_value(kmax);
  if (nan || !isfinite(lmax)) {  // +inf, or every logit -inf: engine::Sampler's error
    if (g.rank == 0 && tid == 0) out[a.row] = nan ? -1 : -2;
    g.sync();  // no CTA leaves while another reads its shared memory
    return;
  }
  const int bits = n > 1 ? 32 - __clz(n - 1) : 0;  // ceil(log2 n)
  const Terms terms{lmax, fminf(1.0f / a.temperature, FLT_MAX), exp2f(static_cast<float>(62 - bits))};
  const auto fixed_term = [&terms](uint32_t k) { return terms.fixed(terms.exp_term(key_value(k))); };

  // 2. top-k: the k first in rank order, each weighing 1.
  Cut by_k;
  if (a.top_k > 0 && a.top_k < n) {
    const uint64_t k = static_cast<uint64_t>(a.top_k);
    const auto all = [](uint32_t, int) { return true; };
    const Selected s = radix_select(
        row, n, g, [](uint32_t, int) { return uint64_t{1}; }, [k](uint64_t) { return k; }, sh, warp_hists);
    by_k = cut_at(row, n, g, s, 1, all, sh);
  }
  const auto in_k = [by_k](uint32_t k, int i) { return by_k.keeps(k, i); };

  // 3. top-p over what top-k keeps: the shortest ranked prefix whose terms reach top_p
  // of their sum (at least the best token: its term is 2^shift >= 1).
  Cut by_p;
  if (a.top_p < 1.0f) {
    const double top_p = static_cast<double>(a.top_p);
    const Selected s = radix_select(
        row, n, g, [&](uint32_t k, int i) { return in_k(k, i) ? fixed_term(k) : uint64_t{0}; },
        [top_p](uint64_t total) { return static_cast<uint64_t>(ceil(top_p * static_cast<double>(total))); }, sh,
        warp_hists);
    by_p = cut_at(row, n, g, s, fixed_term(s.key), in_k, sh);
  }

  // 4-5. min-p on the term, and the walk over the kept terms in id order.
  const float min_p = a.min_p;
  const auto kept_term = [&](float l, int i) -> uint64_t {
    const uint32_t k = order_key(l);
    if (!by_k.keeps(k, i) || !by_p.keeps(k, i)) return 0;
    const float e = terms.exp_term(l);
    return min_p > 0.0f && !(e >= min_p) ? 0 : terms.fixed(e);
  };
  const WarpChunk c(n, g);
  uint64_t mine = 0;
  chunk_pass(row, c, [&](float v, int i, bool valid) { mine += valid ? kept_term(v, i) : 0; });
  mine = warp_sum(mine);
  uint64_t total = 0;
  const uint64_t before = warp_exclusive_scan(mine, &total, g, sh.scan);
  // u * total, rounded down and below the total (total >= 1: the best token is kept).
  uint64_t target = static_cast<uint64_t>(a.u * static_cast<double>(total));
  if (target >= total) target = total - 1;
  if (before <= target && target < before + mine) {
    // The warp whose chunk holds the target walks it 32 ids at a time: the first lane
    // whose running sum passes the target (its term is > 0) is the token.
    uint64_t acc = before;
    bool found = false;
    chunk_pass(row, c, [&](float v, int i, bool valid) {
      if (found) return;  // warp-uniform
      uint64_t inc = valid ? kept_term(v, i) : 0;
      for (int o = 1; o < 32; o *= 2) {
        const uint64_t x = __shfl_up_sync(kFull, inc, o);
        if (lane >= o) inc += x;
      }
      const unsigned hit = __ballot_sync(kFull, target < acc + inc);
      if (hit != 0) {
        if (lane == __ffs(hit) - 1) out[a.row] = i;
        found = true;
      }
      acc += __shfl_sync(kFull, inc, 31);
    });
  }
  if (dist != nullptr) {
    for (int i = g.thread(); i < n; i += g.threads())
      dist[i] = static_cast<double>(kept_term(row[i], i)) / static_cast<double>(total);
  }
  g.sync();  // no CTA leaves while another reads its shared memory (the scan's sums)
}

// Above the default 48 KB of dynamic shared memory, and clusters above the portable 8
// CTAs: opted in once (per device the process uses; setting it again is harmless).
cudaError_t opt_in() {
  static const cudaError_t result = [] {
    const cudaError_t e =
        cudaFuncSetAttribute(draw_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kWarpHistBytes));
    if (e != cudaSuccess) return e;
    int device = 0, clusters = 0;
    if (cudaGetDevice(&device) == cudaSuccess &&
        cudaDeviceGetAttribute(&clusters, cudaDevAttrClusterLaunch, device) == cudaSuccess && clusters)
      return cudaFuncSetAttribute(draw_kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
    return cudaSuccess;
  }();
  return result;
}

// The launch of n draws by ctas_per_row CTAs each (a cluster when above 1).
struct DrawLaunch {
  cudaLaunchConfig_t config{};
  cudaLaunchAttribute cluster[1];  // config.attrs points here: not copied
  DrawLaunch(const DrawLaunch&) = delete;
  DrawLaunch& operator=(const DrawLaunch&) = delete;
  DrawLaunch(int n, int ctas_per_row, cudaStream_t s) {
    config.gridDim = dim3(static_cast<unsigned>(n) * static_cast<unsigned>(ctas_per_row));
    config.blockDim = dim3(kThreads);
    config.dynamicSmemBytes = kWarpHistBytes;
    config.stream = s;
    cluster[0].id = cudaLaunchAttributeClusterDimension;
    cluster[0].val.clusterDim.x = static_cast<unsigned>(ctas_per_row);
    cluster[0].val.clusterDim.y = 1;
    cluster[0].val.clusterDim.z = 1;
    config.attrs = cluster;
    config.numAttrs = ctas_per_row > 1 ? 1 : 0;
  }
};

}  // namespace

cudaError_t largest_ctas_per_row(int limit, int* largest) {
  *largest = 1;
  if (const cudaError_t e = opt_in(); e != cudaSuccess) return e;
  int device = 0, clusters = 0;
  if (const cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) return e;
  if (const cudaError_t e = cudaDeviceGetAttribute(&clusters, cudaDevAttrClusterLaunch, device); e != cudaSuccess)
    return e;
  if (!clusters) return cudaSuccess;
  for (int c = std::min(limit, kMaxGroup); c > 1; --c) {
    DrawLaunch launch(c, c, nullptr);  // one row's cluster
    int active = 0;
    if (cudaOccupancyMaxActiveClusters(&active, draw_kernel, &launch.config) == cudaSuccess && active > 0) {
      *largest = c;
      return cudaSuccess;
    }
    (void)cudaGetLastError();  // a size the device refuses is an answer, not an error
  }
  return cudaSuccess;
}

cudaError_t launch_draw_rows(const float* logits, int vocab, const DrawArgs* draws, int n, int32_t* out,
                             double* dist, int ctas_per_row, cudaStream_t s) {
  if (ctas_per_row < 1 || ctas_per_row > kMaxGroup) return cudaErrorInvalidValue;
  if (const cudaError_t e = opt_in(); e != cudaSuccess) return e;
  DrawLaunch launch(n, ctas_per_row, s);
  return cudaLaunchKernelEx(&launch.config, draw_kernel, logits, vocab, draws, out, dist);
}

}  // namespace zc::cuda::detail
