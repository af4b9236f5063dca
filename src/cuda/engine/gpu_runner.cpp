// The GPU forward pass (gpu_runner.h), step by step as model/forward.cpp:
//   x = embed[ids]
//   per layer: h = rmsnorm(x) (bf16); qkv = h Wqkv^T (+ bias); Qwen3 q/k norms; RoPE;
//              attention (prefill: flash over bf16 q/k/v, the cache stores k/v;
//              decode: the cache appends and attends); x += attn Wo^T;
//              h = rmsnorm(x); x += (silu(h Wg^T) * (h Wu^T)) Wd^T
//   logits = rmsnorm(x_last) Wlm^T
// Every step goes through timed_op (op_timer.h) under its profile name: without a
// timer that is the bare call.
#include "cuda/engine/gpu_runner.h"

#include <algorithm>

#include "core/error.h"
#include "cuda/kv/prefill_attention.h"
#include "cuda/model/layer_kernels.h"

namespace zc::cuda {

GpuRunner::GpuRunner(const GpuModel& model, const kv::MethodConfig& method, KvPool& pool, int batch,
                     int max_context)
    : model_(model), batch_(batch) {
  const model::ModelConfig& c = model.config();
  max_context_ = max_context > 0 ? max_context : c.max_position_embeddings;
  if (max_context_ < 1) fail("gpu runner: no context limit (set max_context)");
  if (c.max_position_embeddings > 0 && max_context_ > c.max_position_embeddings) {
    fail("gpu runner: context {} exceeds the model's max_position_embeddings {}", max_context_,
         c.max_position_embeddings);
  }
  if (batch < 1) fail("gpu runner: batch {} must be positive", batch);
  if (c.sliding_window > 0 && c.sliding_window < max_context_) {
    fail("gpu runner: sliding-window attention ({} tokens) is not implemented on the GPU; use a context of at "
         "most {}",
         c.sliding_window, c.sliding_window);
  }
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
  GpuKvShape ks;
  ks.n_layers = c.n_layers, ks.batch = batch, ks.n_heads = c.n_heads, ks.n_kv_heads = c.n_kv_heads;
  ks.head_dim = c.head_dim, ks.max_context = max_context_;
  cache_ = std::make_unique<GpuKvCache>(method, ks, pool, stream_);
  logits_.resize(size_t(batch) * size_t(c.vocab_size));
  argmax_.resize(size_t(batch));
  ensure_rows(batch);
}

GpuRunner::~GpuRunner() {
  drop_graph();
  cache_.reset();
  if (stream_) cudaStreamDestroy(stream_);
}

void GpuRunner::ensure_rows(int rows) {
  if (rows <= rows_cap_) return;
  check(cudaStreamSynchronize(stream_), "runner");
  const model::ModelConfig& c = model_.config();
  const size_t R = size_t(rows), H = size_t(c.hidden_size), I = size_t(c.intermediate_size);
  const size_t q = size_t(c.n_heads) * c.head_dim, kv = size_t(c.n_kv_heads) * c.head_dim;
  x_.resize(R * H);
  hb_.resize(R * std::max(H, q));
  qkv_.resize(R * size_t(model_.qkv_width()));
  qb_.resize(R * q);
  kb_.resize(R * kv);
  vb_.resize(R * kv);
  attn_.resize(R * q);
  lse_.resize(R * size_t(c.n_heads));
  gu_.resize(R * 2 * I);
  act_.resize(R * I);
  ids_.resize(R);
  pos_.resize(R);
  last_.resize(H);
  rows_cap_ = rows;
  ++rows_generation_;
  drop_graph();
}

void GpuRunner::drop_graph() {
  if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
  graph_exec_ = nullptr;
  graph_key_ = eager_key_ = -1;
}

size_t GpuRunner::workspace_bytes() const {
  return x_.bytes() + hb_.bytes() + qkv_.bytes() + qb_.bytes() + kb_.bytes() + vb_.bytes() + attn_.bytes() +
         lse_.bytes() + gu_.bytes() + act_.bytes() + ids_.bytes() + pos_.bytes() + logits_.bytes() + last_.bytes();
}

void GpuRunner::check_tokens(std::span<const int32_t> tokens) const {
  const int vocab = model_.config().vocab_size;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab) fail("token {} at index {} is outside the vocabulary (0 .. {})", tokens[i], i, vocab - 1);
  }
}

