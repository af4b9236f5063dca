#include "engine/conversation.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "core/error.h"

namespace zc::engine {

Conversation::Conversation(DecoderFactory make_decoder, kv::MethodConfig method, int context,
                           const model::ModelConfig& config, const tok::Tokenizer* tokenizer)
    : make_decoder_(std::move(make_decoder)),
      method_(std::move(method)),
      context_(context),
      config_(config),
      tokenizer_(tokenizer) {}

void Conversation::reset() {
  decoder_.reset();
  cached_.clear();
  pending_.clear();
  said_.clear();
  reused_ = 0;
}

GenerationResult Conversation::reply(const std::string& prompt_text, const GenerationOptions& options,
                                     const TextCallback& on_text) {
  if (!tokenizer_) fail("a text prompt needs the model's tokenizer");
  std::vector<int32_t> prompt;
  if (decoder_ && !said_.empty() && prompt_text.size() > said_.size() && prompt_text.starts_with(said_)) {
    // What the sequence says, then the rest of the text (its first token may be spelled
    // apart from what precedes it, as llama.cpp's chat does too).
    prompt = cached_;
    prompt.insert(prompt.end(), pending_.begin(), pending_.end());
    const auto rest = tokenizer_->encode(std::string_view(prompt_text).substr(said_.size()), false);
    prompt.insert(prompt.end(), rest.begin(), rest.end());
  } else {
    prompt = tokenizer_->encode(prompt_text, false);
  }
  GenerationResult result = reply(std::span<const int32_t>(prompt), options, on_text);
  said_ = prompt_text + result.raw_text;
  return result;
}

GenerationResult Conversation::reply(std::span<const int32_t> prompt, const GenerationOptions& options,
                                     const TextCallback& on_text) {
  check_prompt(prompt, context_);
  const auto start = std::chrono::steady_clock::now();
  said_.clear();  // a text reply sets it again
  std::vector<int32_t> held = cached_;
  held.insert(held.end(), pending_.begin(), pending_.end());
  const size_t common =
      size_t(std::mismatch(held.begin(), held.end(), prompt.begin(), prompt.end()).first - held.begin());
  std::vector<float> logits;
  // Reuse needs everything the sequence holds to be a prefix of the prompt (a cache
  // cannot drop tokens) and at least one new token (whose logits start the reply).
  if (decoder_ && common == held.size() && common < prompt.size()) {
    reused_ = int(cached_.size());
    for (size_t i = cached_.size(); i < prompt.size(); ++i) {
      logits = decoder_->step(prompt[i]);
      cached_.push_back(prompt[i]);
    }
  } else {
    reset();
    decoder_ = make_decoder_(method_, context_);
    logits = decoder_->prefill(prompt);
    cached_.assign(prompt.begin(), prompt.end());
  }
  pending_.clear();
  const double prefill_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const DecodeStart start_at{cached_, int(prompt.size()) - reused_, prefill_seconds};
  std::vector<int32_t> fed;
  GenerationResult result = decode_from(*decoder_, std::move(logits), start_at, config_, tokenizer_, options,
                                        context_, on_text, &fed);
  cached_.insert(cached_.end(), fed.begin(), fed.end());
  // The one sampled id the loop did not feed (it feeds each id before sampling the next).
  if (result.tokens.size() > fed.size()) pending_.push_back(result.tokens.back());
  if (result.end_token >= 0) pending_.push_back(result.end_token);
  return result;
}

}  // namespace zc::engine
