// Quantized sets written straight into pages (page_launch.h, launch_quantize_sets):
// the rows of a set are read where they lie in the layer's k/v (through the set's
// per-head token list), with no gathered copy and no code matrix in between.
// Two kernels per call, both over (32-row page of either set, KV head):
//  1. statistics: per (block of rows, column) the key min and max and, for CSTQ, the
//     value max |v|, met through integer atomics on order-preserving keys (exact: min
//     and max do not depend on the order); non-finite keys and values are reported;
//  2. encode: each page turns its block's statistics into fp16 key lo/step and CSTQ
//     scales (the first page of a block also stores them), stages its 32 rows in
//     shared memory, fits each token's value groups and writes key codes, value codes
//     and value parameters in the layout of kv_page.h.
// The arithmetic is src/quant's, bit for bit (cuda/quant/affine.cuh; SPEC.md sections
// 1-2): lo = fp16(min), step = fp16((max - min) / L) from a double division, code =
// floor((x - lo) / step + 0.5) in double clamped to [0, L] (computed in float where that
// provably gives the same code: encode()), CSTQ scale = fp16(sqrt(max |v|)) and y = v /
// scale in IEEE float (no fast math in this file).
#include <cuda_fp16.h>

#include <cstdint>
#include <vector>

#include "cuda/kv/page_launch.h"
#include "cuda/quant/affine.cuh"

