#include "engine/sequence_generation.h"

#include <algorithm>

#include "core/error.h"

namespace zc::engine {

SequenceGeneration::SequenceGeneration(const DecodeStart& start_at, const model::ModelConfig& config,
                                       const tok::Tokenizer* tokenizer, const GenerationOptions& options,
                                       int context, TextCallback on_text)
    : config_(config),
      tokenizer_(tokenizer),
      options_(options),
      context_(context),
      on_text_(std::move(on_text)),
      sampler_(options.sampling),
      stops_(options.stop),
      history_(start_at.history.begin(), start_at.history.end()),
      position_(int(start_at.history.size())),
      start_(std::chrono::steady_clock::now()) {
  if (tokenizer_) detok_.emplace(*tokenizer_, /*skip_special_tokens=*/true);
  result_.prompt_tokens = start_at.prompt_tokens;
  result_.prefill_seconds = start_at.prefill_seconds;
  result_.cached_prompt_tokens = start_at.cached_prompt_tokens;
  result_.stop_reason = "max tokens";
  // A limit of 0 tokens ends before the first sample.
  if (options_.max_tokens == 0) done_ = true;
}

std::string SequenceGeneration::piece(int32_t id) {
  if (detok_) return detok_->step(id);
  std::string text = std::to_string(id);
  if (result_.tokens.size() > 1) text.insert(text.begin(), ',');
  return text;
}

bool SequenceGeneration::is_eos(int32_t id) const {
  if (options_.ignore_eos) return false;
  const std::vector<int>& eos = config_.eos_token_ids;
  if (std::find(eos.begin(), eos.end(), id) != eos.end()) return true;
  if (!tokenizer_) return false;
  const auto& tok_eos = tokenizer_->eos_ids();
  return std::find(tok_eos.begin(), tok_eos.end(), id) != tok_eos.end();
}

void SequenceGeneration::emit(const std::string& text) {
  if (text.empty()) return;
  result_.text += text;
  if (on_text_) on_text_(text);
}

std::optional<int32_t> SequenceGeneration::advance(std::span<const float> logits) {
  if (done_) return std::nullopt;
  if (pending_ != TokenPick::Kind::kLogits) fail("a generation whose token was picked by the decoder was given logits");
  return accept(sampler_.sample(logits, history_), logits);
}

TokenPick SequenceGeneration::next_pick(bool device_draws) {
  TokenPick pick;
  if (done_ || row_needed()) {
    pick.kind = TokenPick::Kind::kLogits;
  } else if (sampler_.plain_argmax()) {
    pick.kind = TokenPick::Kind::kArgmax;
  } else if (device_draws && sampler_.drawable()) {
    pick.kind = TokenPick::Kind::kDraw;
    pick.draw = sampler_.next_draw();
  }
  pending_ = pick.kind;
  return pick;
}

std::optional<int32_t> SequenceGeneration::advance_picked(int32_t token, size_t vocab) {
  if (done_) return std::nullopt;
  if (pending_ == TokenPick::Kind::kLogits) fail("a generation that needs its logits was given a picked token");
  pending_ = TokenPick::Kind::kLogits;
  return accept(check_picked(token, vocab), {});
}

std::optional<int32_t> SequenceGeneration::accept(int32_t next, std::span<const float> logits) {
  done_ = true;  // until a token to feed is returned below
  if (is_eos(next)) {
    result_.stop_reason = "eos";
    result_.end_token = next;
    return std::nullopt;
  }
  if (options_.logprobs >= 0) {
    TokenLogprob entry = token_logprob(logits, next, options_.logprobs);
    if (options_.on_logprob) options_.on_logprob(entry);
    result_.logprobs.push_back(std::move(entry));
  }
  result_.tokens.push_back(next);
  history_.push_back(next);
  emit(stops_.feed(piece(next)));
  if (stops_.stopped()) {
    result_.stop_reason = "stop string";
    return std::nullopt;
  }
  if (position_ >= context_) {
    result_.stop_reason = "context full";
    return std::nullopt;
  }
  if (options_.max_tokens >= 0 && generated() == options_.max_tokens) return std::nullopt;
  if (options_.cancelled && options_.cancelled()) {
    result_.stop_reason = "cancelled";
    return std::nullopt;
  }
  done_ = false;
  ++position_;
  return next;
}

void SequenceGeneration::cancel() {
  if (done_) return;
  done_ = true;
  result_.stop_reason = "cancelled";
}

GenerationResult SequenceGeneration::finish(const kv::MemoryReport& memory) {
  done_ = true;
  if (!stops_.stopped()) {
    if (detok_) emit(stops_.feed(detok_->flush()));
    emit(stops_.flush());
  }
  if (tokenizer_) {
    std::vector<int32_t> sampled = result_.tokens;
    if (result_.end_token >= 0) sampled.push_back(result_.end_token);
    result_.raw_text = tokenizer_->decode(sampled, /*skip_special_tokens=*/false);
  }
  result_.decode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  result_.memory = memory;
  return std::move(result_);
}

}  // namespace zc::engine
