// Page math of the tensor-core decode kernel (decode_mma.cuh; issue 4, SPEC.md section
// 4): q.k and p.v of one 32-token page as mma.sync.m16n8k16 (fp16 inputs, fp32
// accumulators) with the packed codes turned into fp16 fragments in registers, so the
// work per code is a few instructions instead of the SIMT kernel's ~13
// (docs/benchmarks.md, "GPU: decode-attention kernel"). Codes are read from wherever
// PageSrc points: a page's shared-memory stage or the pool.
//
// Keys (scores in log2 units), channelwise codes (kv_page.h):
//   s_t = sum_c fq_c code_tc + bias,  fq_c = q_c step_c scale log2(e),  bias = sum_c q_c lo_c ...
//   MMA: A = folded query, rows 0-7 = fp16 hi part of heads 0-7, rows 8-15 = the fp16
//   residual (fq - hi) of the same heads, so one MMA carries ~22 bits of the query and
//   C rows g and g + 8 add up to head g's score; K = 16 channels; B = codes of 8 tokens.
//   fp16 keys: B = the key halves, fq = q scale log2(e).
// Values, v_tc = s_c (lo_t + step_t code_tc) (s_c = 1 unless CSTQ):
//   sum_t p_t v_tc = s_c (sum_t (p_t step_t) code_tc + sum_t p_t lo_t).
//   MMA: A = codes (16 channels x 16 tokens), B = p step (16 tokens x 8 heads) as fp16
//   hi and residual (two MMAs), C = channels x heads in fp32, accumulated over the
//   pages of a block; sum p lo is one scalar per head, and s_c is applied once per
//   block (decode_mma.cuh, flush) instead of per page.
// Codes to fp16 exactly, as subnormals: a b-bit code masked in place at bit s of a
// 16-bit half-word, exponent field zero, is the fp16 subnormal code 2^(s - 24), so one
// LOP3 (or a plain AND) per two codes. The tensor cores take subnormals, but they seem to
// align a product by its inputs' exponent fields, so a code with k leading zeros below
// mantissa bit 9 costs k bits of the sum (docs/benchmarks.md, session 11: codes at bits
// 0-7 made the errors ten times larger). Keys: the code masked where it lies, bits 0-9
// (the scores take the lost bits: the decode tests' worst error went from 7.0e-6 to
// 8.4e-6 when keys took this form); the 2^(24 - s) of each channel is folded into the
// query (decode_mma_fold.cuh, fold_query). Values: every code is first moved to the
// top of the mantissa (2-bit codes to bit 6 or 8, 4-bit codes to bit 4) by a rotation
// or shift per register pair,
// and each register's 2^(24 - s) is folded into B (value_b_scale): the value MMAs sum
// in units of 2^-kValueUnitLog2 (their products are p step code 2^-18), so that B
// never overflows fp16 (p <= 1, a 2-bit step <= 131008 / 3, a 4-bit one times 4 <=
// 4 x 131008 / 15). fp16 value pages sum in plain units and are scaled into o.
// (The former form, 1024 + code as a biased half and one HFMA2 per two codes to
// subtract the bias, spent a third of the value side's instructions on that HFMA2.)
//
// Token order. The key MMA's output fragment (thread (g, t4) = lane (4g + t4) holds
// head g, columns 2t4 and 2t4 + 1 of each 8-token N-tile) is used directly as the value
// MMA's B fragment (head g, K rows 2t4, 2t4 + 1 and 2t4 + 8, 2t4 + 9 of each 16-token
// K-tile), so no transpose: N-tile nt of the keys is element a = nt of the value
// fragment, and the token behind (t4, a, i) (i = column parity) is fixed by the value
// layout so that each register unpacks from one code word (token_of below).
#pragma once
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/core/ptx.cuh"
#include "cuda/kv/decode_launch.h"
#include "cuda/kv/kv_page.h"

