// The forward pass on the GPU (issue 4) for a batch of sequences sharing a GpuKvCache:
// the same computation as model::Model::forward (model/forward.h), with bf16 weights
// and matrix inputs through cuBLAS, an fp32 residual stream, flash prefill attention
// over bf16 q/k/v, and decode attention over the paged (compressed) cache.
//   prefill(seq, tokens): one sequence's prompt; its last-token logits land in row seq.
//   decode(tokens): one token per sequence, every row of logits.
// One CUDA stream; results are read with logits_host() / greedy(), which synchronize.
// With an OpTimer set (set_op_timer) every operation of the pass is timed by name
// (op_timer.h) and decode runs its eager path (no CUDA graph capture or replay).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "cuda/core/device.h"
#include "cuda/engine/gpu_model.h"
#include "cuda/engine/op_timer.h"
#include "cuda/kv/gpu_cache.h"
#include "cuda/model/gemm.h"
#include "cuda/model/sampling.h"
#include "kv/method.h"

namespace zc::cuda {

class GpuRunner {
 public:
  // A batch of `batch` sequences of at most max_context tokens (0: the model's
  // max_position_embeddings) whose caches follow `method`, carved from `pool`.
  GpuRunner(const GpuModel& model, const kv::MethodConfig& method, KvPool& pool, int batch,
            int max_context = 0);
  ~GpuRunner();

  // Checks the ids (zc::Error naming the bad one) and the context limit first.
  void prefill(int seq, std::span<const int32_t> tokens);
  void decode(std::span<const int32_t> tokens);  // exactly `batch` tokens

  const float* logits() const { return logits_.get(); }  // device [batch][vocab]
  std::vector<float> logits_host(int seq);               // synchronizes
  std::vector<int32_t> greedy();                         // argmax per row; synchronizes
  // Queues the argmax of every row (-1 for a row holding NaN) and its copy into
  // out[0 .. batch) (host memory, pinned for the copy to be asynchronous); read it after
  // synchronize().
  void argmax_async(int32_t* out);
  // The same with the rows of `draws` drawn by the GPU sampler (model/sampling.h: -1 for
  // a NaN row, -2 for one without a finite largest logit) instead of their argmax. The
  // draws are staged in pinned memory: synchronize() before the next call.
  void pick_async(std::span<const GpuDraw> draws, int32_t* out);
  void synchronize();

  GpuKvCache& cache() { return *cache_; }
  const GpuKvCache& cache() const { return *cache_; }
  int batch() const { return batch_; }
  cudaStream_t stream() const { return stream_; }
  size_t workspace_bytes() const;  // activations and scratch outside the pool

  // Decode steps replay a CUDA graph of the whole forward pass (captured after one
  // eager step with the same launch shapes); off: every kernel launched from the host.
  void set_cuda_graphs(bool on) { use_graphs_ = on; }
  int graph_captures() const { return captures_; }

  // Times every operation of prefill() and decode() on `timer` (null: off, the
  // default; nothing is recorded and the graphs are used as set above). Names:
  // "embed", "upload ids", "rmsnorm" (also the final norm), "gemm qkv", "bias" (every
  // projection's), "qk norm", "rope + split qkv" (prefill), "attention prefill",
  // "cache prefill" (the cache's own work: probe pass, split, quantization, pages),
  // "cache step" (begin_step: KIVI/ZipCache compression, page-table uploads), "cache
  // append" (decode, with RoPE of q and k), "attention decode" (ZipCache: with the
  // window's saliency sums; its merge writes the bf16 rows of the output projection),
  // "gemm o", "gemm gate/up", "silu*mul", "gemm down", "lm head". The timer is not
  // owned and must outlive its use; the caller collects it (OpTimer::collect/report).
  void set_op_timer(OpTimer* timer) { timer_ = timer; }
  OpTimer* op_timer() const { return timer_; }

 private:
  void ensure_rows(int rows);
  void check_tokens(std::span<const int32_t> tokens) const;
  // The transformer layers for `rows` rows already embedded in x_; prefill of
  // sequence seq (rows = T) or decode (seq = -1, rows = batch).
  void layers(int rows, int seq);
  void decode_body();  // embed -> layers -> logits for one decode step
  void head(const float* x_row, int rows, float* logits_row);  // final norm -> lm_head
  void drop_graph();

  const GpuModel& model_;
  int batch_, max_context_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<GpuKvCache> cache_;
  Gemm gemm_;
  int rows_cap_ = 0;
  DeviceBuffer<float> x_, qkv_, gu_, logits_, last_;
  DeviceBuffer<float> lse_;  // prefill rows' log-sum-exp [rows][n_heads] (ZipCache's probe rows)
  DeviceBuffer<uint16_t> hb_, qb_, kb_, vb_, attn_, act_;
  DeviceBuffer<int32_t> ids_, pos_, argmax_;
  GpuSampler sampler_;  // pick_async's draws
  std::vector<int32_t> positions_h_;
  bool use_graphs_ = true;
  int rows_generation_ = 0;  // bumps when activation buffers move (graphs hold their pointers)
  long long graph_key_ = -1, eager_key_ = -1;
  cudaGraphExec_t graph_exec_ = nullptr;
  int captures_ = 0;
  OpTimer* timer_ = nullptr;
};

}  // namespace zc::cuda
