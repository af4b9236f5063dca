// Decode attention over paged KV (kv_page.h), flash-decoding style (SPEC.md section
// 4): each CTA takes a range of pages of one (sequence, KV head) and serves all g query
// heads of the GQA group from one pass over the codes; partial (max, sum, weighted
// value sum) per CTA are merged by a second kernel (decode_merge.cu). Codes are read as 16-byte vectors
// and dequantized in registers; no fp16 copy of the cache is ever written.
//
// The algebra (as quant/decode_kernels.h on the CPU), with scores in log2 units:
//  keys, channelwise: q.k' = sum_c (q_c step_c) code_c + sum_c q_c lo_c; the folded
//    query q_c * step_c * scale * log2(e) and the bias are computed once per block
//    (per warp, when its page comes from a new block);
//  values (tokenwise / CSTQ / groupwise): sum_t p_t v'_tc =
//    s_c * (sum_t (p_t step_t,g(c)) code_tc + sum_t p_t lo_t,g(c)); the p * step
//    products per token go through shared memory, sum p * lo per page and group too.
// Codes become floats without integer conversion: a b-bit code at bit offset s (< 16)
// of a 16-bit half-word, masked in place and ORed into the exponent of 2^23, is the
// float 2^23 + code * 2^s; subtracting 2^23 leaves code * 2^s exactly, and the 2^-s is
// folded into the query (keys). Value codes, in the tensor-core kernel's order
// (kv_page.h), are shifted down and converted (page_values_codes).
#include <cuda_fp16.h>

#include <cstdint>
#include <vector>

#include "cuda/core/launch.cuh"
#include "cuda/kv/decode_attention.h"
#include "cuda/kv/decode_launch.h"
#include "cuda/kv/decode_mma.cuh"
#include "cuda/kv/kv_page.h"

namespace zc::cuda::detail {
namespace {

// A tile is 4 pages: warp w scores page w (lane = token), then all threads take the
// values. (Two pages per warp sharing the folded-query loads measured 10-20% slower on
// an H100: 167 instead of 125 registers, 3 instead of 4 CTAs per SM.)
constexpr int kThreads = 128, kWarps = 4, kTilePages = 4, kTileTokens = kTilePages * 32;
constexpr float kMagic = 8388608.0f;  // 2^23

__device__ __forceinline__ float code_float(uint32_t half_word, uint32_t mask) {
  return __uint_as_float((half_word & mask) | 0x4B000000u) - kMagic;
}

// 2^-s for 0 <= s < 127.
__device__ __forceinline__ float pow2_neg(int s) { return __int_as_float((127 - s) << 23); }

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ const uint4* vec_at(const uint8_t* pool, uint32_t unit) {
  return reinterpret_cast<const uint4*>(pool) + unit;
}

// The folded query of a warp for pages of one block: qk[j][c] = q_j[c] * step_c *
// 2^-s(c) * scale_log2 and bias[j] = scale_log2 * sum_c q_j[c] lo_c (fp16 keys: step 1,
// lo 0, no shift).
template <int GMAX>
__device__ void fold_query(const float* q_s, float* qk, float* bias, const KvPage& pg,
                           const uint8_t* pool, int d, float scale_log2, int lane) {
  __syncwarp();
  float acc[GMAX];
#pragma unroll
  for (int j = 0; j < GMAX; ++j) acc[j] = 0.0f;
  const __half* kp = reinterpret_cast<const __half*>(vec_at(pool, pg.kp));
  const int bits = pg.kbits;
  for (int c = lane; c < d; c += 32) {
    float f = scale_log2, lo = 0.0f;
    if (bits != 16) {
      const int i = c % (128 / bits);                      // element within the 16-byte vector
      const int s = bits * ((i % (32 / bits)) % (16 / bits));  // bit offset within its half-word
      f = __half2float(kp[d + c]) * scale_log2 * pow2_neg(s);
      lo = __half2float(kp[c]);
    }
#pragma unroll
    for (int j = 0; j < GMAX; ++j) {
      const float qv = q_s[j * d + c];
      qk[j * d + c] = qv * f;
      acc[j] += qv * lo;
    }
  }
#pragma unroll
  for (int j = 0; j < GMAX; ++j) bias[j] = warp_sum(acc[j]) * scale_log2;
  __syncwarp();
}

// Four consecutive elements (channels of a key vector, or tokens of a value chunk) of
// a 16-byte vector as floats: element 4 * quad + i (codes scaled by 2^s, see above).
template <int BITS>
__device__ __forceinline__ void quad(const uint32_t* words, int q4, float* f) {
  if constexpr (BITS == 16) {
    const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&words[2 * q4]));
    const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&words[2 * q4 + 1]));
    f[0] = a.x, f[1] = a.y, f[2] = b.x, f[3] = b.y;
  } else {
    constexpr int per_word = 32 / BITS, per_half = 16 / BITS;
    constexpr uint32_t mask = (1u << BITS) - 1u;
    const int e0 = 4 * q4;
    const uint32_t w = words[e0 / per_word];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int e = (e0 + i) % per_word;  // compile-time after unrolling
      f[i] = code_float(e < per_half ? w : w >> 16, mask << (BITS * (e % per_half)));
    }
  }
}