namespace zc::cuda::detail {
namespace mma {

constexpr int kWarps = 4, kThreads = kWarps * 32, kHeads = 8;

__device__ __forceinline__ void mma16816(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1) {
  const uint32_t a[4] = {a0, a1, a2, a3};
  ptx::mma<__half>(c, a, b0, b1);
}

__device__ __forceinline__ uint32_t h2_bits(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }
__device__ __forceinline__ __half2 bits_h2(uint32_t u) { return *reinterpret_cast<__half2*>(&u); }

// Units of the quantized value MMAs' sums: 2^-kValueUnitLog2 (see the header comment).
constexpr int kValueUnitLog2 = 18;
constexpr float kValueUnit = 1.0f / float(1 << kValueUnitLog2);

// Bit offset within its half-word of the key codes of register A (key_word_reg).
template <int BITS>
__host__ __device__ constexpr int code_shift(int a) {
  return BITS == 4 ? 4 * (a % 2) : BITS == 2 ? 2 * (a < 5 ? a : a - 5) : 0;
}

// The code word shifted so that register A's codes sit at bit code_shift(A) (below bit
// 10) of each half-word.
template <int BITS, int A>
__device__ __forceinline__ uint32_t code_source(uint32_t w) {
  return BITS == 4 ? (A < 2 ? w : w >> 8) : (A < 5 ? w : w >> 10);
}

// Register A of a key code word as two fp16 subnormals code 2^(code_shift(A) - 24)
// (see the header comment): the codes masked in place.
template <int BITS, int A>
__device__ __forceinline__ uint32_t key_word_reg(uint32_t w) {
  if constexpr (BITS == 16) {
    return w;
  } else {
    constexpr uint32_t mask = ((1u << BITS) - 1u) << code_shift<BITS>(A);
    return code_source<BITS, A>(w) & (mask | (mask << 16));
  }
}

// Value registers: where register a's codes sit in each half-word (value_regs), and
// the factor 2^(24 - s - kValueUnitLog2) its B carries.
template <int BITS>
__host__ __device__ constexpr int value_code_shift(int a) {
  return BITS == 2 ? (a % 2 == 0 ? 6 : 8) : 4;
}
template <int BITS>
__host__ __device__ constexpr float value_b_scale(int a) {
  const int e = BITS == 16 ? 0 : 24 - value_code_shift<BITS>(a) - kValueUnitLog2;
  return e >= 0 ? float(1 << e) : 1.0f / float(1 << -e);
}
// p step times the scale stays finite in fp16 for any finite fp16 values: p <= 1, a
// b-bit step at most (65504 - -65504) / (2^b - 1).
static_assert(value_b_scale<2>(0) * (131008.0f / 3.0f) <= 65504.0f &&
                  value_b_scale<2>(1) * (131008.0f / 3.0f) <= 65504.0f &&
                  value_b_scale<4>(0) * (131008.0f / 15.0f) <= 65504.0f,
              "B overflows fp16");

__device__ __forceinline__ uint32_t rotl(uint32_t x, int n) { return __funnelshift_l(x, x, n); }

// The token behind value-fragment element (t4, a, i): for codes, token 8 t4 + a + 4 i
// of the page (the lane's eight tokens; kv_page.h orders each lane's value codes so),
// register a = tokens (a, a + 4) of the eight; fp16: chunks 2 t4 and 2 t4 + 1 of the
// fp16 value layout, register a = tokens 2a, 2a + 1 of the thread's 8.
template <int VBITS>
__host__ __device__ constexpr int token_of(int t4, int a, int i) {
  if constexpr (VBITS == 16) return 8 * t4 + 2 * a + i;
  return 8 * t4 + a + 4 * i;
}

// Where a page's codes and parameters are read from: its stage in shared memory
// (quantized pages, copied ahead by cp.async; keys padded, see key_slot) or the pool
// (fp16 pages). CSTQ's channel scales are not here: they apply once per block
// (decode_mma.cuh, flush).
struct PageSrc {
  const uint4* k;
  const uint4* v;
  const __half* vp;
  bool staged;  // keys in a stage's padded rows (key_slot)
  int key_lane;  // staged: the lane's byte offset from k to its first key word (key_lane_bytes)
};

// How a page's values are parameterized (a template argument of the page math):
// one (lo, step) per token, the same with CSTQ channel scales, or per channel group.
enum ValueKind : int { kPlainValues = 0, kCstqValues = 1, kGroupedValues = 2 };

// Row of token t's key vectors, and the rows per column of 32 tokens' vectors. In the
// pool (fp16 pages) columns are 32 rows. In a stage a pad row follows every 8 tokens and
// a column takes kStagedKeyRows rows, so that the eight tokens a key load touches
// (token_of) fall in distinct 16-byte bank groups, each column's in others than the
// previous column's: a 2-bit key load (LDS.64, 16 lanes over two columns) is free of
// bank conflicts, a 4-bit one (LDS.128, 8 lanes over four columns) two-way; the XOR
// swizzle this replaced left them two- and four-way. Padding also keeps a lane's four
// tokens (N-tiles 0..3) at consecutive rows (key_slots_add), so their loads take one
// address and constant offsets, where the swizzle's per-tile arithmetic was ~30
// instructions per page.
constexpr int kStagedKeyRows = 38;  // 35 rows used; 38 = 6 (mod 8) banks-wise
__host__ __device__ constexpr int key_slot(int t, bool staged) { return staged ? t + (t >> 3) : t; }
__host__ __device__ constexpr int key_column_rows(bool staged) { return staged ? kStagedKeyRows : 32; }
static_assert(key_slot(31, true) < kStagedKeyRows, "a column's rows");

// N-tile n's key row of a lane is N-tile 0's plus n kKeyTokenStep (token_of's tokens
// for n = 0..3 differ in the bits below the pad's period).
template <int VBITS>
constexpr int kKeyTokenStep = VBITS == 16 ? 2 : 1;
template <int VBITS>
constexpr bool key_slots_add() {
  for (int g = 0; g < 8; ++g) {
    for (int st = 0; st < 2; ++st) {
      if (VBITS == 16 && st == 1) continue;  // fp16 pages are never staged
      const int s0 = key_slot(token_of<VBITS>(g >> 1, 0, g & 1), st != 0);
      for (int n = 0; n < 4; ++n) {
        if (key_slot(token_of<VBITS>(g >> 1, n, g & 1), st != 0) != s0 + n * kKeyTokenStep<VBITS>) return false;
      }
    }
  }
  return true;
}
static_assert(key_slots_add<2>() && key_slots_add<4>() && key_slots_add<16>());

// Key words of one token for thread t4: words [t4 WK, (t4 + 1) WK) of the token's
// d * BITS / 32 words (vector cc holds words 4cc .. 4cc + 3 at index cc * rows + slot,
// rows = key_column_rows). The lane's first word of N-tile 0 lies key_lane_bytes from
// the page's keys; N-tile n's is n kKeyTokenStep vectors further, and a lane with more
// than one vector (WK >= 8) finds the next one a column further.
template <int D, int BITS, int VBITS>
__device__ __forceinline__ int key_lane_bytes(int lane, bool staged) {
  constexpr int WK = D * BITS / 128;
  const int g = lane >> 2, t4 = lane & 3, rows = key_column_rows(staged);
  const int slot = key_slot(token_of<VBITS>(g >> 1, 0, g & 1), staged);
  if constexpr (WK >= 4) return 16 * (slot + t4 * (WK / 4) * rows);
  if constexpr (WK == 2) return 16 * (slot + (t4 >> 1) * rows) + 8 * (t4 & 1);
  return 16 * slot + 4 * t4;
}

template <int D, int BITS>
__device__ __forceinline__ void load_key_words(const char* p, int rows, uint32_t (&w)[D * BITS / 128]) {
  constexpr int WK = D * BITS / 128;
  if constexpr (WK >= 4) {
#pragma unroll
    for (int v = 0; v < WK / 4; ++v) {
      const uint4 x = *reinterpret_cast<const uint4*>(p + 16 * v * rows);
      w[4 * v] = x.x, w[4 * v + 1] = x.y, w[4 * v + 2] = x.z, w[4 * v + 3] = x.w;
    }
  } else if constexpr (WK == 2) {
    const uint2 x = *reinterpret_cast<const uint2*>(p);
    w[0] = x.x, w[1] = x.y;
  } else {
    w[0] = *reinterpret_cast<const uint32_t*>(p);
  }
}

template <int BITS, int RPW>
__device__ __forceinline__ uint32_t key_reg(const uint32_t* w, int r) {
  // r is a compile-time constant after unrolling.
  const uint32_t x = w[r / RPW];
  switch (r % RPW) {
    case 0: return key_word_reg<BITS, 0>(x);
    case 1: return key_word_reg<BITS, 1>(x);
    case 2: return key_word_reg<BITS, 2>(x);
    case 3: return key_word_reg<BITS, 3>(x);
    case 4: return key_word_reg<BITS, 4>(x);
    case 5: return key_word_reg<BITS, 5>(x);
    case 6: return key_word_reg<BITS, 6>(x);
    default: return key_word_reg<BITS, 7>(x);
  }
}

// Raw key MMA sums of a page: c[nt] for N-tile nt (rows: hi of head g, residual).
template <int D, int BITS, int VBITS>
__device__ __forceinline__ void page_keys(const PageSrc& src, const uint4* frag,
                                          int lane, float (&c)[4][4]) {
  constexpr int WK = D * BITS / 128, RPW = BITS == 16 ? 1 : 16 / BITS, NB = BITS == 16 ? 1 : 4;
  const int rows = key_column_rows(src.staged);
  // Staged pages bring the lane's offset, worked out once per kernel (src.key_lane).
  const char* p = reinterpret_cast<const char*>(src.k) +
                  (src.staged ? src.key_lane : key_lane_bytes<D, BITS, VBITS>(lane, false));
#pragma unroll
  for (int n0 = 0; n0 < 4; n0 += NB) {
    uint32_t w[NB][WK];
#pragma unroll
    for (int n = 0; n < NB; ++n) load_key_words<D, BITS>(p + 16 * (n0 + n) * kKeyTokenStep<VBITS>, rows, w[n]);
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint4 a = frag[kk * 16];
#pragma unroll
      for (int n = 0; n < NB; ++n) {
        mma16816(c[n0 + n], a.x, a.y, a.z, a.w, key_reg<BITS, RPW>(w[n], 2 * kk),
                 key_reg<BITS, RPW>(w[n], 2 * kk + 1));
      }
    }
  }
}

// The lane's value words of a page (codes: kv_page.h, value_code_word), loaded
// together: 2 bits, vector j = M-tiles 4j .. 4j + 3 (one word each); 4 bits, vector j =
// M-tiles 2j, 2j + 1 (channel 2p's word, then 2p + 1's). fp16 pages read per M-tile.
template <int D, int BITS>
constexpr int kValueVectors = BITS == 16 ? 1 : D * BITS / 128;

template <int D, int BITS>
__device__ __forceinline__ void load_value_words(const uint4* vbase, int lane, uint4 (&vw)[kValueVectors<D, BITS>]) {
  if constexpr (BITS != 16) {
#pragma unroll
    for (int j = 0; j < kValueVectors<D, BITS>; ++j) vw[j] = vbase[32 * j + lane];
  }
}

__device__ __forceinline__ uint32_t word_of(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;  // i: a compile-time constant
}

// Value A fragments of M-tile m (pair p = 8m + g: rows g = channel 2p, g + 8 = 2p + 1):
// ra[a] / rb[a] = register a of channel 2p / 2p + 1 (tokens token_of(t4, a, 0 / 1)).
// Codes from the lane's words vw (load_value_words), fp16 values from the pool.
template <int D, int BITS>
__device__ __forceinline__ void value_regs(const uint4* vbase, const uint4 (&vw)[kValueVectors<D, BITS>], int m,
                                           int g, int t4, uint32_t (&ra)[4], uint32_t (&rb)[4]) {
  if constexpr (BITS == 16) {
    const int p = 8 * m + g;
    const uint4 x = vbase[(2 * t4) * (D / 2) + p];
    const uint4 y = vbase[(2 * t4 + 1) * (D / 2) + p];
    ra[0] = x.x, ra[1] = x.y, ra[2] = y.x, ra[3] = y.y;
    rb[0] = x.z, rb[1] = x.w, rb[2] = y.z, rb[3] = y.w;
  } else if constexpr (BITS == 4) {
    // Token 8 t4 + u at bit 4u: register a's codes (u = a, a + 4) at bit 4a of each
    // half-word, each moved to bit 4 (the shifts carry nothing across the halves into
    // bits 4-7 / 20-23).
    static_assert(value_code_shift<4>(0) == 4 && value_code_bit(4, 5, 0) == 20, "the shifts below");
    const uint32_t x = word_of(vw[m / 2], 2 * (m % 2)), y = word_of(vw[m / 2], 2 * (m % 2) + 1);
    constexpr uint32_t mask = 0x000F000Fu << value_code_shift<4>(0);
    ra[0] = (x << 4) & mask, ra[1] = x & mask, ra[2] = (x >> 4) & mask, ra[3] = (x >> 8) & mask;
    rb[0] = (y << 4) & mask, rb[1] = y & mask, rb[2] = (y >> 4) & mask, rb[3] = (y >> 8) & mask;
  } else {
    // The word rotated left by r = 8 (channel parity) + 4 (a / 2) holds registers a
    // and a + 1 (a even) at bits 6 and 8 of each half-word (value_code_bit): one
    // rotation per two registers, r = 0 needing none.
    static_assert(value_code_shift<2>(0) == 6 && value_code_shift<2>(1) == 8, "the rotations below");
    static_assert(value_code_bit(2, 0, 0) == 6 && value_code_bit(2, 5, 0) == 24 && value_code_bit(2, 2, 0) == 2 &&
                      value_code_bit(2, 0, 1) == 30 && value_code_bit(2, 7, 1) == 12,
                  "the rotations below");
    constexpr uint32_t lo_mask = 0x00030003u << value_code_shift<2>(0), hi_mask = 0x00030003u << value_code_shift<2>(1);
    const uint32_t w = word_of(vw[m / 4], m % 4);
    const uint32_t x2 = rotl(w, 4), y1 = rotl(w, 8), y2 = rotl(w, 12);
    ra[0] = w & lo_mask, ra[1] = w & hi_mask, ra[2] = x2 & lo_mask, ra[3] = x2 & hi_mask;
    rb[0] = y1 & lo_mask, rb[1] = y1 & hi_mask, rb[2] = y2 & lo_mask, rb[3] = y2 & hi_mask;
  }
}

// o[m] (channels x heads) += the page's p.v over every M-tile with B = (bh, bl): one
// parameter group of all D channels (tokenwise and CSTQ values; CSTQ's channel scales
// wait for the end of the block, decode_mma.cuh's flush), so the mma accumulates
// straight into o. Sum p lo is the caller's (page_values_any).
// SPLIT (groups of at most 4 heads): B's columns 0-3 are the hi parts of heads 0-3 and
// columns 4-7 their residuals (bh as page_values_any selects it, bl unused), so one MMA
// per K-tile instead of two; o's columns 4-7 are added to 0-3 when a block ends
// (decode_mma.cuh, fold_split_columns).
template <int D, int BITS, bool SPLIT, bool UNITS>
__device__ __forceinline__ void page_values(const PageSrc& src, const uint32_t (&bh)[4], const uint32_t (&bl)[4],
                                            int lane, float (&o)[D / 16][4]) {
  const int g = lane >> 2, t4 = lane & 3;
  const uint4* vbase = src.v;
  uint4 vw[kValueVectors<D, BITS>];
  load_value_words<D, BITS>(vbase, lane, vw);
#pragma unroll
  for (int m = 0; m < D / 16; ++m) {
    uint32_t ra[4], rb[4];
    value_regs<D, BITS>(vbase, vw, m, g, t4, ra, rb);
    if constexpr (BITS == 16) {  // fp16 pages: this form measured faster
      float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int kt = 0; kt < 2; ++kt) {
        mma16816(t, ra[2 * kt], rb[2 * kt], ra[2 * kt + 1], rb[2 * kt + 1], bh[2 * kt], bh[2 * kt + 1]);
        if constexpr (!SPLIT) {
          mma16816(t, ra[2 * kt], rb[2 * kt], ra[2 * kt + 1], rb[2 * kt + 1], bl[2 * kt], bl[2 * kt + 1]);
        }
      }
      if constexpr (UNITS) {  // fp16 values into the quantized pages' units
        o[m][0] = fmaf(t[0], kValueUnit, o[m][0]), o[m][1] = fmaf(t[1], kValueUnit, o[m][1]);
        o[m][2] = fmaf(t[2], kValueUnit, o[m][2]), o[m][3] = fmaf(t[3], kValueUnit, o[m][3]);
      } else {
        o[m][0] += t[0], o[m][1] += t[1], o[m][2] += t[2], o[m][3] += t[3];
      }
    } else {
#pragma unroll
      for (int kt = 0; kt < 2; ++kt) {
        mma16816(o[m], ra[2 * kt], rb[2 * kt], ra[2 * kt + 1], rb[2 * kt + 1], bh[2 * kt], bh[2 * kt + 1]);
        if constexpr (!SPLIT) {
          mma16816(o[m], ra[2 * kt], rb[2 * kt], ra[2 * kt + 1], rb[2 * kt + 1], bl[2 * kt], bl[2 * kt + 1]);
        }
      }
    }
  }
}

