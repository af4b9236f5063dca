// The GPU forward pass's products (gemm.h): decode's few rows to the skinny kernel of
// gemv.cu, the rest to cuBLAS. Row-major y[n][out] = x W^T is the column-major product
// C(out x n) = op_T(W: in x out) * x(in x n).
#include "cuda/model/gemm.h"

#include <cstdint>
#include <utility>

#include "core/error.h"
#include "cuda/core/device.h"
#include "cuda/model/gemm_tuning.h"
#include "cuda/model/gemv_launch.h"

namespace zc::cuda {

namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

// The skinny-product kernel of gemv.cu takes products of up to ZC_GEMV=N rows (0..8,
// default 8; 0: all on cuBLAS). At batch 8 on an H100 it made the decode step 0.3 ms
// faster (fp16 7.99 -> 7.67 ms, ZipCache 7.20 -> 6.85 ms; docs/benchmarks.md, session 9):
// cuBLAS ran the qkv and o products at 1.2-1.5 TB/s, the skinny kernel at 1.7-2.0.
int env_skinny_rows() {
  static const int rows = env_int("ZC_GEMV", 0, detail::kGemvMaxRows, detail::kGemvMaxRows);
  return rows;
}

}  // namespace

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("cuda: {}: cuBLAS status {} ({})", what, int(s), cublasGetStatusString(s));
}

bool Gemm::takes_skinny(const uint16_t* x, int n, int in, const uint16_t* w) const {
  return n <= skinny_rows_ && in % 8 == 0 && alignment(x) >= 16 && alignment(w) >= 16;
}

Gemm::Gemm(int skinny_rows) : skinny_rows_(skinny_rows < 0 ? env_skinny_rows() : skinny_rows) {
  if (skinny_rows_ > detail::kGemvMaxRows) fail("cuda gemm: skinny products of up to {} rows, not {}", detail::kGemvMaxRows, skinny_rows_);
  check_cublas(cublasCreate(&handle_), "cublasCreate");
  // A fixed workspace: cuBLAS must not allocate while a decode step is being captured
  // into a CUDA graph (32 MiB is what cuBLAS recommends for Hopper).
  check(cudaMalloc(&workspace_, kWorkspaceBytes), "cuBLAS workspace");
  check_cublas(cublasSetWorkspace(handle_, workspace_, kWorkspaceBytes), "cublasSetWorkspace");
  check_cublas(cublasLtCreate(&lt_), "cublasLtCreate");
}

void Gemm::destroy(LtPlan& p) {
  if (p.w) cublasLtMatrixLayoutDestroy(p.w);
  if (p.x) cublasLtMatrixLayoutDestroy(p.x);
  if (p.y) cublasLtMatrixLayoutDestroy(p.y);
  if (p.desc) cublasLtMatmulDescDestroy(p.desc);
  p = LtPlan{};
}

void Gemm::drop_lt_plans() {
  for (auto& [shape, p] : lt_plans_) destroy(p);
  lt_plans_.clear();
}

Gemm::~Gemm() {
  drop_lt_plans();
  if (lt_) cublasLtDestroy(lt_);
  if (handle_) cublasDestroy(handle_);
  if (workspace_) cudaFree(workspace_);
}