namespace zc::cuda::detail {
namespace {

constexpr int kMaxDim = 256;           // head dims 64, 128, 256 (kv_page.h)
constexpr int kMaxValueParams = 8 * 32;  // at most 8 value groups per token (gpu_cache.cpp)
constexpr int kEncodeThreads = 128;

__device__ __forceinline__ float to_half_and_back(float x) { return __half2float(__float2half_rn(x)); }

// quant::encode in double (affine.cuh), out of line: encode() below takes it for the
// rare elements whose float code could differ.
__device__ __noinline__ unsigned encode_exact(float x, uint16_t lo_bits, uint16_t step_bits, int levels) {
  return encode_affine(x, lo_bits, step_bits, levels);
}

// The same code from float arithmetic where that cannot change it: t = (x - lo) / step
// in float is within 4e-6 of the double t for t < levels + 1 <= 16 (three roundings of
// 2^-24 relative each, plus the + 0.5), so floor(t + 0.5) agrees unless t + 0.5 is within
// 1e-4 of an integer; those few go to the double path. (With a double division per
// element the page kernel took 110 us per prompt set under ncu at the Llama-3 shape.)
__device__ __forceinline__ unsigned encode(float x, float lo, float inv_step, uint16_t lo_bits, uint16_t step_bits,
                                           int levels) {
  if (step_bits == 0) return 0u;
  const float t = (x - lo) * inv_step;
  if (!(t >= 0.25f)) return 0u;  // NaN too; the double t is below 0.5
  if (t >= static_cast<float>(levels) + 0.75f) return static_cast<unsigned>(levels);
  const float r = t + 0.5f, f = floorf(r);
  if (r - f < 1e-4f || r - f > 1.0f - 1e-4f) return encode_exact(x, lo_bits, step_bits, levels);
  return static_cast<unsigned>(f) > static_cast<unsigned>(levels) ? static_cast<unsigned>(levels) : static_cast<unsigned>(f);
}

__device__ __forceinline__ float half_bits_to_float(uint16_t b) { return __half2float(__ushort_as_half(b)); }

// Grid x runs over the pages of set 0, then those of set 1: the set and page of a CTA,
// or -1 past the job's pages (a batch's grid covers its longest job).
__device__ __forceinline__ int page_of(const QuantizeJob& job, int* set_index) {
  const int x = static_cast<int>(blockIdx.x), pages0 = (job.sets[0].n + 31) / 32;
  *set_index = x < pages0 ? 0 : 1;
  if (x >= pages0 + (job.n_sets > 1 ? (job.sets[1].n + 31) / 32 : 0)) return -1;
  return x < pages0 ? x : x - pages0;
}

// A launch's job: the one passed by value, or job blockIdx.z of a batch (launch_quantize_batch).
template <bool kBatched>
__device__ __forceinline__ const QuantizeJob& job_of(const QuantizeJob& one, const QuantizeJob* many) {
  if constexpr (kBatched) return many[blockIdx.z];
  return one;
}

__device__ __forceinline__ int source_row(const QuantizeSet& set, int h, int r) {
  return set.idx != nullptr ? set.idx[static_cast<long long>(h) * set.idx_stride + r] : r;
}

// Statistics of row block `blk` of a set: [3][n_kv * d] words (key min complement, key
// max, value max |v|, as ordered() integers). The minimum is kept as the maximum of its
// complement, so that every statistic starts at 0 and grows with atomicMax.
__device__ __forceinline__ unsigned* block_stats(const QuantizeSet& set, int blk, int cols) {
  return set.stats + static_cast<size_t>(blk) * 3 * cols;
}

// Stages the page's 32 rows of x (keys or values of head h) in tile [32][pitch]: 16-byte
// loads, kLoads of them issued before any is used, zeros for rows past the set,
// fp16-rounded and divided by the CSTQ scales if asked.
constexpr int kLoads = 4;
__device__ void stage_rows(float* tile, int pitch, const float* __restrict__ x, const QuantizeJob& job, int h,
                           const int* rows, const float* scale, int tid) {
  const int d = job.d, vecs = 32 * d / 4, per_row = d / 4;
  for (int base = 0; base < vecs; base += kLoads * kEncodeThreads) {
    float4 r[kLoads];
#pragma unroll
    for (int u = 0; u < kLoads; ++u) {
      const int i = base + u * kEncodeThreads + tid, t = i / per_row;
      r[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (i < vecs && rows[t] >= 0) {
        r[u] = *reinterpret_cast<const float4*>(x + static_cast<long long>(rows[t]) * job.stride + h * d +
                                                4 * (i % per_row));
      }
    }
#pragma unroll
    for (int u = 0; u < kLoads; ++u) {
      const int i = base + u * kEncodeThreads + tid, t = i / per_row, c = 4 * (i % per_row);
      if (i >= vecs) continue;
      float e[4] = {r[u].x, r[u].y, r[u].z, r[u].w};
      if (rows[t] >= 0) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          if (job.via_fp16) e[j] = to_half_and_back(e[j]);
          if (scale != nullptr) e[j] = scale[c + j] > 0.0f ? e[j] / scale[c + j] : 0.0f;
        }
      }
      *reinterpret_cast<float4*>(tile + t * pitch + c) = make_float4(e[0], e[1], e[2], e[3]);
    }
  }
}

// 1. CTA (32 columns x 8 row lanes) per (32-row page of a set, KV head).
template <bool kBatched>
__global__ void __launch_bounds__(256) set_stats_kernel(const QuantizeJob one, const QuantizeJob* many) {
  const QuantizeJob& job = job_of<kBatched>(one, many);
  int si = 0;
  const int page = page_of(job, &si);
  if (page < 0) return;
  const int r0 = page * 32;
  const QuantizeSet& set = job.sets[si];
  const int h = static_cast<int>(blockIdx.y), d = job.d, cols = job.n_kv * d;
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  __shared__ float part[3][8][33];
  __shared__ int rows[32];
  if (ty == 0) rows[tx] = r0 + tx < set.n ? source_row(set, h, r0 + tx) : -1;
  __syncthreads();
  unsigned* st = block_stats(set, r0 / set.block_rows, cols) + h * d;
  for (int c0 = 0; c0 < d; c0 += 32) {
    const int c = c0 + tx;
    float mn = INFINITY, mx = -INFINITY, amax = 0.0f;
    float kr[4], vr[4];  // the four rows' loads in flight together
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int t = ty + 8 * u;
      kr[u] = vr[u] = 0.0f;
      if (rows[t] >= 0) {
        const long long off = static_cast<long long>(rows[t]) * job.stride + h * d + c;
        kr[u] = job.k[off], vr[u] = job.v[off];
      }
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int t = ty + 8 * u;
      if (rows[t] < 0) break;
      float kx = kr[u], vx = vr[u];
      if (job.via_fp16) kx = to_half_and_back(kx), vx = to_half_and_back(vx);
      const unsigned long long gi = static_cast<unsigned long long>(r0 + t) * cols + h * d + c;
      if (!isfinite(kx)) report(job.err, gi, kNonFinite);
      if (!isfinite(vx)) report(job.err, gi, kNonFinite);
      mn = fminf(mn, kx);
      mx = fmaxf(mx, kx);
      amax = fmaxf(amax, fabsf(vx));
    }
    part[0][ty][tx] = mn, part[1][ty][tx] = mx, part[2][ty][tx] = amax;
    __syncthreads();
    if (ty == 0) {
      for (int i = 1; i < 8; ++i) {
        mn = fminf(mn, part[0][i][tx]), mx = fmaxf(mx, part[1][i][tx]), amax = fmaxf(amax, part[2][i][tx]);
      }
      if (mx >= mn) {  // some finite or infinite key was seen
        atomicMax(st + c, ~ordered(mn));
        atomicMax(st + cols + c, ordered(mx));
      }
      if (job.cstq) atomicMax(st + 2 * cols + c, ordered(amax));
    }
    __syncthreads();
  }
}

