// `--device cuda` of generate, perplexity and eval: engine::Decoder over the GPU runner
// (cuda/engine/gpu_runner.h), one sequence each. Only in builds with the CUDA backend.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "engine/batch_decoder.h"
#include "engine/generator.h"
#include "kv/method.h"
#include "model/forward.h"

namespace zc::app {

// The model's weights on the GPU and a KV block pool, shared by the decoders made
// from it (one per --kv method, or per eval item, one after the other). A decoder
// that ends gives its runner back with its sequence freed, and the next decoder of the
// same method takes it over (its buffers and CUDA graph), so the session outlives its
// decoders.
class GpuSession {
 public:
  // kv_mem_bytes 0: enough for fp16 caches of `sequences` sequences of `context` tokens
  // (at most 90% of the free memory). Throws zc::Error when there is no GPU or the build
  // has no CUDA.
  GpuSession(const model::Model& model, int context, size_t kv_mem_bytes, int sequences = 1);
  ~GpuSession();
  std::unique_ptr<engine::Decoder> decoder(const kv::MethodConfig& method);
  // A decoder of at most `context` tokens (at most the session's).
  std::unique_ptr<engine::Decoder> decoder(const kv::MethodConfig& method, int context);
  // A few tokens through `method` (a short prompt and two decode steps), so that the
  // first timed run does not carry the GPU's one-time costs (library handles, kernel
  // loading, the products' algorithm choice).
  void warm_up(const kv::MethodConfig& method);
  // The same with a prompt of the shape to come (its first context - 2 tokens at most).
  void warm_up(const kv::MethodConfig& method, std::span<const int32_t> prompt);
  // decoder(method, context) as an engine::DecoderFactory (the session must outlive it).
  engine::DecoderFactory factory();
  // Batches of slots stepped together on the GPU runner (continuous batching for
  // `serve --parallel`), as an engine::BatchDecoderFactory; the session must outlive it.
  // A free slot holds a one-token placeholder sequence (the runner steps every
  // sequence), so a batch costs a step of `slots` rows whatever is busy.
  engine::BatchDecoderFactory batch_factory();

  // Why the GPU cannot run `method` on this model ("" when it can), without a GPU:
  // the checks of the GPU cache (head_dim, query heads per KV head, the methods and
  // options it implements). In builds without CUDA, that.
  static std::string unsupported(const model::ModelConfig& config, const kv::MethodConfig& method);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zc::app