// acc[j] += sum over the vector's channels of qk[j][c] * value(c); c0 = first channel.
template <int GMAX, int BITS>
__device__ __forceinline__ void dot_vector(const uint4& w, const float* qk, int d, int c0,
                                           float* acc) {
  constexpr int per_vec = BITS == 16 ? 8 : 128 / BITS;
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int q4 = 0; q4 < per_vec / 4; ++q4) {
    float f[4];
    quad<BITS>(words, q4, f);
#pragma unroll
    for (int j = 0; j < GMAX; ++j) {
      const float4 qv = *reinterpret_cast<const float4*>(qk + j * d + c0 + 4 * q4);
      acc[j] = fmaf(qv.x, f[0], fmaf(qv.y, f[1], fmaf(qv.z, f[2], fmaf(qv.w, f[3], acc[j]))));
    }
  }
}

// Scores (log2 units, without bias) of token `lane` of a page: 4 vectors in flight.
template <int GMAX, int BITS>
__device__ __forceinline__ void page_scores(const uint4* kv, const float* qk, int d,
                                            float* acc) {
  constexpr int per_vec = BITS == 16 ? 8 : 128 / BITS;
  const int nvec = d / per_vec;
  for (int cc = 0; cc < nvec; cc += 4) {
    uint4 w[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      if (cc + u < nvec) w[u] = kv[(cc + u) * 32];
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      if (cc + u < nvec) dot_vector<GMAX, BITS>(w[u], qk, d, (cc + u) * per_vec, acc);
    }
  }
}

template <int GMAX>
__device__ __forceinline__ void page_scores_any(const KvPage& pg, const uint8_t* pool,
                                                const float* qk, int d, int lane, float* acc) {
  const uint4* kv = vec_at(pool, pg.k) + lane;
  if (pg.kbits == 2) {
    page_scores<GMAX, 2>(kv, qk, d, acc);
  } else if (pg.kbits == 4) {
    page_scores<GMAX, 4>(kv, qk, d, acc);
  } else {
    page_scores<GMAX, 16>(kv, qk, d, acc);
  }
}

