// Host side of the layer kernels (layer_kernels.h): shape and pointer checks, then the
// launch (layer_kernels.cu holds the kernels).
#include "cuda/model/layer_kernels.h"

#include <climits>
#include <cmath>

#include "core/error.h"
#include "cuda/core/device.h"
#include "cuda/model/layer_launch.h"

namespace zc::cuda {

namespace {

// The grids index rows by blockIdx.x and elements by size_t; int sizes keep every
// product of two of them inside size_t. Checks common to every call.
void need_shape(const char* fn, int rows, const char* rows_name, int cols, const char* cols_name) {
  if (rows < 0) fail("cuda {}: {} must be >= 0, got {}", fn, rows_name, rows);
  if (cols < 1) fail("cuda {}: {} must be >= 1, got {}", fn, cols_name, cols);
}

void need_ptr(const char* fn, const void* p, const char* name) {
  if (p == nullptr) fail("cuda {}: {} is a null pointer", fn, name);
}

// The per-head view [first_col, first_col + n_heads * head_dim) must fit in a row.
void need_heads(const char* fn, int row_stride, int first_col, int n_heads, int head_dim) {
  if (n_heads < 1) fail("cuda {}: n_heads must be >= 1, got {}", fn, n_heads);
  if (head_dim < 1) fail("cuda {}: head_dim must be >= 1, got {}", fn, head_dim);
  if (first_col < 0) fail("cuda {}: first_col must be >= 0, got {}", fn, first_col);
  const long long end = static_cast<long long>(first_col) + static_cast<long long>(n_heads) * head_dim;
  if (end > row_stride) {
    fail("cuda {}: heads end at column {} (first_col {} + {} heads x {}) past row_stride {}", fn,
         end, first_col, n_heads, head_dim, row_stride);
  }
}

// A [q | k | v] row of (n_heads + 2 n_kv_heads) heads x head_dim, the width an int.
void need_qkv(const char* fn, int rows, int n_heads, int n_kv_heads, int head_dim) {
  need_shape(fn, rows, "rows", head_dim, "head_dim");
  if (n_heads < 1) fail("cuda {}: n_heads must be >= 1, got {}", fn, n_heads);
  if (n_kv_heads < 1) fail("cuda {}: n_kv_heads must be >= 1, got {}", fn, n_kv_heads);
  if ((static_cast<long long>(n_heads) + 2LL * n_kv_heads) * head_dim > INT_MAX) {
    fail("cuda {}: a qkv row of ({} + 2 x {}) heads x {} is too wide", fn, n_heads, n_kv_heads,
         head_dim);
  }
}

// SwiGLU from an fp32 or bf16 gate_up (T = float / uint16_t).
template <typename T>
void silu_mul(const char* fn, const T* gate_up, int rows, int inter, uint16_t* y, cudaStream_t stream) {
  need_shape(fn, rows, "rows", inter, "inter");
  if (rows == 0) return;
  need_ptr(fn, gate_up, "gate_up");
  need_ptr(fn, y, "y");
  check(detail::launch_silu_mul(gate_up, rows, inter, y, stream), fn);
  check_launch(fn);
}

void rmsnorm_checks(const char* fn, const float* x, int rows, int dim, const float* w, float eps,
                    const void* y) {
  need_shape(fn, rows, "rows", dim, "dim");
  if (dim > 16384) fail("cuda {}: dim {} exceeds the supported 16384", fn, dim);
  if (!std::isfinite(eps) || eps < 0.0f) fail("cuda {}: eps must be finite and >= 0, got {}", fn, eps);
  if (rows == 0) return;
  need_ptr(fn, x, "x");
  need_ptr(fn, w, "w");
  need_ptr(fn, y, "y");
}

}  // namespace

void embed_rows(const uint16_t* table_bf16, int vocab, int hidden, const int32_t* ids, int n,
                float* x, cudaStream_t stream) {
  need_shape("embed_rows", n, "n", hidden, "hidden");
  if (vocab < 1) fail("cuda embed_rows: vocab must be >= 1, got {}", vocab);
  if (n == 0) return;
  need_ptr("embed_rows", table_bf16, "table");
  need_ptr("embed_rows", ids, "ids");
  need_ptr("embed_rows", x, "x");
  check(detail::launch_embed_rows(table_bf16, vocab, hidden, ids, n, x, stream), "embed_rows");
  check_launch("embed_rows");
}

void rmsnorm_to_bf16(const float* x, int rows, int dim, const float* w, float eps, uint16_t* y,
                     cudaStream_t stream) {
  rmsnorm_checks("rmsnorm_to_bf16", x, rows, dim, w, eps, y);
  if (rows == 0) return;
  check(detail::launch_rmsnorm(x, rows, dim, w, eps, nullptr, y, stream), "rmsnorm_to_bf16");
  check_launch("rmsnorm_to_bf16");
}

void rmsnorm_f32(const float* x, int rows, int dim, const float* w, float eps, float* y,
                 cudaStream_t stream) {
  rmsnorm_checks("rmsnorm_f32", x, rows, dim, w, eps, y);
  if (rows == 0) return;
  check(detail::launch_rmsnorm(x, rows, dim, w, eps, y, nullptr, stream), "rmsnorm_f32");
  check_launch("rmsnorm_f32");
}

void head_rmsnorm_inplace(float* x, int rows, int row_stride, int first_col, int n_heads,
                          int head_dim, const float* w, float eps, cudaStream_t stream) {
  const char* fn = "head_rmsnorm_inplace";
  need_shape(fn, rows, "rows", row_stride, "row_stride");
  need_heads(fn, row_stride, first_col, n_heads, head_dim);
  if (!std::isfinite(eps) || eps < 0.0f) fail("cuda {}: eps must be finite and >= 0, got {}", fn, eps);
  if (rows == 0) return;
  need_ptr(fn, x, "x");
  need_ptr(fn, w, "w");
  check(detail::launch_head_rmsnorm(x, rows, row_stride, first_col, n_heads, head_dim, w, eps,
                                    stream),
        fn);
  check_launch(fn);
}

void add_bias(float* y, int rows, int cols, const float* bias, cudaStream_t stream) {
  need_shape("add_bias", rows, "rows", cols, "cols");
  if (rows == 0) return;
  need_ptr("add_bias", y, "y");
  need_ptr("add_bias", bias, "bias");
  check(detail::launch_add_bias(y, rows, cols, bias, stream), "add_bias");
  check_launch("add_bias");
}

void rope_inplace(float* x, int rows, int row_stride, int first_col, int n_heads, int head_dim,
                  const int32_t* positions, const float* inv_freq, cudaStream_t stream) {
  const char* fn = "rope_inplace";
  need_shape(fn, rows, "rows", row_stride, "row_stride");
  need_heads(fn, row_stride, first_col, n_heads, head_dim);
  if (head_dim % 2 != 0) fail("cuda {}: head_dim must be even (rotate_half pairs), got {}", fn, head_dim);
  if (rows == 0) return;
  need_ptr(fn, x, "x");
  need_ptr(fn, positions, "positions");
  need_ptr(fn, inv_freq, "inv_freq");
  check(detail::launch_rope(x, rows, row_stride, first_col, n_heads, head_dim, positions, inv_freq,
                            stream),
        fn);
  check_launch(fn);
}

void silu_mul_to_bf16(const float* gate_up, int rows, int inter, uint16_t* y, cudaStream_t stream) {
  silu_mul("silu_mul_to_bf16", gate_up, rows, inter, y, stream);
}

void to_bf16(const float* x, size_t n, uint16_t* y, cudaStream_t stream) {
  if (n == 0) return;
  need_ptr("to_bf16", x, "x");
  need_ptr("to_bf16", y, "y");
  check(detail::launch_convert(x, n, false, y, stream), "to_bf16");
  check_launch("to_bf16");
}

void to_f16(const float* x, size_t n, uint16_t* y, cudaStream_t stream) {
  if (n == 0) return;
  need_ptr("to_f16", x, "x");
  need_ptr("to_f16", y, "y");
  check(detail::launch_convert(x, n, true, y, stream), "to_f16");
  check_launch("to_f16");
}

void silu_mul_bf16_to_bf16(const uint16_t* gate_up, int rows, int inter, uint16_t* y, cudaStream_t stream) {
  silu_mul("silu_mul_bf16_to_bf16", gate_up, rows, inter, y, stream);
}

void split_qkv_to_bf16(const float* qkv, int rows, int n_heads, int n_kv_heads, int head_dim,
                       uint16_t* q, uint16_t* k, uint16_t* v, cudaStream_t stream) {
  const char* fn = "split_qkv_to_bf16";
  need_qkv(fn, rows, n_heads, n_kv_heads, head_dim);
  if (rows == 0) return;
  need_ptr(fn, qkv, "qkv");
  need_ptr(fn, q, "q");
  need_ptr(fn, k, "k");
  need_ptr(fn, v, "v");
  check(detail::launch_split_qkv(qkv, rows, n_heads, n_kv_heads, head_dim, q, k, v, stream), fn);
  check_launch(fn);
}

void rope_split_qkv_to_bf16(float* qkv, int rows, int n_heads, int n_kv_heads, int head_dim,
                            const int32_t* positions, const float* inv_freq, uint16_t* q,
                            uint16_t* k, uint16_t* v, cudaStream_t stream) {
  const char* fn = "rope_split_qkv_to_bf16";
  need_qkv(fn, rows, n_heads, n_kv_heads, head_dim);
  if (head_dim % 2 != 0) fail("cuda {}: head_dim must be even (rotate_half pairs), got {}", fn, head_dim);
  if (rows == 0) return;
  need_ptr(fn, qkv, "qkv");
  need_ptr(fn, positions, "positions");
  need_ptr(fn, inv_freq, "inv_freq");
  need_ptr(fn, q, "q");
  need_ptr(fn, k, "k");
  need_ptr(fn, v, "v");
  check(detail::launch_rope_split(qkv, rows, n_heads, n_kv_heads, head_dim, positions, inv_freq, q, k, v,
                                  stream),
        fn);
  check_launch(fn);
}

void argmax_rows(const float* logits, int rows, int vocab, int32_t* out, cudaStream_t stream) {
  need_shape("argmax_rows", rows, "rows", vocab, "vocab");
  if (rows == 0) return;
  need_ptr("argmax_rows", logits, "logits");
  need_ptr("argmax_rows", out, "out");
  check(detail::launch_argmax_rows(logits, rows, vocab, out, stream), "argmax_rows");
  check_launch("argmax_rows");
}

}  // namespace zc::cuda
