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
  reused_ = 0;
}

GenerationResult Conversation::reply(std::span<const int32_t> prompt, const GenerationOptions& options,
                                     const TextCallback& on_text) {
  check_prompt(prompt, context_);
  const auto start = std::chrono::steady_clock::now();
  const size_t common =
      size_t(std::mismatch(cached_.begin(), cached_.end(), prompt.begin(), prompt.end()).first - cached_.begin());
  std::vector<float> logits;
  // Reuse needs the whole cache to be a prefix of the prompt (a cache cannot drop
  // tokens) and at least one new token (whose logits start the reply).
  if (decoder_ && common == cached_.size() && common < prompt.size()) {
    reused_ = int(common);
    for (size_t i = common; i < prompt.size(); ++i) {
      logits = decoder_->step(prompt[i]);
      cached_.push_back(prompt[i]);
    }
  } else {
    reset();
    decoder_ = make_decoder_(method_, context_);
    logits = decoder_->prefill(prompt);
    cached_.assign(prompt.begin(), prompt.end());
  }
  const double prefill_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const DecodeStart start_at{cached_, int(prompt.size()) - reused_, prefill_seconds};
  std::vector<int32_t> fed;
  GenerationResult result = decode_from(*decoder_, std::move(logits), start_at, config_, tokenizer_, options,
                                        context_, on_text, &fed);
  cached_.insert(cached_.end(), fed.begin(), fed.end());
  return result;
}

}  // namespace zc::engine
