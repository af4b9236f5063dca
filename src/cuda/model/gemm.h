// Matrix products of the GPU forward pass through cuBLAS and, for decode's few rows,
// the skinny kernel of gemv.cu (issue 4): bf16 weights and activations, fp32
// accumulation and fp32 outputs, as nn.Linear computes y = x W^T with W stored [out, in]
// (the safetensors layout).
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

namespace zc::cuda {

class Gemm {
 public:
  // Creates the cuBLAS handle; throws zc::Error when cuBLAS cannot start. Products of
  // up to skinny_rows rows (0..8; -1: ZC_GEMV, default 8) go to the skinny kernel of
  // gemv.cu when `in` is a multiple of 8 and x, W are 16-byte aligned; the rest to cuBLAS.
  explicit Gemm(int skinny_rows = -1);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // y[n][out] = x[n][in] W^T + beta * y, x and W bf16 (uint16_t bits), y fp32; all
  // device pointers, rows contiguous. beta 1 adds into y (the residual connections).
  // Decode-sized products (see the constructor) through gemv.cu, the rest cuBLASLt with
  // the algorithm gemm_tuning.h chose for the shape.
  void linear(const uint16_t* x, int n, int in, const uint16_t* w, int out, float* y, float beta,
              cudaStream_t stream);

  // The same product written as bf16 (rounded once from the fp32 accumulator), beta 0:
  // for outputs that only feed a bf16 consumer (the MLP's gate/up before SwiGLU), half
  // the bytes an fp32 y would write and the next kernel read. Through cuBLASLt with
  // split-K partial sums kept in fp32: cublasGemmEx may add them up in the bf16 output
  // (measured on an H200: 3.5 bf16 steps off at 8 x 4096 -> 70).
  void linear_bf16(const uint16_t* x, int n, int in, const uint16_t* w, int out, uint16_t* y,
                   cudaStream_t stream);

  // Whether a product of n rows of x by W goes to the skinny kernel (see the constructor).
  bool takes_skinny(const uint16_t* x, int n, int in, const uint16_t* w) const;

  // The MLP's gate/up product and SwiGLU in one kernel, for products takes_skinny
  // accepts (decode's rows; throws zc::Error for others): act[n][inter] =
  // bf16(silu(g) * u), g and u the bf16 products of x with the gate rows [0, inter) and
  // the up rows [inter, 2 inter) of w_gate_up [2 inter][in], bit for bit as linear_bf16
  // then the SwiGLU kernel (layer_kernels.h) on the same rows.
  void linear_swiglu(const uint16_t* x, int n, int in, const uint16_t* w_gate_up, int inter, uint16_t* act,
                     cudaStream_t stream);

  // Batched over `batch` matrices with strides (elements) between them:
  // C_i [m][n] = A_i [m][k] B_i^T with B_i [n][k] (lda, ldb, ldc: row strides), bf16
  // inputs, fp32 output. (The probe pass: probe queries times keys.)
  void batched_abt(const uint16_t* a, int lda, long long stride_a, const uint16_t* b, int ldb,
                   long long stride_b, float* c, int ldc, long long stride_c, int m, int n, int k,
                   int batch, cudaStream_t stream);

  cublasHandle_t handle() const { return handle_; }

  // Whether cuBLASLt products of up to kTuneMaxRows rows take the algorithm timed once
  // per shape (gemm_tuning.h; on by default: decode batches) or the heuristic's first
  // pick (off: prompts, whose every length would be a new shape to time; a 400-token
  // prompt of a 19M model took seconds of timing instead of milliseconds of prefill).
  void set_timed_choice(bool on) { timed_choice_ = on; }

 private:
  // One cuBLASLt plan per (rows, in, out, pointer alignments, output type) of the
  // products cuBLAS takes: descriptors and the algorithm (gemm_tuning.h).
  struct LtPlan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t w = nullptr, x = nullptr, y = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  const LtPlan& lt_plan(int n, int in, int out, const void* x, const void* w, const void* y, bool fp32_out,
                        cudaStream_t stream);
  static void destroy(LtPlan& p);  // its descriptors (null ones skipped)
  void drop_lt_plans();
  static constexpr size_t kMaxLtPlans = 256;

  int skinny_rows_ = 0;
  bool timed_choice_ = true;
  cublasHandle_t handle_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;  // given to cuBLAS so that it never allocates (CUDA graph capture)
  std::map<std::tuple<int, int, int, uint32_t, bool, bool>, LtPlan> lt_plans_;  // + timed_choice_
};

// Throws zc::Error "cuda: <what>: cuBLAS status N" unless s is CUBLAS_STATUS_SUCCESS.
void check_cublas(cublasStatus_t s, const char* what);

}  // namespace zc::cuda