// 2. CTA of 128 threads per (page of a set, KV head); dynamic shared memory: the page's
// 32 rows, pitch d + 4 floats (16-byte stores; reads across tokens at most 2-way
// bank conflicts).
template <bool kBatched>
__global__ void __launch_bounds__(kEncodeThreads, 8) encode_pages_kernel(const QuantizeJob one, const QuantizeJob* many) {
  const QuantizeJob& job = job_of<kBatched>(one, many);
  int si = 0;
  const int p = page_of(job, &si), row0 = p * 32;
  if (p < 0) return;
  const QuantizeSet& set = job.sets[si];
  const int h = static_cast<int>(blockIdx.y), d = job.d, cols = job.n_kv * d, pitch = d + 4;
  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  const int ntok = min(32, set.n - row0), levels = (1 << set.bits) - 1;
  const KvPage pg = job.table[(static_cast<size_t>(job.seq) * job.n_kv + h) * job.cap + set.page0 + p];
  extern __shared__ __align__(16) float tile[];  // [32][pitch]
  __shared__ uint16_t klo[kMaxDim], kstep[kMaxDim], vlo[kMaxValueParams], vstep[kMaxValueParams];
  __shared__ float vscale[kMaxDim], klo_f[kMaxDim], kinv[kMaxDim], vlo_f[kMaxValueParams], vinv[kMaxValueParams];
  __shared__ int rows[32];

  // Block parameters from the statistics; the block's first page stores them.
  const int blk = row0 / set.block_rows;
  const bool first = row0 % set.block_rows == 0;
  const unsigned* st = block_stats(set, blk, cols) + h * d;
  uint16_t* kp = reinterpret_cast<uint16_t*>(job.pool + static_cast<size_t>(pg.kp) * 16);
  uint16_t* vs = reinterpret_cast<uint16_t*>(job.pool + static_cast<size_t>(pg.vs) * 16);
  for (int c = tid; c < d; c += kEncodeThreads) {
    fit_affine(unordered(~st[c]), unordered(st[cols + c]), levels,
               static_cast<unsigned long long>(blk) * cols + h * d + c, &klo[c], &kstep[c], job.err);
    if (first) kp[c] = klo[c], kp[d + c] = kstep[c];
    klo_f[c] = half_bits_to_float(klo[c]);
    kinv[c] = kstep[c] != 0 ? 1.0f / half_bits_to_float(kstep[c]) : 0.0f;
    if (job.cstq) {
      const uint16_t s_bits = cstq_scale_bits(unordered(st[2 * cols + c]));
      vscale[c] = __half2float(__ushort_as_half(s_bits));
      if (first) vs[c] = s_bits;
    }
  }
  if (tid < 32) rows[tid] = tid < ntok ? source_row(set, h, row0 + tid) : -1;
  __syncthreads();

  // Keys: vector (cc, t) holds channels [cc * cpv, (cc + 1) * cpv) of token t.
  stage_rows(tile, pitch, job.k, job, h, rows, nullptr, tid);
  __syncthreads();
  // A thread per 32-bit word of the key vectors (word w of vector (cc, t): channels
  // cc * cpv + w * per_word ..), so every thread encodes 32 / bits codes per word.
  const int kvecs = d * set.bits / 128, cpv = 128 / set.bits, per_word = 32 / set.bits;
  uint32_t* kout = reinterpret_cast<uint32_t*>(job.pool + static_cast<size_t>(pg.k) * 16);
  for (int i = tid; i < kvecs * 32 * 4; i += kEncodeThreads) {
    const int vec = i / 4, w = i % 4, cc = vec / 32, t = vec % 32;
    uint32_t word = 0u;
    if (t < ntok) {
      const int c0 = cc * cpv + w * per_word;
      for (int j = 0; j < per_word; ++j) {
        const int c = c0 + j;
        word |= encode(tile[t * pitch + c], klo_f[c], kinv[c], klo[c], kstep[c], levels) << (j * set.bits);
      }
    }
    kout[i] = word;
  }
  __syncthreads();

  // Values (CSTQ: divided by the channel scales first).
  stage_rows(tile, pitch, job.v, job, h, rows, job.cstq ? vscale : nullptr, tid);
  __syncthreads();
  // Per (token, group of vgroup channels) lo/step: the min and max by a warp per group,
  // then the fits (double division, fp16 rounding) a thread each, all at once.
  const int vgroup = job.vgroup, ng = d / vgroup, gpr = cols / vgroup;
  for (int gi = warp; gi < 32 * ng; gi += kEncodeThreads / 32) {
    const int t = gi / ng, g = gi % ng;
    float mn = INFINITY, mx = -INFINITY;
    for (int c = g * vgroup + lane; c < (g + 1) * vgroup; c += 32) {
      const float x = tile[t * pitch + c];
      mn = fminf(mn, x);
      mx = fmaxf(mx, x);
    }
    for (int o = 16; o > 0; o /= 2) {
      mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, o));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    }
    if (lane == 0) vlo_f[g * 32 + t] = mn, vinv[g * 32 + t] = mx;  // min and max until the fit below
  }
  __syncthreads();
  for (int pi = tid; pi < 32 * ng; pi += kEncodeThreads) {
    const int g = pi / 32, t = pi % 32;
    uint16_t lo = 0, stp = 0;
    if (t < ntok) {
      fit_affine(vlo_f[pi], vinv[pi], levels, static_cast<unsigned long long>(row0 + t) * gpr + h * ng + g, &lo, &stp,
                 job.err);
    }
    vlo[pi] = lo;
    vstep[pi] = stp;
    vlo_f[pi] = half_bits_to_float(lo);
    vinv[pi] = stp != 0 ? 1.0f / half_bits_to_float(stp) : 0.0f;
  }
  __syncthreads();
  uint16_t* vp = reinterpret_cast<uint16_t*>(job.pool + static_cast<size_t>(pg.vp) * 16);
  for (int i = tid; i < ng * 32; i += kEncodeThreads) vp[i] = vlo[i], vp[ng * 32 + i] = vstep[i];
  // Value codes in the decode kernel's order (kv_page.h, value_code_word): word i
  // belongs to lane L = (i / 4) % 32 of vector row i / 128; its codes are tokens
  // 8 (L % 4) + u of channel pair 8m + L / 4, m the M-tile (2 bits: m = 4 (i / 128) +
  // i % 4, both channels; 4 bits: m = 2 (i / 128) + (i % 4) / 2, channel 2p + i % 2).
  // A thread per word, each code placed by value_code_bit.
  const int words = d * set.bits;  // 32 tokens x d codes of `bits` bits
  uint32_t* vout = reinterpret_cast<uint32_t*>(job.pool + static_cast<size_t>(pg.v) * 16);
  for (int i = tid; i < words; i += kEncodeThreads) {
    const int row = i / 128, lane = (i / 4) % 32, wi = i % 4;
    const int m = set.bits == 2 ? 4 * row + wi : 2 * row + wi / 2;
    const int pair = 8 * m + lane / 4, t0 = 8 * (lane % 4);
    uint32_t word = 0u;
    for (int ch = 0; ch < 2; ++ch) {
      if (set.bits == 4 && ch != wi % 2) continue;
      const int c = 2 * pair + ch, g = c / vgroup;
      for (int u = 0; u < 8; ++u) {
        const int t = t0 + u;
        if (t >= ntok) break;
        const int pi = g * 32 + t;
        word |= encode(tile[t * pitch + c], vlo_f[pi], vinv[pi], vlo[pi], vstep[pi], levels)
                << value_code_bit(set.bits, t, c);
      }
    }
    vout[i] = word;
  }
}

}  // namespace

