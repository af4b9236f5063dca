// One sequence's generation, one token at a time, with the decoder outside it: the
// sampling, EOS, stop strings, token limit, full context and cancelling of
// engine::decode_from, and its UTF-8-complete streaming. decode_from drives it over one
// Decoder; the batch scheduler (engine/batch_scheduler.h) drives many of them over one
// batch, each advanced from its own row of a step's logits.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "engine/sampler.h"
#include "engine/stop_strings.h"
#include "tokenizer/tokenizer.h"

namespace zc::engine {

class SequenceGeneration {
 public:
  // start_at.history is copied (the sampler's repetition window). The tokenizer (may be
  // null: the stream is the ids, comma-separated), config and on_text must outlive it.
  SequenceGeneration(const DecodeStart& start_at, const model::ModelConfig& config, const tok::Tokenizer* tokenizer,
                     const GenerationOptions& options, int context, TextCallback on_text = {});

  // Samples the next token from the logits of the last token the sequence holds and
  // streams its text. Returns the token to feed to the decoder next, or nothing when the
  // generation has ended (EOS, a stop string, the token limit, a full context, or
  // options.cancelled; the sampled token that ends it is never fed).
  std::optional<int32_t> advance(std::span<const float> logits);
  // What the next token needs from the decoder's step (engine::TokenPick): its argmax
  // (greedy, no penalty, no logprobs), a draw (when device_draws, the decoder draws where
  // the logits are: sampling with no penalty and no logprobs; this takes the token's
  // uniform from the sampler), else the row of logits for advance().
  TokenPick next_pick(bool device_draws);
  // advance() with the token the decoder picked for next_pick()'s kArgmax or kDraw
  // (check_picked's form: -1 and -2 throw the sampler's errors).
  std::optional<int32_t> advance_picked(int32_t token, size_t vocab);
  bool done() const { return done_; }
  // Ends it from outside before its end (stop reason "cancelled"): a server stopping.
  void cancel();
  int generated() const { return int(result_.tokens.size()); }

  // Ends the generation (if advance has not): flushes the text held back for stop
  // strings and UTF-8, and returns the result with `memory` as the cache's figure.
  GenerationResult finish(const kv::MemoryReport& memory);

 private:
  std::string piece(int32_t id);
  bool is_eos(int32_t id) const;
  void emit(const std::string& text);
  // The rest of advance() once the token is chosen; logits: its row (for logprobs).
  std::optional<int32_t> accept(int32_t next, std::span<const float> logits);
  bool row_needed() const { return options_.logprobs >= 0; }  // logprobs read the row

  const model::ModelConfig& config_;
  const tok::Tokenizer* tokenizer_;
  GenerationOptions options_;
  int context_;
  TextCallback on_text_;
  Sampler sampler_;
  StopMatcher stops_;
  std::optional<tok::StreamDecoder> detok_;
  std::vector<int32_t> history_;
  int position_;  // tokens the decoder's sequence holds
  bool done_ = false;
  TokenPick::Kind pending_ = TokenPick::Kind::kLogits;  // next_pick's last answer
  GenerationResult result_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace zc::engine
