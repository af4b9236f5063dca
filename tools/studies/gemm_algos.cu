// Study (issue 4, the largest-batch step): how far cuBLAS's default choice for the
// decode step's products (src/cuda/model/gemm.cpp: cublasGemmEx, bf16 x bf16 -> fp32,
// CUBLAS_GEMM_DEFAULT) is from the fastest of cuBLASLt's heuristic candidates, at the
// row counts of the 60 GiB largest batches (574: ZipCache, 117: fp16) and Llama-3-8B's
// shapes. Prints, per product, the default's median time and each candidate's.
// Outcome (H100, 2026-11-26, docs/benchmarks.md session 11): cuBLASLt's first candidate
// ran the products 1-3% (574 rows) and 2-8% (117 rows) faster here, but the whole
// model with every fp32 product moved to it measured the same, so gemm.cpp keeps
// cublasGemmEx.
//   nvcc -O2 -std=c++17 -arch=sm_90 tools/studies/gemm_algos.cu -lcublasLt -lcublas -o /tmp/ga && /tmp/ga
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CK(x)                                                                   \
  do {                                                                          \
    auto e_ = (x);                                                              \
    if (int(e_) != 0) {                                                         \
      std::fprintf(stderr, "%s:%d: %s -> %d\n", __FILE__, __LINE__, #x, int(e_)); \
      std::exit(1);                                                             \
    }                                                                           \
  } while (0)

template <typename F>
float median_ms(F&& f, cudaStream_t s, int reps = 15) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  f();  // warm-up
  std::vector<float> t;
  for (int r = 0; r < reps; ++r) {
    CK(cudaEventRecord(a, s));
    f();
    CK(cudaEventRecord(b, s));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int main() {
  const size_t ws_bytes = size_t(32) << 20;
  void* ws = nullptr;
  CK(cudaMalloc(&ws, ws_bytes));
  cublasHandle_t h;
  CK(cublasCreate(&h));
  CK(cublasSetWorkspace(h, ws, ws_bytes));
  cublasLtHandle_t lt;
  CK(cublasLtCreate(&lt));
  cudaStream_t s;
  CK(cudaStreamCreate(&s));
  CK(cublasSetStream(h, s));
  struct Shape { const char* name; int out, in; float beta; };
  const Shape shapes[] = {{"qkv", 6144, 4096, 0}, {"o", 4096, 4096, 1}, {"gate/up", 28672, 4096, 0},
                          {"down", 4096, 14336, 1}, {"lm head", 128256, 4096, 0}};
  for (int n : {574, 117}) {
    for (const Shape& sh : shapes) {
      const int out = sh.out, in = sh.in;
      void *w, *x, *y;
      CK(cudaMalloc(&w, size_t(out) * in * 2));
      CK(cudaMalloc(&x, size_t(in) * n * 2));
      CK(cudaMalloc(&y, size_t(out) * n * 4));
      CK(cudaMemset(w, 0x3c, size_t(out) * in * 2));  // bf16 ~ 0.0115
      CK(cudaMemset(x, 0x3c, size_t(in) * n * 2));
      CK(cudaMemset(y, 0, size_t(out) * n * 4));
      const float alpha = 1.0f, beta = sh.beta;
      const float def = median_ms([&] {
        CK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &alpha, w, CUDA_R_16BF, in, x, CUDA_R_16BF, in, &beta,
                        y, CUDA_R_32F, out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      }, s);
      const double tflop = 2.0 * n * double(out) * in / 1e12;
      std::printf("n=%d %-8s default %.4f ms (%.0f TFLOPS)\n", n, sh.name, def, tflop / (def * 1e-3));
      cublasLtMatmulDesc_t desc;
      CK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
      const cublasOperation_t t = CUBLAS_OP_T, nt = CUBLAS_OP_N;
      CK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)));
      CK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof(nt)));
      cublasLtMatrixLayout_t lw, lx, ly;
      CK(cublasLtMatrixLayoutCreate(&lw, CUDA_R_16BF, in, out, in));
      CK(cublasLtMatrixLayoutCreate(&lx, CUDA_R_16BF, in, n, in));
      CK(cublasLtMatrixLayoutCreate(&ly, CUDA_R_32F, out, n, out));
      cublasLtMatmulPreference_t pref;
      CK(cublasLtMatmulPreferenceCreate(&pref));
      CK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                              sizeof(ws_bytes)));
      cublasLtMatmulHeuristicResult_t res[16];
      int found = 0;
      CK(cublasLtMatmulAlgoGetHeuristic(lt, desc, lw, lx, ly, ly, pref, 16, res, &found));
      float best = 1e9;
      int best_i = -1;
      for (int i = 0; i < found; ++i) {
        const float ms = median_ms([&] {
          CK(cublasLtMatmul(lt, desc, &alpha, w, lw, x, lx, &beta, y, ly, y, ly, &res[i].algo, ws, ws_bytes, s));
        }, s);
        if (ms < best) best = ms, best_i = i;
        std::printf("    lt #%d %.4f ms\n", i, ms);
      }
      std::printf("n=%d %-8s best lt #%d %.4f ms = %.3fx the default\n", n, sh.name, best_i, best, best / def);
      cublasLtMatmulPreferenceDestroy(pref);
      cublasLtMatrixLayoutDestroy(lw);
      cublasLtMatrixLayoutDestroy(lx);
      cublasLtMatrixLayoutDestroy(ly);
      cublasLtMatmulDescDestroy(desc);
      CK(cudaFree(w));
      CK(cudaFree(x));
      CK(cudaFree(y));
    }
  }
  return 0;
}