void GpuRunner::layers(int rows, int seq) {
  const model::ModelConfig& c = model_.config();
  const int H = c.hidden_size, I = c.intermediate_size, d = c.head_dim, nh = c.n_heads, nkv = c.n_kv_heads;
  const int W = model_.qkv_width();
  const float eps = float(c.rms_norm_eps);
  cudaStream_t s = stream_;
  // Each operation under its profile name (set_op_timer; without a timer: just the call).
  const auto op = [this, s](const char* name, auto&& f) { timed_op(timer_, name, s, f); };
  for (int l = 0; l < c.n_layers; ++l) {
    const GpuLayerWeights& w = model_.layer(l);
    op("rmsnorm", [&] { rmsnorm_to_bf16(x_.get(), rows, H, w.input_norm.get(), eps, hb_.get(), s); });
    op("gemm qkv", [&] { gemm_.linear(hb_.get(), rows, H, w.wqkv.get(), W, qkv_.get(), 0.0f, s); });
    if (w.bqkv.size()) op("bias", [&] { add_bias(qkv_.get(), rows, W, w.bqkv.get(), s); });
    if (w.q_norm.size()) {
      op("qk norm", [&] {
        head_rmsnorm_inplace(qkv_.get(), rows, W, 0, nh, d, w.q_norm.get(), eps, s);
        head_rmsnorm_inplace(qkv_.get(), rows, W, nh * d, nkv, d, w.k_norm.get(), eps, s);
      });
    }
    const float* k = qkv_.get() + size_t(nh) * d;
    const float* v = qkv_.get() + size_t(nh + nkv) * d;
    if (seq >= 0) {
      // One pass: RoPE, bf16 q/k/v for the flash kernel, rotated fp32 k for the cache.
      op("rope + split qkv", [&] {
        rope_split_qkv_to_bf16(qkv_.get(), rows, nh, nkv, d, pos_.get(), model_.inv_freq(), qb_.get(), kb_.get(),
                               vb_.get(), s);
      });
      PrefillShape ps;
      ps.batch = 1, ps.tokens = rows, ps.n_heads = nh, ps.n_kv_heads = nkv, ps.head_dim = d;
      // ZipCache's probe pass takes its probe rows' softmax denominators from here.
      float* lse = cache_->method().method == kv::Method::ZipCache ? lse_.get() : nullptr;
      op("attention prefill",
         [&] { prefill_attention(ps, Dtype::BF16, qb_.get(), kb_.get(), vb_.get(), attn_.get(), s, lse); });
      op("cache prefill", [&] { cache_->prefill(l, seq, k, v, W, rows, qb_.get(), kb_.get(), lse); });
    } else {
      // RoPE of q and k fused into the append: one launch rotates the query heads in
      // place and stores the rotated key.
      op("cache append", [&] {
        cache_->append_rotated(l, qkv_.get(), W, k, v, W, pos_.get(), model_.inv_freq());
      });
      // The merge kernel writes the bf16 rows the output projection reads.
      op("attention decode", [&] { cache_->attend(l, qkv_.get(), nullptr, W, attn_.get()); });
    }
    op("gemm o", [&] { gemm_.linear(attn_.get(), rows, nh * d, w.wo.get(), H, x_.get(), 1.0f, s); });
    if (w.bo.size()) op("bias", [&] { add_bias(x_.get(), rows, H, w.bo.get(), s); });
    op("rmsnorm", [&] { rmsnorm_to_bf16(x_.get(), rows, H, w.post_norm.get(), eps, hb_.get(), s); });
    if (w.bgu.size()) {
      op("gemm gate/up", [&] { gemm_.linear(hb_.get(), rows, H, w.wgu.get(), 2 * I, gu_.get(), 0.0f, s); });
      op("bias", [&] { add_bias(gu_.get(), rows, 2 * I, w.bgu.get(), s); });
      op("silu*mul", [&] { silu_mul_to_bf16(gu_.get(), rows, I, act_.get(), s); });
    } else if (gemm_.takes_skinny(hb_.get(), rows, H, w.wgu.get())) {
      // Decode: the product and SwiGLU in one kernel (gemm.h), bit for bit as below.
      op("gemm gate/up+silu", [&] { gemm_.linear_swiglu(hb_.get(), rows, H, w.wgu.get(), I, act_.get(), s); });
    } else {
      // gate/up in bf16 (as a bf16 model computes them): the fp32 [rows][2I] product was
      // the largest write of a prefill layer (470 MB at 4096 rows) and SwiGLU's read.
      uint16_t* gu16 = reinterpret_cast<uint16_t*>(gu_.get());
      op("gemm gate/up", [&] { gemm_.linear_bf16(hb_.get(), rows, H, w.wgu.get(), 2 * I, gu16, s); });
      op("silu*mul", [&] { silu_mul_bf16_to_bf16(gu16, rows, I, act_.get(), s); });
    }
    op("gemm down", [&] { gemm_.linear(act_.get(), rows, I, w.wd.get(), H, x_.get(), 1.0f, s); });
    if (w.bd.size()) op("bias", [&] { add_bias(x_.get(), rows, H, w.bd.get(), s); });
  }
}

