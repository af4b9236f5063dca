// Perplexity through the KV cache: each window of `context` tokens is split into a
// prefix that is prefilled, and a tail that is decoded token by token through the
// cache, so that what the cache's compression does to later tokens is measured
// (the prefill itself attends over exact keys and values in every method).
#pragma once
#include <cstddef>
#include <span>
#include <vector>

#include "engine/generator.h"
#include "kv/cache.h"
#include "kv/method.h"
#include "model/forward.h"

namespace zc::engine {

struct PerplexityOptions {
  int context = 512;       // tokens per window
  int prefix = 0;          // prefilled tokens per window; 0: half the window
  int max_windows = 0;     // 0: every full window of the text
};

struct PerplexityResult {
  double nll_sum = 0;      // natural-log loss over the scored tokens
  long scored_tokens = 0;  // tokens predicted during decode
  int windows = 0;
  kv::MemoryReport memory; // caches of the last window, all layers
  double seconds = 0;
  double perplexity() const;
};

// Each window runs through a decoder of `context` tokens made by `decoders` (null: the
// CPU model's, engine::cpu_decoder).
PerplexityResult perplexity(const model::Model& model, const kv::MethodConfig& method,
                            std::span<const int32_t> tokens, const PerplexityOptions& options,
                            const DecoderFactory* decoders = nullptr);
// The checks perplexity() makes before any work (window within the model's positions,
// prefix below it, at least one window of text): throws zc::Error naming the option;
// returns the prefix in use. Lets a command refuse before it prints anything.
int check_perplexity_options(const model::Model& model, size_t n_tokens, const PerplexityOptions& options);

// -log softmax(logits)[target] in double precision.
double token_nll(std::span<const float> logits, int32_t target);

}  // namespace zc::engine