const Gemm::LtPlan& Gemm::lt_plan(int n, int in, int out, const void* x, const void* w, const void* y, bool fp32_out,
                                  cudaStream_t stream) {
  // cuBLASLt assumes 256-byte aligned operands unless told otherwise; an algorithm chosen
  // under that assumption may read a less aligned x with wide loads.
  const uint32_t ax = alignment(x), aw = alignment(w), ay = alignment(y);
  const auto key = std::make_tuple(n, in, out, ax | (aw << 9) | (ay << 18), fp32_out, timed_choice_);
  if (auto it = lt_plans_.find(key); it != lt_plans_.end()) return it->second;
  // Prompt lengths make new row counts without end in a long-running process: past
  // kMaxLtPlans shapes, start over (a plan costs one heuristic query to remake).
  if (lt_plans_.size() >= kMaxLtPlans) drop_lt_plans();
  LtPlan p;
  const auto made = [&](cublasStatus_t st, const char* what) {
    if (st == CUBLAS_STATUS_SUCCESS) return;
    destroy(p);
    check_cublas(st, what);
  };
  // Column-major, as in linear(): y (out x n) = op_T(W: in x out) * x (in x n).
  made(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  const cublasOperation_t t = CUBLAS_OP_T, nt = CUBLAS_OP_N;
  made(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)), "transa");
  made(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof(nt)), "transb");
  made(cublasLtMatrixLayoutCreate(&p.w, CUDA_R_16BF, uint64_t(in), uint64_t(out), int64_t(in)), "layout W");
  made(cublasLtMatrixLayoutCreate(&p.x, CUDA_R_16BF, uint64_t(in), uint64_t(n), int64_t(in)), "layout x");
  made(cublasLtMatrixLayoutCreate(&p.y, fp32_out ? CUDA_R_32F : CUDA_R_16BF, uint64_t(out), uint64_t(n), int64_t(out)),
       "layout y");
  cublasLtMatmulPreference_t pref = nullptr;
  made(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  const uint64_t ws = kWorkspaceBytes;
  // Split-K partial sums only in the compute type (fp32), never in the bf16 output.
  const uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes,
                                              sizeof(schemes));
  }
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, aw}, {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, ax},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, ay}, {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, ay}};
  for (const auto& [attr, bytes] : aligns) {
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulPreferenceSetAttribute(pref, attr, &bytes, sizeof(bytes));
  }
  cublasLtMatmulHeuristicResult_t results[detail::kTuneCandidates] = {};
  int found = 0;
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatmulAlgoGetHeuristic(lt_, p.desc, p.w, p.x, p.y, p.y, pref, detail::kTuneCandidates, results, &found);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  made(st, "cublasLtMatmulAlgoGetHeuristic");
  if (found < 1) {
    made(CUBLAS_STATUS_NOT_SUPPORTED, "cuBLASLt has no algorithm for this bf16 product");
  }
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  detail::LtProblem problem;
  problem.lt = lt_, problem.desc = p.desc, problem.w = p.w, problem.x = p.x, problem.y = p.y;
  problem.w_data = w, problem.x_data = x, problem.y_bytes = size_t(n) * size_t(out) * (fp32_out ? 4 : 2);
  problem.workspace = workspace_, problem.workspace_bytes = kWorkspaceBytes;
  // Untimed (prompts): the heuristic's pick, the same for every runner, and nothing
  // recorded, so that a decode batch of the same row count is still timed.
  p.algo = timed_choice_ ? detail::choose_algo(detail::TuneKey{device, n, in, out, std::get<3>(key), fp32_out}, n,
                                               problem, results, found, stream)
                         : results[0].algo;
  return lt_plans_.emplace(key, p).first->second;
}

void Gemm::linear(const uint16_t* x, int n, int in, const uint16_t* w, int out, float* y, float beta,
                  cudaStream_t stream) {
  if (n < 1 || in < 1 || out < 1) fail("cuda linear: bad shape [{} x {}] x [{} x {}]^T", n, in, out, in);
  if (takes_skinny(x, n, in, w)) {
    check(detail::launch_gemv(x, n, in, w, out, y, beta, nullptr, stream), "linear (gemv)");
    return;
  }
  // cuBLASLt, as linear_bf16: its plans carry the tuned algorithm (gemm_tuning.h);
  // cublasGemmEx took a fixed one (at 117 rows 4-14% slower than the fastest candidate
  // of the Llama-3-8B decode products on an H100, docs/benchmarks.md, session 17).
  const LtPlan& p = lt_plan(n, in, out, x, w, y, /*fp32_out=*/true, stream);
  const float alpha = 1.0f;
  check_cublas(cublasLtMatmul(lt_, p.desc, &alpha, w, p.w, x, p.x, &beta, y, p.y, y, p.y, &p.algo, workspace_,
                              kWorkspaceBytes, stream),
               "linear (cublasLtMatmul)");
}

void Gemm::linear_bf16(const uint16_t* x, int n, int in, const uint16_t* w, int out, uint16_t* y,
                       cudaStream_t stream) {
  if (n < 1 || in < 1 || out < 1) fail("cuda linear: bad shape [{} x {}] x [{} x {}]^T", n, in, out, in);
  if (takes_skinny(x, n, in, w)) {
    check(detail::launch_gemv(x, n, in, w, out, nullptr, 0.0f, y, stream), "linear to bf16 (gemv)");
    return;
  }
  const LtPlan& p = lt_plan(n, in, out, x, w, y, /*fp32_out=*/false, stream);
  const float alpha = 1.0f, beta = 0.0f;
  check_cublas(cublasLtMatmul(lt_, p.desc, &alpha, w, p.w, x, p.x, &beta, y, p.y, y, p.y, &p.algo, workspace_,
                              kWorkspaceBytes, stream),
               "linear to bf16 (cublasLtMatmul)");
}

void Gemm::linear_swiglu(const uint16_t* x, int n, int in, const uint16_t* w_gate_up, int inter, uint16_t* act,
                         cudaStream_t stream) {
  if (n < 1 || in < 1 || inter < 1) fail("cuda gate/up + SwiGLU: bad shape [{} x {}] x [{} x {}]^T", n, in, 2 * inter, in);
  if (!takes_skinny(x, n, in, w_gate_up)) {
    fail("cuda gate/up + SwiGLU: {} rows of {} inputs are not a skinny product (at most {} rows, inputs a multiple "
         "of 8, 16-byte aligned operands)", n, in, skinny_rows_);
  }
  check(detail::launch_gemv_swiglu(x, n, in, w_gate_up, inter, act, stream), "gate/up + SwiGLU (gemv)");
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
