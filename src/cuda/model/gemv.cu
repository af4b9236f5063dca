// Skinny products of decode (issue 4): y[n][out] = x[n][in] W^T for n <= 8 rows, bf16
// x and W, fp32 accumulation, fp32 (+ beta y) or bf16 output (gemm.h dispatches here).
// At batch 8 a decode step's weight products are bound by streaming W once; cuBLAS ran
// them at 1.2-2.7 TB/s on an H100 (qkv and o the slowest, docs/benchmarks.md). The SIMT
// form this replaced (a warp per two output rows, 8 x 2 FMAs per weight pair) was
// compute-bound at 8 rows.
//
// The tensor cores do the arithmetic: y^T = W x^T as mma.sync.m16n8k16 (bf16 in, fp32
// accumulators) with A = 16 output rows of W and B = x^T (16 inputs x 8 rows: the
// decode rows are the N dimension). A sum over k may take its k in any order as long as
// A and B agree, so each thread reads whole 16-byte vectors of its rows of W and of its
// x row, and the MMA's k are mapped onto them (chunk_product): a warp's load is whole
// 32-byte sectors of W, with no shared memory and no shuffles.
//
// A CTA owns 16 output rows; its 8 warps split `in` in 64-wide chunks (warp w: chunks
// w, w + 8, ...; two chunks per step, and the next step's weights are loaded before
// this step's products) and add their partial sums through shared memory in a fixed
// order, so a row's result depends neither on n nor on the other rows (a sequence gets
// the same logits alone and in a batch). W is streamed past L1
// (ld.global.nc.L1::no_allocate); x, read by every CTA, goes through it. Launched with
// programmatic dependent launch when enabled (core/launch.cuh): the first weights do not
// depend on the kernel before, so they are requested before waiting for it.
//
// The MLP's gate/up product can end in SwiGLU here (SWIGLU): W is [gate; up] (2 inter
// rows), and a CTA takes gate rows r0..r0+7 as its M-tile's rows 0-7 and the matching up
// rows as rows 8-15, so both halves of an activation meet in one thread, which rounds
// each to bf16 (as the unfused gate/up output is) and writes bf16(silu(gate) * up): the
// SwiGLU kernel and its launch per layer are gone from the decode step.
//
// Shapes measured at the Llama-3-8B decode products (8 rows, H100, CudaGemm.Timing*):
// 1 or 2 M-tiles per CTA, 1, 2 or 4 chunks per step; 1 x 2 was within 1% of the best
// for every product, and it takes 4-26% less time than cuBLAS on each (o the most,
// gate/up the least; docs/benchmarks.md, session 9).
#include <cuda_bf16.h>

#include <cstdint>

#include "cuda/core/bf16.cuh"
#include "cuda/core/launch.cuh"
#include "cuda/core/ptx.cuh"
#include "cuda/model/gemv_launch.h"
#include "cuda/model/swiglu.cuh"

namespace zc::cuda::detail {
namespace {

constexpr int kWarps = 8, kThreads = kWarps * 32;
constexpr int kChunk = 64;    // inputs per warp per chunk
constexpr int kInFlight = 2;  // chunks per warp per step
constexpr int kStep = kWarps * kInFlight;

__device__ __forceinline__ uint4 load_stream(const uint16_t* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// Word i (inputs 2i, 2i + 1 of the thread's 16) of a thread's two vectors.
__device__ __forceinline__ uint32_t word(const uint4 (&v)[2], int i) {
  const uint4& u = v[i / 4];
  switch (i % 4) {
    case 0: return u.x;
    case 1: return u.y;
    case 2: return u.z;
    default: return u.w;
  }
}

// One 64-wide chunk: thread (g, t4) holds the chunk's inputs [8 t4, 8 t4 + 8) and
// [32 + 8 t4, 32 + 8 t4 + 8) (vectors 0 and 1, so that one load instruction of the warp
// reads 64 contiguous bytes of a row) for rows g and g + 8 of the M-tile and for x row
// g. MMA s takes the logical k (2 t4, 2 t4 + 1) from the thread's words 2s and
// (2 t4 + 8, 2 t4 + 9) from word 2s + 1, for A and B alike: over t4 and s every input
// of the chunk enters exactly one product.
__device__ __forceinline__ void chunk_product(const uint4 (&wv)[2][2], const uint4 (&xv)[2], float (&acc)[4]) {
#pragma unroll
  for (int s = 0; s < 4; ++s) {
    const uint32_t a[4] = {word(wv[0], 2 * s), word(wv[1], 2 * s), word(wv[0], 2 * s + 1), word(wv[1], 2 * s + 1)};
    ptx::mma<__nv_bfloat16>(acc, a, word(xv, 2 * s), word(xv, 2 * s + 1));
  }
}

template <int N, bool SWIGLU>
__global__ void __launch_bounds__(kThreads, 2) skinny_kernel(const uint16_t* __restrict__ x, int in,
                                                             const uint16_t* __restrict__ w, int out,
                                                             float* __restrict__ y, float beta,
                                                             uint16_t* __restrict__ y16) {
  __shared__ float partial[kWarps][16][8];
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int g = lane >> 2, t4 = lane & 3;
  // SWIGLU: out = inter; the CTA's gate rows start at row0, its up rows at out + row0.
  const int row0 = static_cast<int>(blockIdx.x) * (SWIGLU ? 8 : 16);
  const int chunks = (in + kChunk - 1) / kChunk;

  const uint16_t* wrow[2];
  bool row_ok[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = SWIGLU ? row0 + g : row0 + 8 * h + g;
    row_ok[h] = r < out;
    wrow[h] = w + (static_cast<size_t>(row_ok[h] ? r : 0) + (SWIGLU && h == 1 ? size_t(out) : 0)) * in + 8 * t4;
  }
  const bool x_ok = g < N;  // rows of B past n are zeros
  const uint16_t* xrow = x + static_cast<size_t>(x_ok ? g : 0) * in + 8 * t4;
  const uint4 zero = make_uint4(0u, 0u, 0u, 0u);
  // Whether vector v of chunk c is inside `in` (in % 8 == 0: a vector is all in or out).
  const auto inside = [&](int c, int v) { return c < chunks && c * kChunk + 32 * v + 8 * t4 < in; };
  const auto load_w = [&](int c0, uint4 (&wv)[kInFlight][2][2]) {
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {
      const int c = c0 + kWarps * u;
#pragma unroll
      for (int v = 0; v < 2; ++v) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          wv[u][h][v] = inside(c, v) && row_ok[h] ? load_stream(wrow[h] + c * kChunk + 32 * v) : zero;
        }
      }
    }
  };