// B = (x hi, x residual) of a page's value MMAs, x = p step per token (token_of's
// order): SPLIT lanes 0-15 take the hi parts, lanes 16-31 the residuals, as one
// expression: round(x - k hi) is hi for k = 0 and the residual for k = 1 (a select after
// computing both cost two moves per register).
template <bool SPLIT>
__device__ __forceinline__ void value_b(const float (&x)[4][2], int lane, uint32_t (&bh)[4], uint32_t (&bl)[4]) {
  const float k_res = lane >= 16 ? 1.0f : 0.0f;
#pragma unroll
  for (int a = 0; a < 4; ++a) {
    const __half2 hi = __floats2half2_rn(x[a][0], x[a][1]);
    if constexpr (SPLIT) {
      bh[a] = h2_bits(__floats2half2_rn(fmaf(-k_res, __low2float(hi), x[a][0]), fmaf(-k_res, __high2float(hi), x[a][1])));
      bl[a] = 0u;  // unused
    } else {
      bh[a] = h2_bits(hi);
      bl[a] = h2_bits(__floats2half2_rn(x[a][0] - __low2float(hi), x[a][1] - __high2float(hi)));
    }
  }
}

// The lane's share of head g's sum p lo in the warp's current value block (flushed with
// o, decode_mma.cuh): `tok` for pages with one parameter group (tokenwise, CSTQ, and
// groupwise with vgroup = D), and, in kernels built for GROUPS (caches with groupwise
// values in n_grp > 1 groups: KIVI), one sum per group at grp[32 j] (the lane's own
// slots in shared memory: registers are at the kernel's cap). Each page added its group
// sums into o through four shuffles per group before (KIVI: 16 per page). The other
// kernels carry none of it: its pointer and count alone made ZipCache's kernel 3% slower.
template <bool GROUPS>
struct LowSums {
  static constexpr bool kGroups = GROUPS;
  float tok = 0.0f;
  float* grp = nullptr;
  int n_grp = 0;
  __device__ __forceinline__ void scale(float c) {
    tok *= c;
    if constexpr (GROUPS) {
      for (int j = 0; j < n_grp; ++j) grp[32 * j] *= c;
    }
  }
};

