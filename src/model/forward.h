// The CPU forward pass of a decoder-only transformer (Llama 2/3, Mistral, Qwen2,
// Qwen3), in fp32 throughout, matching HF transformers' fp32 logits:
//   x = embed[ids]
//   per layer: h = rmsnorm(x); q, k, v = h Wq^T, h Wk^T, h Wv^T (+ biases);
//              (Qwen3) q, k = rmsnorm per head; RoPE on q and k at their positions;
//              attention through the layer's kv::Cache (prefill T tokens / append 1);
//              x += attn Wo^T; h = rmsnorm(x); x += (silu(h Wg^T) * (h Wu^T)) Wd^T
//   logits = rmsnorm(x) Wlm^T at the requested positions.
// A batch holds several sequences of different lengths: their rows are stacked for
// the matrix products, and each sequence attends only over its own caches.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kv/cache.h"
#include "kv/method.h"
#include "model/config.h"
#include "model/weights.h"

namespace zc::model {

// One sequence's state: a KV cache per layer and the number of tokens processed
// (the RoPE position of the next token). Made by Model::new_sequence.
struct SequenceState {
  std::vector<std::unique_ptr<kv::Cache>> caches;  // one per layer
  int position = 0;
  int context_limit = 0;  // most tokens this sequence may hold (<= max_position_embeddings)

  // The storage of all layers' caches together.
  kv::MemoryReport memory() const;
};

// What one sequence contributes to a forward call.
struct ForwardRequest {
  SequenceState* seq = nullptr;
  std::span<const int32_t> tokens;  // the new tokens: a prefill chunk or one decode token
  bool all_logits = false;          // logits of every new token (perplexity), else the last
};

class Model {
 public:
  // Reads <dir>/config.json and the safetensors weights (single or sharded).
  static Model load(const std::string& dir);
  Model(ModelConfig config, ModelWeights weights);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }

  // A fresh sequence whose caches follow `method`. context_limit 0 means the
  // model's max_position_embeddings; a larger one is an error.
  SequenceState new_sequence(const kv::MethodConfig& method, int context_limit = 0) const;

  // Runs the new tokens of every request. Returns, per request, row-major logits
  // [n, vocab] with n = tokens.size() when all_logits, else n = 1 (the last token).
  // Requests are checked before any cache changes: empty token lists, ids outside
  // the vocabulary, a sequence given twice, or a position past the context limit
  // are zc::Errors that leave every sequence as it was.
  std::vector<std::vector<float>> forward(std::span<const ForwardRequest> batch) const;
  // One sequence.
  std::vector<float> forward(SequenceState& seq, std::span<const int32_t> tokens,
                             bool all_logits = false) const;

 private:
  ModelConfig config_;
  ModelWeights weights_;
  std::vector<float> inv_freq_;  // RoPE frequencies, [head_dim / 2]
};

}  // namespace zc::model
