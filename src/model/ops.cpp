#include "model/ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"

namespace zc::model {

void linear(const float* x, int n, int in, const float* w, int out, const float* bias, float* y) {
  if (n <= 0 || out <= 0) return;
  if (bias) {
    for (int r = 0; r < n; ++r) {
      float* row = y + static_cast<size_t>(r) * out;
      for (int o = 0; o < out; ++o) row[o] = bias[o];
    }
  }
  // Row-major: y = 1 * x W^T + beta * y, beta = 1 to add the bias rows set above.
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in,
              bias ? 1.0f : 0.0f, y, out);
}

void rmsnorm(const float* x, size_t rows, int dim, const float* w, float eps, float* y) {
  constexpr size_t kBlock = 16;  // rows per task: amortizes the pool's per-task cost
  const size_t blocks = (rows + kBlock - 1) / kBlock;
  auto run = [&](size_t b) {
    const size_t end = std::min(rows, (b + 1) * kBlock);
    for (size_t r = b * kBlock; r < end; ++r) {
      const float* in = x + r * dim;
      float* o = y + r * dim;
      // The mean of squares in double (HF sums in fp32; double is at least as exact),
      // then variance + eps and rsqrt in fp32 as torch.rsqrt does.
      double sum = 0.0;
      for (int i = 0; i < dim; ++i) sum += static_cast<double>(in[i]) * in[i];
      const float variance = static_cast<float>(sum / dim);
      const float inv = static_cast<float>(1.0 / std::sqrt(static_cast<double>(variance + eps)));
      for (int i = 0; i < dim; ++i) o[i] = w[i] * (in[i] * inv);
    }
  };
  if (blocks == 1) {
    run(0);
  } else {
    parallel_for(blocks, run);
  }
}

void silu_mul(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add_inplace(float* x, const float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace zc::model
