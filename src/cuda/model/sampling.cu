// The sampling kernel (sampling.h): one CTA per drawn row, engine::Sampler's filters in
// its order (temperature, top-k, top-p, min-p) and its walk in id order, so that a draw
// with the uniform u picks the token engine::Sampler picks with it.
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
// Cost (H200, 8 rows of Llama 3's 128256 logits in one launch, `ZC_TIMING=1 test_cuda
// --gtest_filter=CudaSampling.Timing*`): 84 us with no filter, 514 us with the CLI's
// defaults, 586 us with top-p 0.9. The selects' first two passes are most of it: their
// bins are many per warp, and a warp adds each bin's share in turn.
#include <cfloat>
#include <climits>
#include <cstdint>

#include "cuda/model/sampling_launch.h"

namespace zc::cuda::detail {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kBins = 256;
constexpr unsigned kFull = 0xffffffffu;

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
  uint64_t hist[kBins];
  uint64_t warp_sum[kWarps];
  uint32_t kmax;
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

// Loads a thread has in flight in a pass: a pass that waited for each load in turn was
// bound by L2's latency (60k cycles a pass at Llama 3's vocabulary for 125 loads a thread).
constexpr int kUnroll = 8;

// f(value, i, valid) for i = threadIdx.x + kThreads * j, in rounds of kUnroll loads
// issued before any is used; every thread calls f equally often (valid false past n),
// so f may use warp-wide intrinsics.
template <class F>
__device__ __forceinline__ void strided_pass(const float* row, int n, const F& f) {
  const int tid = static_cast<int>(threadIdx.x);
  for (int base = 0; base < n; base += kThreads * kUnroll) {
    float v[kUnroll];
#pragma unroll
    for (int j = 0; j < kUnroll; ++j) {
      const int i = base + j * kThreads + tid;
      v[j] = i < n ? row[i] : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < kUnroll; ++j) {
      const int i = base + j * kThreads + tid;
      f(v[j], i, i < n);
    }
  }
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
// total weight, after the first pass, and capped at the total.
template <class Weight, class Target>
__device__ Selected radix_select(const float* row, int n, const Weight& weight, const Target& target, Shared& sh,
                                 uint64_t* warp_hists) {
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32;
  uint64_t* mine = warp_hists + (tid / 32) * kBins;
  uint32_t prefix = 0, mask = 0;
  uint64_t above = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = tid; b < kWarps * kBins; b += kThreads) warp_hists[b] = 0;
    __syncthreads();
    strided_pass(row, n, [&](float v, int i, bool valid) {
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
    __syncthreads();
    if (tid < 32) {
      // Lane l holds bins 255 - 8l down to 248 - 8l: their sum, a scan from the top, and
      // the first lane whose running weight reaches the target walks its eight bins.
      uint64_t s = 0;
      for (int q = 0; q < 8; ++q) s += sh.hist[255 - 8 * lane - q];
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
          const uint64_t h = sh.hist[b];
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
    __syncthreads();  // every thread has read sh before the next pass writes it
  }
  return Selected{prefix, above, sh.at, sh.want};
}

// The ids of a row split into one contiguous chunk per warp, which its lanes read 32
// consecutive ids at a time (coalesced; a run of ids per thread cost ~70 us a pass at
// Llama 3's vocabulary, a cache line per lane per load).
struct WarpChunk {
  int lo, hi;
  __device__ WarpChunk(int n) {
    const int per = (n + kWarps - 1) / kWarps;
    lo = min(n, static_cast<int>(threadIdx.x / 32) * per);
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

// The warps' exclusive prefix of one value per warp (lane 0's), and the total.
__device__ uint64_t warp_exclusive_scan(uint64_t v, uint64_t* total, Shared& sh) {
  const int lane = static_cast<int>(threadIdx.x % 32), warp = static_cast<int>(threadIdx.x / 32);
  __syncthreads();  // earlier readers of warp_sum are done
  if (lane == 0) sh.warp_sum[warp] = v;
  __syncthreads();
  uint64_t before = 0, all = 0;
  for (int w = 0; w < kWarps; ++w) {
    if (w < warp) before += sh.warp_sum[w];
    all += sh.warp_sum[w];
  }
  *total = all;
  return before;
}

__device__ __forceinline__ uint64_t warp_sum(uint64_t v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

// The id of the m-th (1-based) token in id order with key `key` that `member` admits
// (INT_MAX when fewer).
template <class Member>
__device__ int nth_tie(const float* row, int n, uint32_t key, uint64_t m, const Member& member, Shared& sh) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const WarpChunk c(n);
  const auto tie = [&](float v, int i, bool valid) {
    const uint32_t k = order_key(v);
    return valid && k == key && member(k, i);
  };
  uint64_t count = 0;
  chunk_pass(row, c, [&](float v, int i, bool valid) { count += __popc(__ballot_sync(kFull, tie(v, i, valid))); });
  if (threadIdx.x == 0) sh.token = INT_MAX;
  uint64_t total = 0;
  uint64_t seen = warp_exclusive_scan(count, &total, sh);
  if (seen < m && m <= seen + count) {
    // This warp's chunk holds it: the same rounds again, to the ballot that reaches m.
    bool found = false;
    chunk_pass(row, c, [&](float v, int i, bool valid) {
      const unsigned ties = __ballot_sync(kFull, !found && tie(v, i, valid));
      const uint64_t here = static_cast<uint64_t>(__popc(ties));
      if (!found && seen + here >= m) {
        const int at = static_cast<int>(__fns(ties, 0, static_cast<int>(m - seen)));
        if (lane == at) sh.token = i;
        found = true;
      }
      seen += here;
    });
  }
  __syncthreads();
  const int id = sh.token;
  __syncthreads();  // read before sh.token is written again
  return id;
}

// The cut of a select whose run of ties at its key weighs `each` per token: the ties
// the target needs, in id order, found only when fewer than all of them.
template <class Member>
__device__ Cut cut_at(const float* row, int n, const Selected& s, uint64_t each, const Member& member, Shared& sh) {
  Cut c;
  c.key = s.key;
  if (each == 0) return c;  // not reached: a selected key has weight
  const uint64_t needed = (s.want + each - 1) / each, ties = s.at / each;
  if (needed < ties) c.last_tie = nth_tie(row, n, s.key, needed, member, sh);
  return c;
}

__global__ void __launch_bounds__(kThreads)
    draw_kernel(const float* __restrict__ logits, int n, const DrawArgs* __restrict__ draws,
                int32_t* __restrict__ out, double* __restrict__ dist) {
  __shared__ Shared sh;
  extern __shared__ uint64_t warp_hists[];  // kWarps x kBins
  const int tid = static_cast<int>(threadIdx.x);
  const DrawArgs a = draws[blockIdx.x];
  const float* row = logits + static_cast<size_t>(a.row) * static_cast<size_t>(n);

  // 1. NaN check and the largest logit.
  int nan = 0;
  uint32_t kmax = 0;
  strided_pass(row, n, [&](float v, int, bool valid) {
    nan |= valid && isnan(v);
    if (valid && !isnan(v)) kmax = max(kmax, order_key(v));
  });
  if (tid == 0) sh.kmax = 0;
  kmax = __reduce_max_sync(kFull, kmax);
  if (__syncthreads_or(nan)) {
    if (tid == 0) out[a.row] = -1;
    return;
  }
  if (tid % 32 == 0) atomicMax(&sh.kmax, kmax);
  __syncthreads();
  const float lmax = key_value(sh.kmax);
  if (!isfinite(lmax)) {  // +inf, or every logit -inf: engine::Sampler's error
    if (tid == 0) out[a.row] = -2;
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
        row, n, [](uint32_t, int) { return uint64_t{1}; }, [k](uint64_t) { return k; }, sh, warp_hists);
    by_k = cut_at(row, n, s, 1, all, sh);
  }
  const auto in_k = [by_k](uint32_t k, int i) { return by_k.keeps(k, i); };

  // 3. top-p over what top-k keeps: the shortest ranked prefix whose terms reach top_p
  // of their sum (at least the best token: its term is 2^shift >= 1).
  Cut by_p;
  if (a.top_p < 1.0f) {
    const double top_p = static_cast<double>(a.top_p);
    const Selected s = radix_select(
        row, n, [&](uint32_t k, int i) { return in_k(k, i) ? fixed_term(k) : uint64_t{0}; },
        [top_p](uint64_t total) { return static_cast<uint64_t>(ceil(top_p * static_cast<double>(total))); }, sh,
        warp_hists);
    by_p = cut_at(row, n, s, fixed_term(s.key), in_k, sh);
  }

  // 4-5. min-p on the term, and the walk over the kept terms in id order.
  const float min_p = a.min_p;
  const auto kept_term = [&](float l, int i) -> uint64_t {
    const uint32_t k = order_key(l);
    if (!by_k.keeps(k, i) || !by_p.keeps(k, i)) return 0;
    const float e = terms.exp_term(l);
    return min_p > 0.0f && !(e >= min_p) ? 0 : terms.fixed(e);
  };
  const int lane = tid % 32;
  const WarpChunk c(n);
  uint64_t mine = 0;
  chunk_pass(row, c, [&](float v, int i, bool valid) { mine += valid ? kept_term(v, i) : 0; });
  mine = warp_sum(mine);
  uint64_t total = 0;
  const uint64_t before = warp_exclusive_scan(mine, &total, sh);
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
    for (int i = tid; i < n; i += kThreads)
      dist[i] = static_cast<double>(kept_term(row[i], i)) / static_cast<double>(total);
  }
}

}  // namespace

cudaError_t launch_draw_rows(const float* logits, int vocab, const DrawArgs* draws, int n, int32_t* out,
                             double* dist, cudaStream_t s) {
  // Above the default 48 KB of dynamic shared memory: opted in once (per device the
  // process uses; setting it again is harmless).
  static const cudaError_t opt_in =
      cudaFuncSetAttribute(draw_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kWarpHistBytes));
  if (opt_in != cudaSuccess) return opt_in;
  draw_kernel<<<static_cast<unsigned>(n), kThreads, kWarpHistBytes, s>>>(logits, vocab, draws, out, dist);
  return cudaGetLastError();
}

}  // namespace zc::cuda::detail