  uint4 wv[kInFlight][2][2];
  load_w(warp, wv);        // the weights do not depend on the kernel before this one
  wait_for_prior_grids();  // x (and y, when beta != 0) do
  allow_dependent_launch();
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int c0 = warp; c0 < chunks; c0 += kStep) {
    uint4 xv[kInFlight][2], next[kInFlight][2][2];
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {
      const int c = c0 + kWarps * u;
#pragma unroll
      for (int v = 0; v < 2; ++v) {
        xv[u][v] = inside(c, v) && x_ok ? __ldg(reinterpret_cast<const uint4*>(xrow + c * kChunk + 32 * v)) : zero;
      }
    }
    load_w(c0 + kStep, next);  // all zeros past the last chunk, without a load
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) chunk_product(wv[u], xv[u], acc);
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {
#pragma unroll
      for (int h = 0; h < 2; ++h) wv[u][h][0] = next[u][h][0], wv[u][h][1] = next[u][h][1];
    }
  }

  // C fragment: (row g, columns 2 t4, 2 t4 + 1) and (row g + 8, the same columns).
  partial[warp][g][2 * t4] = acc[0];
  partial[warp][g][2 * t4 + 1] = acc[1];
  partial[warp][g + 8][2 * t4] = acc[2];
  partial[warp][g + 8][2 * t4 + 1] = acc[3];
  __syncthreads();
  if (tid >= (SWIGLU ? 64 : 128)) return;
  const int r = tid / 8, col = tid % 8, row = row0 + r;
  if (col >= N || row >= out) return;
  // Tile row tr's result for this column: the warps' partial sums in a fixed order.
  const auto total = [&](int tr) {
    float sum = 0.0f;
#pragma unroll
    for (int wi = 0; wi < kWarps; ++wi) sum += partial[wi][tr][col];
    return sum;
  };
  const size_t at = static_cast<size_t>(col) * out + row;
  const float sum = total(r);
  if constexpr (SWIGLU) {  // gate in tile row r, up in r + 8, each rounded to bf16 first
    const float gate16 = __uint_as_float(uint32_t(to_bf16_bits(sum)) << 16);
    const float up16 = __uint_as_float(uint32_t(to_bf16_bits(total(r + 8))) << 16);
    y16[at] = static_cast<uint16_t>(silu_mul_bits(gate16, up16));
  } else if (y16 != nullptr) {
    y16[at] = to_bf16_bits(sum);
  } else {
    y[at] = beta == 0.0f ? sum : fmaf(beta, y[at], sum);
  }
}

template <int N, bool SWIGLU>
cudaError_t launch_n(const uint16_t* x, int in, const uint16_t* w, int out, float* y, float beta,
                     uint16_t* y16, cudaStream_t s) {
  const int rows = SWIGLU ? 8 : 16;
  const unsigned ctas = static_cast<unsigned>((out + rows - 1) / rows);
  return launch_pdl(PdlKernel::Gemv, skinny_kernel<N, SWIGLU>, dim3(ctas), dim3(kThreads), 0, s, x, in, w, out, y, beta, y16);
}

template <bool SWIGLU>
cudaError_t launch_rows(const uint16_t* x, int n, int in, const uint16_t* w, int out, float* y, float beta,
                        uint16_t* y16, cudaStream_t s) {
  switch (n) {
    case 1: return launch_n<1, SWIGLU>(x, in, w, out, y, beta, y16, s);
    case 2: return launch_n<2, SWIGLU>(x, in, w, out, y, beta, y16, s);
    case 3: return launch_n<3, SWIGLU>(x, in, w, out, y, beta, y16, s);
    case 4: return launch_n<4, SWIGLU>(x, in, w, out, y, beta, y16, s);
    case 5: return launch_n<5, SWIGLU>(x, in, w, out, y, beta, y16, s);
    case 6: return launch_n<6, SWIGLU>(x, in, w, out, y, beta, y16, s);
    case 7: return launch_n<7, SWIGLU>(x, in, w, out, y, beta, y16, s);
    default: return launch_n<8, SWIGLU>(x, in, w, out, y, beta, y16, s);
  }
}

}  // namespace

cudaError_t launch_gemv(const uint16_t* x, int n, int in, const uint16_t* w, int out, float* y, float beta,
                        uint16_t* y16, cudaStream_t s) {
  return launch_rows<false>(x, n, in, w, out, y, beta, y16, s);
}

cudaError_t launch_gemv_swiglu(const uint16_t* x, int n, int in, const uint16_t* w_gate_up, int inter,
                               uint16_t* act, cudaStream_t s) {
  return launch_rows<true>(x, n, in, w_gate_up, inter, nullptr, 0.0f, act, s);
}

}  // namespace zc::cuda::detail