// Probabilities of token `lane` of tile page tp (0 when invalid), added to l, and
// written folded with the value parameters: ps[j][g][tp * 32 + lane] = p * step,
// plo[tp][j][g] = sum over the page's tokens of p * lo.
template <int GMAX>
__device__ __forceinline__ void page_probs(const KvPage& pg, bool has, const float* sv,
                                           const float* m_use, float* l_lane, float* ps,
                                           float* plo, const uint8_t* pool, int d, int ng,
                                           int tp, int lane) {
  const bool valid = has && lane < pg.ntok;
  float pr[GMAX];
#pragma unroll
  for (int j = 0; j < GMAX; ++j) {
    pr[j] = valid ? exp2f(sv[j] - m_use[j]) : 0.0f;
    l_lane[j] += pr[j];
  }
  if (!has) return;
  const int tok = tp * 32 + lane;
  if (pg.values == PageValues::Fp16) {
#pragma unroll
    for (int j = 0; j < GMAX; ++j) ps[(j * ng) * kTileTokens + tok] = pr[j];
    return;
  }
  const int groups = d / pg.vgroup;
  const __half* vp = reinterpret_cast<const __half*>(vec_at(pool, pg.vp));
  for (int gi = 0; gi < groups; ++gi) {
    const float lo = valid ? __half2float(vp[gi * 32 + lane]) : 0.0f;
    const float st = valid ? __half2float(vp[(groups + gi) * 32 + lane]) : 0.0f;
#pragma unroll
    for (int j = 0; j < GMAX; ++j) {
      ps[(j * ng + gi) * kTileTokens + tok] = pr[j] * st;
      const float pl = warp_sum(pr[j] * lo);
      if (lane == 0) plo[(tp * GMAX + j) * ng + gi] = pl;
    }
  }
}

// a[j][ch] += sum over the chunk's 4 tokens of ps[j][token] * value(token, channel ch)
// for a vector of fp16 values (codes take page_values_codes below); ps + j * ps_stride
// points at the chunk's first token for head j. Words 0-1 of the vector hold channel
// 2p, words 2-3 channel 2p+1; each probability load serves both.
template <int GMAX>
__device__ __forceinline__ void value_chunk_fp16(const uint4& w, const float* ps, int ps_stride, float (*a)[2]) {
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
  float f0[4], f1[4];
  quad<16>(words, 0, f0);
  quad<16>(words + 2, 0, f1);
#pragma unroll
  for (int j = 0; j < GMAX; ++j) {
    const float4 pv = *reinterpret_cast<const float4*>(ps + j * ps_stride);
    a[j][0] = fmaf(pv.x, f0[0], fmaf(pv.y, f0[1], fmaf(pv.z, f0[2], fmaf(pv.w, f0[3], a[j][0]))));
    a[j][1] = fmaf(pv.x, f1[0], fmaf(pv.y, f1[1], fmaf(pv.z, f1[2], fmaf(pv.w, f1[3], a[j][1]))));
  }
}

// fp16 values: chunks of 4 tokens (kv_page.h), 8 per page.
template <int GMAX>
__device__ __forceinline__ void page_values_fp16(const uint4* vv, int half_d, const float* ps, int ps_stride,
                                                 float (*a)[2]) {
  constexpr int chunks = 8, tk = 4;
  uint4 w[4];
#pragma unroll
  for (int k0 = 0; k0 < chunks; k0 += 4) {
#pragma unroll
    for (int u = 0; u < 4; ++u) w[u] = vv[(k0 + u) * half_d];
#pragma unroll
    for (int u = 0; u < 4; ++u) value_chunk_fp16<GMAX>(w[u], ps + (k0 + u) * tk, ps_stride, a);
  }
}