// Groupwise values (KIVI's, SPEC section 2): TILES = vgroup / 16 M-tiles per parameter
// group, known at compile time, so that each of the page's value words is loaded once
// (at its first M-tile: with d = 256 all of them at once spilled) and every group's
// M-tiles run unrolled (a runtime group loop reloaded them per group and tested every
// M-tile against the group's range).
template <int D, int VBITS, int TILES, bool SPLIT, class Lows>
__device__ __forceinline__ void page_values_grouped(const PageSrc& src, const float (&pr)[4][2], int lane,
                                                    float (&o)[D / 16][4], Lows& lows) {
  constexpr int NG = D / 16 / TILES;
  constexpr int MPV = VBITS == 2 ? 4 : 2;  // M-tiles per value vector (load_value_words)
  static_assert(VBITS == 2 || VBITS == 4, "groupwise values are codes");
  const int g = lane >> 2, t4 = lane & 3;
  uint4 vw[kValueVectors<D, VBITS>];
  float plo[NG];
  float ps[4][2];  // p times register a's B scale (value_b_scale), once for every group
#pragma unroll
  for (int a = 0; a < 4; ++a) ps[a][0] = pr[a][0] * value_b_scale<VBITS>(a), ps[a][1] = pr[a][1] * value_b_scale<VBITS>(a);
#pragma unroll
  for (int gi = 0; gi < NG; ++gi) {
    // Tokens 8 t4 + a + 4 i: one 16-byte vector each of the group's lows and steps.
    const uint4 l4 = *reinterpret_cast<const uint4*>(src.vp + gi * 32 + 8 * t4);
    const uint4 s4 = *reinterpret_cast<const uint4*>(src.vp + (NG + gi) * 32 + 8 * t4);
    const __half* lh = reinterpret_cast<const __half*>(&l4);
    const __half* sh = reinterpret_cast<const __half*>(&s4);
    float x[4][2];
    plo[gi] = 0.0f;
#pragma unroll
    for (int a = 0; a < 4; ++a) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        x[a][i] = ps[a][i] * __half2float(sh[a + 4 * i]);
        plo[gi] = fmaf(pr[a][i], __half2float(lh[a + 4 * i]), plo[gi]);
      }
    }
    uint32_t bh[4], bl[4];
    value_b<SPLIT>(x, lane, bh, bl);
