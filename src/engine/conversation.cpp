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
  said_fed_.clear();
  reused_ = 0;
}

GenerationResult Conversation::reply(const std::string& prompt_text, const GenerationOptions& options,
                                     const TextCallback& on_text) {
  if (!tokenizer_) fail("a text prompt needs the model's tokenizer");
  const auto goes_on_from = [&](const std::string& said) {
    return decoder_ && !said.empty() && prompt_text.size() > said.size() && prompt_text.starts_with(said);
  };
  std::vector<int32_t> prompt = cached_;
  // What the sequence says with its last sampled id (a template that writes the EOS
  // after the reply), or without it (one that does not, or a reply cut at its limit
  // whose text the next turn leaves out); then the rest of the text, whose first token
  // may be spelled apart from what precedes it (as in llama.cpp's chat).
  std::string_view rest;
  if (goes_on_from(said_)) {
    prompt.insert(prompt.end(), pending_.begin(), pending_.end());
    rest = std::string_view(prompt_text).substr(said_.size());
  } else if (goes_on_from(said_fed_)) {
    rest = std::string_view(prompt_text).substr(said_fed_.size());
  } else {
    prompt.clear();
    rest = prompt_text;
  }
  const auto rest_ids = tokenizer_->encode(rest, false);
  prompt.insert(prompt.end(), rest_ids.begin(), rest_ids.end());
  GenerationResult result = reply(std::span<const int32_t>(prompt), options, on_text);
  said_ = prompt_text + result.raw_text;
  // The reply's ids in the cache: all but the unfed last one, unless that was the EOS.
  const size_t fed = result.tokens.size() - (result.end_token < 0 && !pending_.empty() ? 1 : 0);
  said_fed_ = prompt_text + tokenizer_->decode({result.tokens.begin(), result.tokens.begin() + long(fed)}, false);
  return result;
}

GenerationResult Conversation::reply(std::span<const int32_t> prompt, const GenerationOptions& options,
                                     const TextCallback& on_text) {
  check_prompt(prompt, context_);
  try {
    return reply_checked(prompt, options, on_text);
  } catch (...) {
    reset();  // the decoder may hold more than cached_ says: never reuse it
    throw;
  }
}

GenerationResult Conversation::reply_checked(std::span<const int32_t> prompt, const GenerationOptions& options,
                                             const TextCallback& on_text) {
  const auto start = std::chrono::steady_clock::now();
  said_.clear();  // a text reply sets them again
  said_fed_.clear();
  const size_t common =
      size_t(std::mismatch(cached_.begin(), cached_.end(), prompt.begin(), prompt.end()).first - cached_.begin());
  std::vector<float> logits;
  // Reuse needs the cached ids to be a prefix of the prompt (a cache cannot drop
  // tokens) and at least one new id (whose logits start the reply). The pending id is
  // not in the cache: the prompt may go on with it or without it.
  if (decoder_ && common == cached_.size() && common < prompt.size()) {
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
  const DecodeStart start_at{cached_, int(prompt.size()), prefill_seconds, reused_};
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
