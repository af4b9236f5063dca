// Causal flash attention for prefill (SPEC.md section 3: "all other attention output
// comes from the fast (flash) attention kernel, which never materializes A"), GQA,
// fp16 or bf16 inputs with fp32 accumulation, on the tensor cores through WMMA.
//
// A CTA of 4 warps owns 64 query rows of one (sequence, query head); each warp owns 16
// rows. Keys and values stream through shared memory in tiles of 64 tokens up to the
// diagonal. Per tile, a warp computes S = Q K^T (16 x 64, fp32) into its own shared
// scratch, applies the causal mask and the online softmax (running max m and sum l per
// row, the probabilities P rounded to the input type), rescales its fp32 output rows
// by exp(m_old - m_new) and adds P V. Only a 16 x 64 block of scores per warp ever
// exists. The output is O / l in the input type.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include <cstdint>

#include "cuda/kv/prefill_launch.h"

namespace zc::cuda::detail {
namespace {

using namespace nvcuda;

constexpr int kRows = 64, kCols = 64, kThreads = 128;

template <typename T>
struct Smem {
  int d, ld_t, ld_s, ld_p, ld_o;
  T *q, *k, *v, *p;
  float *s, *o;
};

template <typename T>
__device__ Smem<T> carve(unsigned char* base, int d) {
  Smem<T> m;
  m.d = d;
  m.ld_t = d + 8;       // 16-bit tiles: +16 bytes per row against bank conflicts
  m.ld_s = kCols + 4;   // fp32 scores
  m.ld_p = kCols + 8;   // 16-bit probabilities
  m.ld_o = d + 4;       // fp32 output rows
  m.q = reinterpret_cast<T*>(base);
  m.k = m.q + kRows * m.ld_t;
  m.v = m.k + kCols * m.ld_t;
  m.p = m.v + kCols * m.ld_t;
  m.s = reinterpret_cast<float*>(m.p + kRows * m.ld_p);
  m.o = m.s + kRows * m.ld_s;
  return m;
}

// rows x d elements of a [.., tokens, heads, d] tensor into shared memory (zero past
// `tokens`), 16-byte vectors.
template <typename T>
__device__ void load_tile(T* dst, int ld, const T* src, int row0, int rows, int tokens,
                          size_t row_stride, int d) {
  const int vecs = d / 8;
  for (int i = static_cast<int>(threadIdx.x); i < rows * vecs; i += kThreads) {
    const int r = i / vecs, c = (i % vecs) * 8;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (row0 + r < tokens) val = *reinterpret_cast<const uint4*>(src + (row0 + r) * row_stride + c);
    *reinterpret_cast<uint4*>(dst + r * ld + c) = val;
  }
}

template <typename T>
__device__ T from_float(float x);
template <>
__device__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

template <typename T>
__global__ void __launch_bounds__(kThreads) prefill_kernel(const PrefillParams p) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const int d = p.d;
  const Smem<T> m = carve<T>(smem_raw, d);
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int q0 = static_cast<int>(blockIdx.x) * kRows, head = static_cast<int>(blockIdx.y);
  const int b = static_cast<int>(blockIdx.z);
  const int g = p.n_heads / p.n_kv, kvh = head / g;
  const int L = p.tokens;
  const size_t q_stride = static_cast<size_t>(p.n_heads) * d, kv_stride = static_cast<size_t>(p.n_kv) * d;
  const T* q = static_cast<const T*>(p.q) + static_cast<size_t>(b) * L * q_stride + static_cast<size_t>(head) * d;
  const T* k = static_cast<const T*>(p.k) + static_cast<size_t>(b) * L * kv_stride + static_cast<size_t>(kvh) * d;
  const T* v = static_cast<const T*>(p.v) + static_cast<size_t>(b) * L * kv_stride + static_cast<size_t>(kvh) * d;

  load_tile(m.q, m.ld_t, q, q0, kRows, L, q_stride, d);
  for (int i = static_cast<int>(threadIdx.x); i < kRows * m.ld_o; i += kThreads) m.o[i] = 0.0f;

  // Softmax state: lane pair (2r, 2r+1) of warp w owns row 16w + r, half the columns each.
  const int r = lane / 2, half = lane % 2, row = warp * 16 + r, qi = q0 + row;
  float m_row = -INFINITY, l_row = 0.0f;
  T* p_w = m.p + warp * 16 * m.ld_p;
  float* s_w = m.s + warp * 16 * m.ld_s;
  float* o_w = m.o + warp * 16 * m.ld_o;
  const T* q_w = m.q + warp * 16 * m.ld_t;