size_t quantize_stats_words(int n, int block_rows, int n_kv, int d) {
  if (n <= 0) return 0;
  if (block_rows <= 0 || block_rows > n) block_rows = n;
  return static_cast<size_t>((n + block_rows - 1) / block_rows) * 3 * static_cast<size_t>(n_kv) * d;
}

namespace {

// Checks a job and points its sets' statistics into stats + *words (advanced past them);
// *pages: the job's pages (both sets).
cudaError_t prepare_job(QuantizeJob& job, unsigned* stats, size_t* words, int* pages) {
  if (job.d > kMaxDim || job.d % 32 != 0 || job.vgroup < 1 || job.d % job.vgroup != 0 ||
      job.d / job.vgroup > kMaxValueParams / 32 || job.n_sets < 1 || job.n_sets > 2) {
    return cudaErrorInvalidValue;
  }
  // 16-byte row loads (stage_rows).
  if (job.stride % 4 != 0 || reinterpret_cast<uintptr_t>(job.k) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(job.v) % 16 != 0) {
    return cudaErrorMisalignedAddress;
  }
  *pages = 0;
  for (int i = 0; i < job.n_sets; ++i) {
    QuantizeSet& set = job.sets[i];
    if (set.n > 0 && set.bits != 2 && set.bits != 4) return cudaErrorInvalidValue;
    if (set.block_rows <= 0 || set.block_rows > set.n) set.block_rows = set.n;
    if (set.n > 0 && set.block_rows % 32 != 0 && set.block_rows != set.n) return cudaErrorInvalidValue;
    set.stats = stats + *words;
    *words += quantize_stats_words(set.n, set.block_rows, job.n_kv, job.d);
    *pages += (set.n + 31) / 32;
  }
  if (job.n_sets == 1) job.sets[1] = QuantizeSet{};  // no pages: page_of() never picks it
  return cudaSuccess;
}

size_t encode_smem(int d) { return sizeof(float) * 32 * static_cast<size_t>(d + 4); }

}  // namespace