// The final norm and the logits of `rows` rows starting at x_row into logits_row.
void GpuRunner::head(const float* x_row, int rows, float* logits_row) {
  const model::ModelConfig& c = model_.config();
  timed_op(timer_, "rmsnorm", stream_, [&] {
    rmsnorm_to_bf16(x_row, rows, c.hidden_size, model_.norm(), float(c.rms_norm_eps), hb_.get(), stream_);
  });
  timed_op(timer_, "lm head", stream_, [&] {
    gemm_.linear(hb_.get(), rows, c.hidden_size, model_.lm_head(), c.vocab_size, logits_row, 0.0f, stream_);
  });
}

void GpuRunner::prefill(int seq, std::span<const int32_t> tokens) {
  if (seq < 0 || seq >= batch_) fail("gpu runner: sequence {} of a batch of {}", seq, batch_);
  const int T = int(tokens.size());
  if (T < 1) fail("gpu runner: empty prompt");
  if (T > max_context_) fail("prompt of {} tokens exceeds the context limit of {}", T, max_context_);
  check_tokens(tokens);
  ensure_rows(T);
  const model::ModelConfig& c = model_.config();
  positions_h_.resize(size_t(T));
  for (int i = 0; i < T; ++i) positions_h_[size_t(i)] = i;
  timed_op(timer_, "upload ids", stream_, [&] {
    check(cudaMemcpyAsync(ids_.get(), tokens.data(), size_t(T) * 4, cudaMemcpyHostToDevice, stream_), "ids");
    check(cudaMemcpyAsync(pos_.get(), positions_h_.data(), size_t(T) * 4, cudaMemcpyHostToDevice, stream_),
          "positions");
  });
  timed_op(timer_, "embed", stream_,
           [&] { embed_rows(model_.embed(), c.vocab_size, c.hidden_size, ids_.get(), T, x_.get(), stream_); });
  {
    // A prompt's products take cuBLASLt's first pick (Gemm::set_timed_choice): prompt
    // lengths are new shapes without end, unlike decode batches.
    struct Untimed {
      Gemm& g;
      explicit Untimed(Gemm& gemm) : g(gemm) { g.set_timed_choice(false); }
      ~Untimed() { g.set_timed_choice(true); }
    } untimed(gemm_);
    layers(T, seq);
  }
  // Logits of the last token only.
  head(x_.get() + size_t(T - 1) * c.hidden_size, 1, logits_.get() + size_t(seq) * c.vocab_size);
  cache_->check_errors();  // synchronizes: a NaN in the prompt's keys/values is an error now
}