#pragma unroll
    for (int m = gi * TILES; m < (gi + 1) * TILES; ++m) {
      if (m % MPV == 0) vw[m / MPV] = src.v[32 * (m / MPV) + lane];  // as load_value_words
      uint32_t ra[4], rb[4];
      value_regs<D, VBITS>(src.v, vw, m, g, t4, ra, rb);
#pragma unroll
      for (int kt = 0; kt < 2; ++kt) {
        mma16816(o[m], ra[2 * kt], rb[2 * kt], ra[2 * kt + 1], rb[2 * kt + 1], bh[2 * kt], bh[2 * kt + 1]);
        if constexpr (!SPLIT) {
          mma16816(o[m], ra[2 * kt], rb[2 * kt], ra[2 * kt + 1], rb[2 * kt + 1], bl[2 * kt], bl[2 * kt + 1]);
        }
      }
    }
  }
  // The group sums after the MMAs: a shared-memory store among the value loads would
  // order them.
  if constexpr (NG == 1) {
    lows.tok += plo[0];
  } else if constexpr (Lows::kGroups) {
#pragma unroll
    for (int gi = 0; gi < NG; ++gi) lows.grp[32 * gi] += plo[gi];
  }
}

// VBITS: the page's value bits (16: fp16 values); VK: its ValueKind. lows collects the
// lane's share of head g's sum p lo (LowSums): flush() sums it over the head's lanes and
// adds it to o's columns once per block, where a per-page sum took four shuffles per
// page. SPLIT: see page_values; lanes 16-31 (B columns 4-7) mirror heads 0-3
// (decode_mma.cuh, frag_halves) and supply their residuals; the lows belong to the hi
// columns once (flush).
// UNITS: o is in the quantized pages' units, 2^-kValueUnitLog2 (always for quantized
// pages; fp16 pages are scaled into them in a cache that holds quantized pages too),
// while the lows stay plain: flush() takes o 2^kValueUnitLog2 + lo.
template <int D, int VBITS, int VK, bool SPLIT, bool UNITS, class Lows>
__device__ __forceinline__ void page_values_any(const PageSrc& src, const KvPage& pg,
                                                const float (&pr)[4][2], int lane,
                                                float (&o)[D / 16][4], Lows& lows) {
  if constexpr (VK == kGroupedValues && !Lows::kGroups) {
    // One group (vgroup = D): a kernel without GROUPS runs no cache with more (with_kernel).
    page_values_grouped<D, VBITS, D / 16, SPLIT>(src, pr, lane, o, lows);
  } else if constexpr (VK == kGroupedValues) {
    // vgroup: 16 .. D channels, a power of two, at most 8 groups (gpu_cache.cpp;
    // supported()).
    switch (pg.vgroup) {
      case 16:
        if constexpr (D <= 128) return page_values_grouped<D, VBITS, 1, SPLIT, Lows>(src, pr, lane, o, lows);
        return;
      case 32: return page_values_grouped<D, VBITS, 2, SPLIT, Lows>(src, pr, lane, o, lows);
      case 64: return page_values_grouped<D, VBITS, 4, SPLIT, Lows>(src, pr, lane, o, lows);
      default:
        if constexpr (D >= 128) {
          if (pg.vgroup == 128) return page_values_grouped<D, VBITS, 8, SPLIT, Lows>(src, pr, lane, o, lows);
        }
        if constexpr (D >= 256) {
          return page_values_grouped<D, VBITS, 16, SPLIT, Lows>(src, pr, lane, o, lows);
        }
        return;
    }
  } else {
    const int t4 = lane & 3;
    constexpr bool quant = VBITS != 16;
    float x[4][2], plo = 0.0f;
    if constexpr (!quant) {
#pragma unroll
      for (int a = 0; a < 4; ++a) x[a][0] = pr[a][0], x[a][1] = pr[a][1];
    } else {
      // Tokens 8 t4 + a + 4 i: one 16-byte vector each of lows and steps.
      const uint4 l4 = *reinterpret_cast<const uint4*>(src.vp + 8 * t4);
      const uint4 s4 = *reinterpret_cast<const uint4*>(src.vp + 32 + 8 * t4);
      const __half* lh = reinterpret_cast<const __half*>(&l4);
      const __half* sh = reinterpret_cast<const __half*>(&s4);
#pragma unroll
      for (int a = 0; a < 4; ++a) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          // times the register's B scale: exact; no overflow (value_b_scale)
          x[a][i] = pr[a][i] * (__half2float(sh[a + 4 * i]) * value_b_scale<VBITS>(a));
          plo = fmaf(pr[a][i], __half2float(lh[a + 4 * i]), plo);
        }
      }
      lows.tok += plo;  // summed over lanes and heads once per block (decode_mma.cuh, flush)
    }
    uint32_t bh[4], bl[4];
    value_b<SPLIT>(x, lane, bh, bl);
    page_values<D, VBITS, SPLIT, UNITS>(src, bh, bl, lane, o);
  }
}

}  // namespace mma
}  // namespace zc::cuda::detail
