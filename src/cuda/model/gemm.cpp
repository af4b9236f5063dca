// cuBLAS calls of the GPU forward pass (gemm.h). Row-major y[n][out] = x W^T is the
// column-major product C(out x n) = op_T(W: in x out) * x(in x n).
#include "cuda/model/gemm.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "cuda/core/device.h"
#include "cuda/model/gemv_launch.h"

namespace zc::cuda {

namespace {

// Single-row products (decode at batch 1, prefill's last-token logits) go to the
// streaming kernel of gemv.cu; more rows stay on cuBLAS. Measured on an H100
// (docs/benchmarks.md): batch-1 decode steps 7.07-7.20 ms instead of 7.09-7.50, but
// batch 8 through the kernel 10.78 ms instead of cuBLAS's 8.72 (rereading 8 rows of x
// per weight vector). ZC_GEMV=N (0..8) sets the most rows it takes (0: never).
int gemv_rows() {
  static const int rows = [] {
    const char* v = std::getenv("ZC_GEMV");
    if (v == nullptr || *v == '\0') return 1;
    char* end = nullptr;
    const long x = std::strtol(v, &end, 10);
    if (*end != '\0' || x < 0 || x > detail::kGemvMaxRows) {
      fail("ZC_GEMV={} is not an integer in [0, {}]", v, detail::kGemvMaxRows);
    }
    return static_cast<int>(x);
  }();
  return rows;
}

bool gemv_fits(const uint16_t* x, int n, int in, const uint16_t* w) {
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return n <= gemv_rows() && in % 8 == 0 && aligned(x) && aligned(w);
}

}  // namespace

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("cuda: {}: cuBLAS status {} ({})", what, int(s), cublasGetStatusString(s));
}

Gemm::Gemm() {
  check_cublas(cublasCreate(&handle_), "cublasCreate");
  // A fixed workspace: cuBLAS must not allocate while a decode step is being captured
  // into a CUDA graph (32 MiB is what cuBLAS recommends for Hopper).
  const size_t bytes = size_t(32) << 20;
  check(cudaMalloc(&workspace_, bytes), "cuBLAS workspace");
  check_cublas(cublasSetWorkspace(handle_, workspace_, bytes), "cublasSetWorkspace");
}

Gemm::~Gemm() {
  if (handle_) cublasDestroy(handle_);
  if (workspace_) cudaFree(workspace_);
}

void Gemm::linear(const uint16_t* x, int n, int in, const uint16_t* w, int out, float* y, float beta,
                  cudaStream_t stream) {
  if (n < 1 || in < 1 || out < 1) fail("cuda linear: bad shape [{} x {}] x [{} x {}]^T", n, in, out, in);
  if (gemv_fits(x, n, in, w)) {
    check(detail::launch_gemv(x, n, in, w, out, y, beta, nullptr, stream), "linear (gemv)");
    return;
  }
  check_cublas(cublasSetStream(handle_, stream), "cublasSetStream");
  const float alpha = 1.0f;
  check_cublas(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &alpha, w, CUDA_R_16BF, in, x,
                            CUDA_R_16BF, in, &beta, y, CUDA_R_32F, out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "linear (cublasGemmEx)");
}

void Gemm::linear_bf16(const uint16_t* x, int n, int in, const uint16_t* w, int out, uint16_t* y,
                       cudaStream_t stream) {
  if (n < 1 || in < 1 || out < 1) fail("cuda linear: bad shape [{} x {}] x [{} x {}]^T", n, in, out, in);
  if (gemv_fits(x, n, in, w)) {
    check(detail::launch_gemv(x, n, in, w, out, nullptr, 0.0f, y, stream), "linear to bf16 (gemv)");
    return;
  }
  check_cublas(cublasSetStream(handle_, stream), "cublasSetStream");
  const float alpha = 1.0f, beta = 0.0f;
  check_cublas(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &alpha, w, CUDA_R_16BF, in, x,
                            CUDA_R_16BF, in, &beta, y, CUDA_R_16BF, out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "linear to bf16 (cublasGemmEx)");
}

void Gemm::batched_abt(const uint16_t* a, int lda, long long stride_a, const uint16_t* b, int ldb,
                       long long stride_b, float* c, int ldc, long long stride_c, int m, int n, int k,
                       int batch, cudaStream_t stream) {
  if (m < 1 || n < 1 || k < 1 || batch < 1) fail("cuda batched gemm: bad shape {} x {} x {} (batch {})", m, n, k, batch);
  check_cublas(cublasSetStream(handle_, stream), "cublasSetStream");
  const float alpha = 1.0f, beta = 0.0f;
  // Column-major: C^T (n x m) = B (n x k, i.e. op_T of k x n) * A^T (k x m).
  check_cublas(cublasGemmStridedBatchedEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, b, CUDA_R_16BF, ldb,
                                          stride_b, a, CUDA_R_16BF, lda, stride_a, &beta, c, CUDA_R_32F, ldc, stride_c,
                                          batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "batched gemm (cublasGemmStridedBatchedEx)");
}

}  // namespace zc::cuda