cudaError_t launch_quantize_sets(QuantizeJob job, unsigned* stats, cudaStream_t s) {
  size_t words = 0;
  int pages = 0;
  cudaError_t e = prepare_job(job, stats, &words, &pages);
  if (e != cudaSuccess || pages == 0) return e;
  e = cudaMemsetAsync(stats, 0, words * sizeof(unsigned), s);
  if (e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>(pages), static_cast<unsigned>(job.n_kv));
  set_stats_kernel<false><<<grid, dim3(32, 8), 0, s>>>(job, nullptr);
  encode_pages_kernel<false><<<grid, kEncodeThreads, encode_smem(job.d), s>>>(job, nullptr);
  return cudaGetLastError();
}

cudaError_t launch_quantize_batch(std::vector<QuantizeJob> jobs, unsigned* stats, QuantizeJob* dev_jobs,
                                  cudaStream_t s) {
  if (jobs.empty()) return cudaSuccess;
  if (jobs.size() > 65535) return cudaErrorInvalidValue;
  size_t words = 0;
  int max_pages = 0;
  for (QuantizeJob& job : jobs) {
    int pages = 0;
    const cudaError_t e = prepare_job(job, stats, &words, &pages);
    if (e != cudaSuccess) return e;
    const QuantizeJob& first = jobs.front();
    if (job.n_kv != first.n_kv || job.d != first.d) return cudaErrorInvalidValue;  // one grid for all
    max_pages = max_pages > pages ? max_pages : pages;
  }
  if (max_pages == 0) return cudaSuccess;
  // From pageable memory: the driver stages the copy before returning, so `jobs` may go.
  cudaError_t e = cudaMemcpyAsync(dev_jobs, jobs.data(), jobs.size() * sizeof(QuantizeJob), cudaMemcpyHostToDevice, s);
  if (e == cudaSuccess) e = cudaMemsetAsync(stats, 0, words * sizeof(unsigned), s);
  if (e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>(max_pages), static_cast<unsigned>(jobs.front().n_kv),
                  static_cast<unsigned>(jobs.size()));
  set_stats_kernel<true><<<grid, dim3(32, 8), 0, s>>>(QuantizeJob{}, dev_jobs);
  encode_pages_kernel<true><<<grid, kEncodeThreads, encode_smem(jobs.front().d), s>>>(QuantizeJob{}, dev_jobs);
  return cudaGetLastError();
}

}  // namespace zc::cuda::detail
