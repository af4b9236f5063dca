// Timing cuBLASLt's candidate algorithms once per product shape (gemm_tuning.h).
#include "cuda/model/gemm_tuning.h"

#include <map>
#include <mutex>

#include "cuda/core/device.h"

namespace zc::cuda::detail {

namespace {

std::mutex& choices_mutex() {
  static std::mutex m;
  return m;
}
std::map<TuneKey, cublasLtMatmulAlgo_t>& choices() {
  static std::map<TuneKey, cublasLtMatmulAlgo_t> c;
  return c;
}

// Milliseconds of three runs of one candidate (after one untimed run), or a negative
// number when cuBLASLt refuses it.
float time_candidate(const LtProblem& p, const cublasLtMatmulAlgo_t& algo, void* out, cudaEvent_t start,
                     cudaEvent_t stop, cudaStream_t stream) {
  const float alpha = 1.0f, beta = 0.0f;
  const auto run = [&] {
    return cublasLtMatmul(p.lt, p.desc, &alpha, p.w_data, p.w, p.x_data, p.x, &beta, out, p.y, out, p.y, &algo,
                          p.workspace, p.workspace_bytes, stream);
  };
  if (run() != CUBLAS_STATUS_SUCCESS) return -1.0f;
  float best = -1.0f;
  for (int i = 0; i < 3; ++i) {
    if (cudaEventRecord(start, stream) != cudaSuccess || run() != CUBLAS_STATUS_SUCCESS ||
        cudaEventRecord(stop, stream) != cudaSuccess || cudaEventSynchronize(stop) != cudaSuccess) {
      return -1.0f;
    }
    float ms = 0.0f;
    if (cudaEventElapsedTime(&ms, start, stop) != cudaSuccess) return -1.0f;
    if (best < 0.0f || ms < best) best = ms;
  }
  return best;
}

}  // namespace

bool gemm_tuning_on() {
  static const bool on = env_int("ZC_GEMM_TUNE", 0, 1, 1) == 1;
  return on;
}

cublasLtMatmulAlgo_t choose_algo(const TuneKey& key, int n, const LtProblem& p,
                                 const cublasLtMatmulHeuristicResult_t* candidates, int count, cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(choices_mutex());
  if (auto it = choices().find(key); it != choices().end()) return it->second;
  cublasLtMatmulAlgo_t chosen = candidates[0].algo;
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  const bool tune = gemm_tuning_on() && count > 1 && n <= kTuneMaxRows &&
                    cudaStreamIsCapturing(stream, &capturing) == cudaSuccess && capturing == cudaStreamCaptureStatusNone;
  if (!tune) {
    // A capture cannot time; the heuristic's pick is kept so that later eager steps
    // run what the graph runs.
    choices().emplace(key, chosen);
    return chosen;
  }
  void* out = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  if (cudaMalloc(&out, p.y_bytes) == cudaSuccess && cudaEventCreate(&start) == cudaSuccess &&
      cudaEventCreate(&stop) == cudaSuccess) {
    float best = -1.0f;
    for (int i = 0; i < count; ++i) {
      const float ms = time_candidate(p, candidates[i].algo, out, start, stop, stream);
      if (ms >= 0.0f && (best < 0.0f || ms < best)) best = ms, chosen = candidates[i].algo;
    }
  }
  (void)cudaGetLastError();  // a failed scratch allocation leaves the heuristic's pick
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  if (out) cudaFree(out);
  choices().emplace(key, chosen);
  return chosen;
}

}  // namespace zc::cuda::detail
