// A conversation whose KV cache carries over from turn to turn (`zipcache chat`). Each
// turn's prompt is the whole conversation rendered again by the chat template; the
// tokens the cache already holds (the earlier turns and the reply just generated) are
// not computed again when they are a prefix of it, as llama.cpp's prompt cache does.
// Only the new tokens go through the decoder, one decode step each: every cache method
// (ZipCache's streaming chunks included) takes tokens after its prefill that way, while
// a second prefill into a filled cache is not a path any method has.
#pragma once
#include <memory>
#include <span>
#include <vector>

#include "engine/generator.h"

namespace zc::engine {

class Conversation {
 public:
  // The caller owns config and tokenizer (may be null: see generate()) and keeps them
  // alive; make_decoder makes a decoder of `method` for `context` tokens.
  Conversation(DecoderFactory make_decoder, kv::MethodConfig method, int context,
               const model::ModelConfig& config, const tok::Tokenizer* tokenizer);

  // Generates the reply to `prompt`, the whole conversation so far. Throws zc::Error for
  // an empty prompt or one that does not fit the context (the cache is left as it was).
  GenerationResult reply(std::span<const int32_t> prompt, const GenerationOptions& options,
                         const TextCallback& on_text = {});
  // Forgets the cache (the next reply prefills from scratch).
  void reset();
  // Tokens the cache holds, and how many of the last reply's prompt it already held.
  int cached_tokens() const { return int(cached_.size()); }
  int reused_tokens() const { return reused_; }

 private:
  DecoderFactory make_decoder_;
  kv::MethodConfig method_;
  int context_;
  const model::ModelConfig& config_;
  const tok::Tokenizer* tokenizer_;
  std::unique_ptr<Decoder> decoder_;
  std::vector<int32_t> cached_;  // the tokens fed to decoder_, in order
  int reused_ = 0;
};

}  // namespace zc::engine