  const int last_key = min(q0 + kRows, L) - 1;
  for (int k0 = 0; k0 <= last_key; k0 += kCols) {
    __syncthreads();  // previous tile's K/V no longer read (and Q/O initialized)
    load_tile(m.k, m.ld_t, k, k0, kCols, L, kv_stride, d);
    load_tile(m.v, m.ld_t, v, k0, kCols, L, kv_stride, d);
    __syncthreads();

    // S = Q K^T for the warp's 16 rows.
    for (int n = 0; n < kCols / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
      for (int kk = 0; kk < d / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> bk;
        wmma::load_matrix_sync(a, q_w + kk * 16, m.ld_t);
        wmma::load_matrix_sync(bk, m.k + n * 16 * m.ld_t + kk * 16, m.ld_t);
        wmma::mma_sync(acc, a, bk, acc);
      }
      wmma::store_matrix_sync(s_w + n * 16, acc, m.ld_s, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax over this tile (log2 units), causal mask key <= query.
    float* srow = s_w + r * m.ld_s + half * 32;
    float mx = -INFINITY;
    for (int c = 0; c < 32; ++c) {
      const int key = k0 + half * 32 + c;
      const bool ok = key <= qi && key < L;
      const float x = ok ? srow[c] * p.scale_log2 : -INFINITY;
      srow[c] = x;
      mx = fmaxf(mx, x);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float m_new = fmaxf(m_row, mx);
    const float m_use = m_new == -INFINITY ? 0.0f : m_new;
    const float corr = exp2f(m_row - m_use);
    float sum = 0.0f;
    T* prow = p_w + r * m.ld_p + half * 32;
    for (int c = 0; c < 32; ++c) {
      const float e = exp2f(srow[c] - m_use);
      const T pt = from_float<T>(e);
      prow[c] = pt;
      sum += static_cast<float>(pt);  // the sum of what P V multiplies
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    l_row = l_row * corr + sum;
    m_row = m_new;
    float* orow = o_w + r * m.ld_o + half * (d / 2);
    for (int c = 0; c < d / 2; ++c) orow[c] *= corr;
    __syncwarp();

    // O += P V for the warp's rows.
    for (int n = 0; n < d / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, o_w + n * 16, m.ld_o, wmma::mem_row_major);
      for (int kk = 0; kk < kCols / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> bv;
        wmma::load_matrix_sync(a, p_w + kk * 16, m.ld_p);
        wmma::load_matrix_sync(bv, m.v + kk * 16 * m.ld_t + n * 16, m.ld_t);
        wmma::mma_sync(acc, a, bv, acc);
      }
      wmma::store_matrix_sync(o_w + n * 16, acc, m.ld_o, wmma::mem_row_major);
    }
    __syncwarp();
  }

  // out = O / l, rounded to the input type.
  if (qi < L) {
    T* dst = static_cast<T*>(p.out) + (static_cast<size_t>(b) * L + qi) * q_stride +
             static_cast<size_t>(head) * d + half * (d / 2);
    const float* orow = o_w + r * m.ld_o + half * (d / 2);
    const float inv = 1.0f / l_row;
    for (int c = 0; c < d / 2; ++c) dst[c] = from_float<T>(orow[c] * inv);
  }
}

size_t smem_bytes(int d) {
  const size_t ld_t = size_t(d) + 8, ld_s = kCols + 4, ld_p = kCols + 8, ld_o = size_t(d) + 4;
  return 2 * (kRows * ld_t + 2 * kCols * ld_t + kRows * ld_p) + 4 * (kRows * ld_s + kRows * ld_o);
}

template <typename T>
cudaError_t launch_typed(const PrefillParams& p, cudaStream_t s) {
  const size_t smem = smem_bytes(p.d);
  static size_t raised = 48 * 1024;
  if (smem > raised) {
    const cudaError_t e = cudaFuncSetAttribute(prefill_kernel<T>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(smem));
    if (e != cudaSuccess) return e;
    raised = smem;
  }
  const dim3 grid(static_cast<unsigned>((p.tokens + kRows - 1) / kRows),
                  static_cast<unsigned>(p.n_heads), static_cast<unsigned>(p.batch));
  prefill_kernel<T><<<grid, kThreads, smem, s>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_prefill(const PrefillParams& p, bool bf16, cudaStream_t s) {
  return bf16 ? launch_typed<__nv_bfloat16>(p, s) : launch_typed<__half>(p, s);
}

}  // namespace zc::cuda::detail