void GpuRunner::decode(std::span<const int32_t> tokens) {
  if (int(tokens.size()) != batch_) fail("gpu runner: {} tokens for a batch of {}", tokens.size(), batch_);
  check_tokens(tokens);
  positions_h_.resize(size_t(batch_));
  for (int b = 0; b < batch_; ++b) positions_h_[size_t(b)] = cache_->length(b);
  // Host decisions and uploads (KIVI/ZipCache compress here): outside any graph.
  timed_op(timer_, "cache step", stream_, [&] { cache_->begin_step(); });
  timed_op(timer_, "upload ids", stream_, [&] {
    check(cudaMemcpyAsync(ids_.get(), tokens.data(), size_t(batch_) * 4, cudaMemcpyHostToDevice, stream_), "ids");
    check(cudaMemcpyAsync(pos_.get(), positions_h_.data(), size_t(batch_) * 4, cudaMemcpyHostToDevice, stream_),
          "positions");
  });
  // The launches depend on the cache's key (split sizes) and on where the activation
  // buffers live; the first step with a new key runs eagerly (growing any workspace),
  // the second captures, later ones replay.
  const long long key = cache_->launch_key() * 1000003LL + rows_generation_;
  // A timer's events cannot live in a graph (op_timer.h): profiling runs eagerly and
  // leaves the graph state as it was.
  if (!use_graphs_ || (timer_ != nullptr && timer_->enabled())) {
    decode_body();
  } else if (graph_exec_ != nullptr && key == graph_key_) {
    check(cudaGraphLaunch(graph_exec_, stream_), "cudaGraphLaunch");
  } else if (key == eager_key_) {
    cudaGraph_t graph = nullptr;
    check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    try {
      decode_body();
    } catch (...) {
      cudaStreamEndCapture(stream_, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    check(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
    if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
    graph_exec_ = nullptr;
    const cudaError_t e = cudaGraphInstantiate(&graph_exec_, graph, 0);
    cudaGraphDestroy(graph);
    check(e, "cudaGraphInstantiate");
    graph_key_ = key;
    ++captures_;
    check(cudaGraphLaunch(graph_exec_, stream_), "cudaGraphLaunch");
  } else {
    decode_body();
    eager_key_ = key;
  }
  cache_->end_step();
}

void GpuRunner::decode_body() {
  const model::ModelConfig& c = model_.config();
  timed_op(timer_, "embed", stream_,
           [&] { embed_rows(model_.embed(), c.vocab_size, c.hidden_size, ids_.get(), batch_, x_.get(), stream_); });
  layers(batch_, -1);
  head(x_.get(), batch_, logits_.get());
}

void GpuRunner::synchronize() { check(cudaStreamSynchronize(stream_), "runner"); }

std::vector<float> GpuRunner::logits_host(int seq) {
  const int V = model_.config().vocab_size;
  std::vector<float> out(static_cast<size_t>(V));
  check(cudaMemcpyAsync(out.data(), logits_.get() + size_t(seq) * V, size_t(V) * 4, cudaMemcpyDeviceToHost, stream_),
        "logits");
  synchronize();
  return out;
}

void GpuRunner::argmax_async(int32_t* out) { pick_async({}, out); }

void GpuRunner::pick_async(std::span<const GpuDraw> draws, int32_t* out) {
  const int vocab = model_.config().vocab_size;
  argmax_rows(logits_.get(), batch_, vocab, argmax_.get(), stream_);
  sampler_.draw(logits_.get(), batch_, vocab, draws, argmax_.get(), stream_);
  check(cudaMemcpyAsync(out, argmax_.get(), size_t(batch_) * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_),
        "argmax");
}

std::vector<int32_t> GpuRunner::greedy() {
  std::vector<int32_t> out(static_cast<size_t>(batch_));
  argmax_async(out.data());
  synchronize();
  for (size_t b = 0; b < out.size(); ++b) {
    if (out[b] < 0) fail("gpu runner: the logits of sequence {} hold NaN", b);
  }
  return out;
}

}  // namespace zc::cuda