// Codes of channels 2cp, 2cp + 1 (kv_page.h: the words of lanes 4 (cp % 8) + t4 for
// tokens 8 t4 .. 8 t4 + 7, placed by value_code_word / value_code_bit): a[j][ch] += sum
// over the page's tokens of ps[j][token] * code.
template <int GMAX, int BITS>
__device__ __forceinline__ void page_values_codes(const uint32_t* words, int cp, const float* ps, int ps_stride,
                                                  float (*a)[2]) {
  constexpr uint32_t mask = (1u << BITS) - 1u;
  const int c0 = 2 * cp;
#pragma unroll
  for (int t4 = 0; t4 < 4; ++t4) {
    const uint32_t w0 = words[value_code_word(BITS, 8 * t4, c0)], w1 = words[value_code_word(BITS, 8 * t4, c0 + 1)];
#pragma unroll
    for (int q = 0; q < 2; ++q) {
      float f0[4], f1[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {  // bit offsets: compile-time (c0 is even)
        f0[u] = float((w0 >> value_code_bit(BITS, 4 * q + u, 0)) & mask);
        f1[u] = float((w1 >> value_code_bit(BITS, 4 * q + u, 1)) & mask);
      }
#pragma unroll
      for (int j = 0; j < GMAX; ++j) {
        const float4 pv = *reinterpret_cast<const float4*>(ps + j * ps_stride + 8 * t4 + 4 * q);
        a[j][0] = fmaf(pv.x, f0[0], fmaf(pv.y, f0[1], fmaf(pv.z, f0[2], fmaf(pv.w, f0[3], a[j][0]))));
        a[j][1] = fmaf(pv.x, f1[0], fmaf(pv.y, f1[1], fmaf(pv.z, f1[2], fmaf(pv.w, f1[3], a[j][1]))));
      }
    }
  }
}

template <int GMAX>
__global__ void __launch_bounds__(kThreads) decode_split_kernel(const DecodeParams p) {
  wait_for_prior_grids();  // PDL (core/launch.cuh): q and the pages come from the kernels before
  extern __shared__ __align__(16) unsigned char smem[];
  const int d = p.d, ng = p.groups;
  KvPage* desc_s = reinterpret_cast<KvPage*>(smem);
  float* q_s = reinterpret_cast<float*>(smem + kTilePages * sizeof(KvPage));
  float* qk_s = q_s + GMAX * d;                  // [warp][GMAX][d]; end: [slot][GMAX][d]
  float* ps = qk_s + kWarps * GMAX * d;          // [GMAX][ng][kTileTokens]
  float* plo = ps + GMAX * ng * kTileTokens;     // [page][GMAX][ng]
  float* wstat = plo + kTilePages * GMAX * ng;   // [warp][GMAX]

  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int pair = static_cast<int>(blockIdx.y), split = static_cast<int>(blockIdx.x);
  const int b = pair / p.n_kv, h = pair % p.n_kv, g = p.g;
  const int list0 = p.starts[pair], n_pages = p.ends[pair] - list0;
  const int p_begin = split * p.pages_per_split;
  const int p_end = min(n_pages, p_begin + p.pages_per_split);

  for (int i = tid; i < GMAX * d; i += kThreads) {
    const int j = i / d, c = i % d;
    q_s[i] = j < g ? p.q[static_cast<size_t>(b) * p.q_stride + static_cast<size_t>(h * g + j) * d + c] : 0.0f;
  }
  __syncthreads();

  float m_run[GMAX], l_lane[GMAX], bias[GMAX], o[GMAX][2];
#pragma unroll
  for (int j = 0; j < GMAX; ++j) {
    m_run[j] = -INFINITY, l_lane[j] = 0.0f, bias[j] = 0.0f, o[j][0] = 0.0f, o[j][1] = 0.0f;
  }
  uint32_t cur_kp = 0xffffffffu;
  int cur_kbits = 0;
  float* qk_w = qk_s + warp * GMAX * d;
  const int half_d = d / 2, nslots = kThreads / half_d, slot = tid / half_d, cp = tid % half_d;

  for (int t0 = p_begin; t0 < p_end; t0 += kTilePages) {
    // ---- keys: warp w scores page w of the tile, lane = token ----
    const bool has = t0 + warp < p_end;
    KvPage pg;
    float sc[GMAX];
#pragma unroll
    for (int j = 0; j < GMAX; ++j) sc[j] = -INFINITY;
    if (has) {
      pg = p.pages[list0 + t0 + warp];
      if (pg.kbits != cur_kbits || pg.kp != cur_kp) {
        fold_query<GMAX>(q_s, qk_w, bias, pg, p.pool, d, p.scale_log2, lane);
        cur_kbits = pg.kbits;
        cur_kp = pg.kp;
      }
      if (lane < pg.ntok) {
        float acc[GMAX];
#pragma unroll
        for (int j = 0; j < GMAX; ++j) acc[j] = 0.0f;
        page_scores_any<GMAX>(pg, p.pool, qk_w, d, lane, acc);
#pragma unroll
        for (int j = 0; j < GMAX; ++j) sc[j] = acc[j] + bias[j];
        // Window tracking: the scores of a window page (fp16) are kept for the merge.
        if (float* slots = pg.kbits == 16 ? window_score_slots(p, pair, t0 + warp) : nullptr) {
#pragma unroll
          for (int j = 0; j < GMAX; ++j) {
            if (j < g) slots[j * p.win_stride + lane] = sc[j];
          }
        }
      }
    } else {
      pg.ntok = 0;
    }
    if (lane == 0) desc_s[warp] = pg;
#pragma unroll
    for (int j = 0; j < GMAX; ++j) {
      const float mx = warp_max(sc[j]);
      if (lane == 0) wstat[warp * GMAX + j] = mx;
    }
    __syncthreads();

    // ---- the running max moves to the tile's; every thread rescales its sums ----
    float corr[GMAX], m_use[GMAX];
#pragma unroll
    for (int j = 0; j < GMAX; ++j) {
      float mt = wstat[j];
      for (int w = 1; w < kWarps; ++w) mt = fmaxf(mt, wstat[w * GMAX + j]);
      const float m_new = fmaxf(m_run[j], mt);
      m_use[j] = m_new == -INFINITY ? 0.0f : m_new;
      corr[j] = exp2f(m_run[j] - m_use[j]);
      m_run[j] = m_new;
      l_lane[j] *= corr[j];
    }

    // ---- probabilities of the warp's tokens, folded with the value parameters ----
    page_probs<GMAX>(pg, has, sc, m_use, l_lane, ps, plo, p.pool, d, ng, warp, lane);
    __syncthreads();

    // ---- values: thread (slot, cp) owns channels 2cp, 2cp+1 of pages slot, slot + nslots, ... ----
#pragma unroll
    for (int j = 0; j < GMAX; ++j) o[j][0] *= corr[j], o[j][1] *= corr[j];
    for (int tp = slot; tp < kTilePages; tp += nslots) {
      const KvPage& vpg = desc_s[tp];
      if (vpg.ntok == 0) continue;
      float a[GMAX][2];
#pragma unroll
      for (int j = 0; j < GMAX; ++j) a[j][0] = 0.0f, a[j][1] = 0.0f;
      const int gi = (2 * cp) / vpg.vgroup;
      const float* psb = ps + gi * kTileTokens + tp * 32;
      const int ps_stride = ng * kTileTokens;
      const uint4* vv = vec_at(p.pool, vpg.v);
      if (vpg.vbits == 2) {
        page_values_codes<GMAX, 2>(reinterpret_cast<const uint32_t*>(vv), cp, psb, ps_stride, a);
      } else if (vpg.vbits == 4) {
        page_values_codes<GMAX, 4>(reinterpret_cast<const uint32_t*>(vv), cp, psb, ps_stride, a);
      } else {
        page_values_fp16<GMAX>(vv + cp, half_d, psb, ps_stride, a);
      }
      const bool quant = vpg.values != PageValues::Fp16;
      float sc0 = 1.0f, sc1 = 1.0f;
      if (vpg.values == PageValues::Cstq) {
        const __half* vs = reinterpret_cast<const __half*>(vec_at(p.pool, vpg.vs));
        sc0 = __half2float(vs[2 * cp]);
        sc1 = __half2float(vs[2 * cp + 1]);
      }
#pragma unroll
      for (int j = 0; j < GMAX; ++j) {
        const float pl = quant ? plo[(tp * GMAX + j) * ng + gi] : 0.0f;
        o[j][0] = fmaf(sc0, a[j][0] + pl, o[j][0]);
        o[j][1] = fmaf(sc1, a[j][1] + pl, o[j][1]);
      }
    }
    __syncthreads();
  }

  // The merge may launch once every CTA is this far (not earlier: merge CTAs resident
  // early would take the slots of split CTAs not yet started).
  allow_dependent_launch();
  // ---- partial results: l over lanes and warps, o over slots ----
#pragma unroll
  for (int j = 0; j < GMAX; ++j) {
    const float ls = warp_sum(l_lane[j]);
    if (lane == 0) wstat[warp * GMAX + j] = ls;
  }
  float* red = qk_s;  // [slot][GMAX][d]
#pragma unroll
  for (int j = 0; j < GMAX; ++j) {
    red[(slot * GMAX + j) * d + 2 * cp] = o[j][0];
    red[(slot * GMAX + j) * d + 2 * cp + 1] = o[j][1];
  }
  __syncthreads();
  const size_t part = static_cast<size_t>(pair) * p.splits + split;
  for (int i = tid; i < g * d; i += kThreads) {
    const int j = i / d, c = i % d;
    float sum = 0.0f;
    for (int sl = 0; sl < nslots; ++sl) sum += red[(sl * GMAX + j) * d + c];
    p.part_o[(part * g + j) * d + c] = sum;
  }
#pragma unroll
  for (int j = 0; j < GMAX; ++j) {
    if (tid == j && j < g) {
      float l = 0.0f;
      for (int w = 0; w < kWarps; ++w) l += wstat[w * GMAX + j];
      p.part_ml[(part * g + j) * 2] = m_run[j];
      p.part_ml[(part * g + j) * 2 + 1] = l;
    }
  }
}

size_t smem_bytes(int gmax, const DecodeParams& p) {
  const size_t floats = size_t(gmax) * p.d * (1 + kWarps) + size_t(gmax) * p.groups * kTileTokens +
                        size_t(kTilePages) * gmax * p.groups + size_t(kWarps) * gmax;
  return kTilePages * sizeof(KvPage) + floats * sizeof(float);
}

template <int GMAX>
cudaError_t launch_split(const DecodeParams& p, int pairs, cudaStream_t s) {
  const size_t smem = smem_bytes(GMAX, p);
  static size_t raised = 48 * 1024;  // the default dynamic limit
  if (smem > raised) {
    const cudaError_t e = cudaFuncSetAttribute(decode_split_kernel<GMAX>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    raised = smem;
  }
  const dim3 grid(static_cast<unsigned>(p.splits), static_cast<unsigned>(pairs));
  return launch_pdl(PdlKernel::Split, decode_split_kernel<GMAX>, grid, kThreads, smem, s, p);
}

}  // namespace

int resident_ctas(const DecodeParams& p) {
  if (p.simt || !mma::supported(p)) return 0;
  // The occupancy query per call would be a few microseconds of host time per layer.
  thread_local int cached[3][3][9][17] = {};
  const int di = p.d == 64 ? 0 : p.d == 128 ? 1 : 2;
  int& n = cached[di][p.quantized ? (p.stage_kp ? 2 : 1) : 0][p.g][p.groups];
  if (n == 0) n = mma::resident_split(p);
  return n;
}

cudaError_t launch_decode(const DecodeParams& p, int pairs, cudaStream_t s) {
  cudaError_t e = cudaSuccess;
  if (!p.simt && mma::supported(p)) {
    e = mma::launch_split(p, pairs, s);
    // The tensor-core kernel finishes whole pairs itself (decode_mma_finish.cuh).
    if (p.whole_pairs == pairs) return e;
  } else if (p.g <= 1) {
    e = launch_split<1>(p, pairs, s);
  } else if (p.g <= 2) {
    e = launch_split<2>(p, pairs, s);
  } else if (p.g <= 4) {
    e = launch_split<4>(p, pairs, s);
  } else {
    e = launch_split<8>(p, pairs, s);
  }
  if (e != cudaSuccess) return e;
  return launch_merge(p, pairs, s);
}

}  // namespace zc::cuda::detail

#ifdef ZC_DECODE_TRACE
namespace zc::cuda {
std::vector<unsigned long long> decode_trace_download() {
  std::vector<unsigned long long> out(size_t(kTraceWarps) * kTraceSlots);
  check(cudaMemcpyFromSymbol(out.data(), detail::g_decode_trace, out.size() * sizeof(out[0])), "decode trace");
  return out;
}
void decode_trace_clear() {
  void* at = nullptr;
  check(cudaGetSymbolAddress(&at, detail::g_decode_trace), "decode trace");
  check(cudaMemset(at, 0, size_t(kTraceWarps) * kTraceSlots * sizeof(unsigned long long)), "decode trace");
}
}  // namespace zc::cuda
#endif

