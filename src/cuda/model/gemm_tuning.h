// Which cuBLASLt algorithm a product shape runs (gemm.cpp). cuBLASLt's heuristic ranks
// its algorithms from the shape alone, and its first pick is not always the fastest:
// for the Llama-3-8B decode products at 117 rows on an H100 the fastest candidate beat
// it by up to 12% (o 4096 -> 4096), and the whole decode step at 597 sequences took
// 44.19 ms with the first picks against 42.05 ms with timed ones (fp16 at 118: 28.34
// against 28.02; docs/benchmarks.md, session 17). So for products of up to kTuneMaxRows
// rows (decode batches; prompts' row counts vary without end) the candidates are timed
// once on the GPU and the fastest is kept, as TensorRT's tactic choice or PyTorch's
// TunableOp do. ZC_GEMM_TUNE=0 keeps the heuristic's first pick (an A/B knob, read once).
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <tuple>

namespace zc::cuda::detail {

constexpr int kTuneMaxRows = 1024;
constexpr int kTuneCandidates = 8;

// One product as cublasLtMatmul takes it: D = alpha * op(W) x + beta * C, here run with
// beta 0 into a scratch output of y_bytes (the real output may hold a residual).
struct LtProblem {
  cublasLtHandle_t lt = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t w = nullptr, x = nullptr, y = nullptr;
  const void* w_data = nullptr;
  const void* x_data = nullptr;
  size_t y_bytes = 0;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

// The shape a choice is kept for, process-wide: every Gemm (one per runner) of the same
// device runs the same algorithm for it, so two runners compute the same bits.
using TuneKey = std::tuple<int, int, int, int, uint32_t, bool>;  // device, n, in, out, alignments, fp32 out

bool gemm_tuning_on();

// The algorithm for `key`: a choice made earlier in this process, else candidates[0]
// when tuning is off, n > kTuneMaxRows, the stream is being captured into a CUDA graph
// or no scratch output can be had, else the fastest of the candidates timed on
// `stream` (each run once to warm up, then the best of three). The choice is kept.
cublasLtMatmulAlgo_t choose_algo(const TuneKey& key, int n, const LtProblem& p,
                                 const cublasLtMatmulHeuristicResult_t* candidates, int count, cudaStream_t stream);

}  // namespace zc::cuda::detail
