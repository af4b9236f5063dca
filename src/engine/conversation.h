// A conversation whose KV cache carries over from turn to turn (`zipcache chat`, and
// the server's prompt cache). Each turn's prompt is the whole conversation rendered
// again by the chat template; what the cache already holds (the earlier turns and the reply just generated) is not computed
// again when it is a prefix of it, as llama.cpp's prompt cache does. Only the new
// tokens go through the decoder, one decode step each: every cache method (ZipCache's
// streaming chunks included) takes tokens after its prefill that way, while a second
// prefill into a filled cache is not a path any method has.
//
// The prefix is judged on text, not on tokens: a sampled reply is seldom the tokens the
// tokenizer would give its text (BPE has many spellings of a string), so a re-rendered
// conversation, tokenized whole, rarely starts with the cached ids. When the rendered
// text starts with the text the cache holds, only the rest is tokenized and fed. A reply
// whose text leaves ids out (a special token sampled under ignore_eos, skipped in the
// text) does not match it, and the next turn starts over.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/generator.h"

namespace zc::engine {

class Conversation {
 public:
  // The caller owns config and tokenizer (may be null: token prompts only) and keeps
  // them alive; make_decoder makes a decoder of `method` for `context` tokens.
  Conversation(DecoderFactory make_decoder, kv::MethodConfig method, int context,
               const model::ModelConfig& config, const tok::Tokenizer* tokenizer);

  // The reply to `prompt_text`, the whole conversation so far as rendered by the chat
  // template (special tokens written in it are recognised; none are added). Needs a
  // tokenizer. Throws zc::Error for an empty prompt or one that does not fit the
  // context (the cache is left as it was).
  GenerationResult reply(const std::string& prompt_text, const GenerationOptions& options,
                         const TextCallback& on_text = {});
  // The same for a prompt of ids: the cached ids must be its prefix to be reused.
  GenerationResult reply(std::span<const int32_t> prompt, const GenerationOptions& options,
                         const TextCallback& on_text = {});
  // Forgets the cache (the next reply prefills from scratch).
  void reset();
  // Ids the cache holds, and how many of the last reply's prompt it already held.
  int cached_tokens() const { return int(cached_.size()); }
  int reused_tokens() const { return reused_; }

 private:
  GenerationResult reply_checked(std::span<const int32_t> prompt, const GenerationOptions& options,
                                 const TextCallback& on_text);

  DecoderFactory make_decoder_;
  kv::MethodConfig method_;
  int context_;
  const model::ModelConfig& config_;
  const tok::Tokenizer* tokenizer_;
  std::unique_ptr<Decoder> decoder_;
  std::vector<int32_t> cached_;  // the ids fed to decoder_, in order
  // The last reply's final sampled id (or its EOS), never fed: the sequence ends with
  // it, and the next turn feeds it first when its prompt goes on from there.
  std::vector<int32_t> pending_;
  // The text of cached_ + pending_, and of cached_ alone (text prompts only; else "").
  std::string said_, said_fed_;
  int reused_ = 0;
};

}  // namespace zc::engine
