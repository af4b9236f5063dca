// PTX wrappers shared by the tensor-core kernels (prefill attention, the fused probe
// pass, decode attention): cp.async copies into shared memory, ldmatrix, mma.sync
// m16n8k16 with fp32 accumulators, the SFU's 2^x and quad (4-lane) reductions, and the
// S = A B^T tile product of the two flash-style kernels. Include only from .cu files
// (and headers they include).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace zc::cuda::detail::ptx {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 (or 8) bytes global -> shared, 16 bypassing L1; zero-filled when !valid (src not read).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 16 : 0));
}
// 16 bytes global -> shared, bypassing L1, always read.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async8(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 8 : 0));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldsm_x4(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// c += a b for a 16x16 row-major A and a 16x8 column-major B of T (bf16 or fp16),
// fp32 accumulators.
template <typename T>
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                   uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                            uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats rounded to the 16-bit type, `lo` in the low half (the lower column).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// 2^x on the SFU (ex2.approx.ftz: ~2 ulp, denormal results flush to 0, 2^-inf = 0, NaN
// stays NaN).
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Max / sum over the four lanes of a quad (lanes 4g .. 4g + 3), in every lane.
__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// s[mi] = A_mi B^T for MI m16 tiles of A against N rows of B, both of D 16-bit T
// elements at a shared-memory pitch of D + 8 (conflict-free ldmatrix): A from
// ldmatrix at a_lane + mi * 16 rows, or from the register fragments af (NA = D / 16)
// when MI == 1; B from ldmatrix at b_lane. Fresh fp32 accumulators.
template <typename T, int D, int MI, int N, int NA>
__device__ __forceinline__ void tile_product(float (&s)[MI][N / 8][4], const uint32_t (&af)[NA][4],
                                             uint32_t a_lane, uint32_t b_lane) {
  constexpr int LD = D + 8;
#pragma unroll
  for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
    for (int n = 0; n < N / 8; ++n) s[mi][n][0] = s[mi][n][1] = s[mi][n][2] = s[mi][n][3] = 0.0f;
  }
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t a[MI][4];
#pragma unroll
    for (int mi = 0; mi < MI; ++mi) {
      if constexpr (MI == 1) {
        static_assert(NA == D / 16, "register fragments hold all of A's row tile");
        a[mi][0] = af[kk][0], a[mi][1] = af[kk][1], a[mi][2] = af[kk][2], a[mi][3] = af[kk][3];
      } else {
        ldsm_x4(a_lane + static_cast<uint32_t>(mi * 16 * LD * 2 + kk * 32), a[mi]);
      }
    }
#pragma unroll
    for (int n2 = 0; n2 < N / 16; ++n2) {
      uint32_t r[4];
      ldsm_x4(b_lane + static_cast<uint32_t>((n2 * 16 * LD + kk * 16) * 2), r);
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
        mma<T>(s[mi][2 * n2], a[mi], r[0], r[1]);
        mma<T>(s[mi][2 * n2 + 1], a[mi], r[2], r[3]);
      }
    }
  }
}

// One m-tile of S fragments (NB blocks of 8 key columns; entries 0, 1: row g, 2, 3: row
// g + 8, columns 2t4 and 2t4 + 1 of each block): entries past the last key a row may
// see become -inf. lim0 / lim1: that key for rows g / g + 8, counted from this thread's
// first column (block 0, column 2t4).
template <int NB>
__device__ __forceinline__ void mask_keys_after(float (&s)[NB][4], int lim0, int lim1) {
#pragma unroll
  for (int n = 0; n < NB; ++n) {
    if (n * 8 > lim0) s[n][0] = -INFINITY;
    if (n * 8 + 1 > lim0) s[n][1] = -INFINITY;
    if (n * 8 > lim1) s[n][2] = -INFINITY;
    if (n * 8 + 1 > lim1) s[n][3] = -INFINITY;
  }
}

// The largest of this thread's entries of fragment row h (0: row g, 1: row g + 8).
template <int NB>
__device__ __forceinline__ float fragment_row_max(const float (&s)[NB][4], int h) {
  float mx = -INFINITY;
#pragma unroll
  for (int n = 0; n < NB; ++n) mx = fmaxf(mx, fmaxf(s[n][2 * h], s[n][2 * h + 1]));
  return mx;
}

}  // namespace zc::cuda::detail::ptx
