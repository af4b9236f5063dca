// Generating text for one prompt: prefill the prompt through the chosen KV cache,
// then decode one token at a time, sampling, stopping on EOS, stop strings, the token
// limit or a full context, and streaming only complete UTF-8 text.
#pragma once
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "kv/cache.h"
#include "kv/method.h"
#include "model/forward.h"
#include "tokenizer/tokenizer.h"

namespace zc::engine {

struct GenerationOptions {
  int max_tokens = 128;              // -n; < 0: until EOS or a full context
  int context = 0;                   // -c; 0: the model's max_position_embeddings
  SamplingParams sampling;
  std::vector<std::string> stop;     // stop strings (not included in the output)
  bool ignore_eos = false;
  // Asked before each decode step; true ends the generation with stop reason
  // "cancelled" (a server's client that went away). Empty: never.
  std::function<bool()> cancelled;
  // -1: none; 0 to kMaxTopLogprobs: each generated token's log probability
  // (GenerationResult::logprobs) with this many most likely alternatives.
  int logprobs = -1;
  // Called with each token's entry as it is sampled, before its text is streamed (on
  // the thread that samples: in a batch, the scheduler's or one of the thread pool's,
  // not the client's).
  std::function<void(const TokenLogprob&)> on_logprob;
};

struct GenerationResult {
  std::vector<int32_t> tokens;       // generated ids (the EOS not included)
  std::string text;                  // what was streamed
  std::string stop_reason;           // "eos", "stop string", "max tokens", "context full", "cancelled"
  int32_t end_token = -1;            // the EOS id sampled when stop_reason is "eos"
  // The text of every sampled id, the EOS included, special tokens and stop strings not
  // removed ("" without a tokenizer): what the sequence now says (engine/conversation.h).
  std::string raw_text;
  int prompt_tokens = 0;
  int cached_prompt_tokens = 0;      // of those, the ones a kept cache already held (engine/conversation.h)
  double prefill_seconds = 0, decode_seconds = 0;
  kv::MemoryReport memory;           // of all layers' caches at the end
  std::vector<TokenLogprob> logprobs;  // one per token of `tokens` when options.logprobs >= 0
};

using TextCallback = std::function<void(const std::string&)>;

// The forward pass generate() drives, one sequence: the CPU model (below), or another
// backend (the GPU runner of `zipcache generate --device cuda`).
class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual std::vector<float> prefill(std::span<const int32_t> prompt) = 0;  // last logits
  virtual std::vector<float> step(int32_t id) = 0;                          // next logits
  // step() for a caller that needs only the next token, picked as `pick` says (kArgmax
  // or kDraw; engine::TokenPick), in check_picked's form (-1 for a NaN row). The default
  // runs step() and pick_on_host; a GPU decoder picks on the device and copies one id
  // instead of the row (0.5 MB at Llama 3's vocabulary).
  virtual int32_t step_pick(int32_t id, const TokenPick& pick);
  // Whether step_pick draws kDraw picks where the logits are (else a caller asks rows).
  virtual bool draws_on_device() const { return false; }
  virtual kv::MemoryReport memory() const = 0;                              // all layers
};

// Makes a decoder of one sequence of at most `context` tokens through `method`: the
// CPU model (cpu_decoder) or a GPU session's (apps/zipcache/gpu_decoder.h).
using DecoderFactory = std::function<std::unique_ptr<Decoder>(const kv::MethodConfig& method, int context)>;

// The CPU model's decoder (model::Model::forward over one SequenceState).
std::unique_ptr<Decoder> cpu_decoder(const model::Model& model, const kv::MethodConfig& method, int context);

// The generation loop over any decoder; `context` is the most tokens the sequence may
// hold (the caller has checked it against the model).
GenerationResult generate_with(Decoder& decoder, const model::ModelConfig& config,
                               const tok::Tokenizer* tokenizer, std::span<const int32_t> prompt,
                               const GenerationOptions& options, int context,
                               const TextCallback& on_text = {});

// Throws zc::Error for an empty prompt or one that does not fit the context.
void check_prompt(std::span<const int32_t> prompt, int context);

// Where decoding starts: the tokens the decoder's cache holds (the sampler's repetition
// history), of which the last prompt_tokens are this request's prompt, computed (all but
// the first cached_prompt_tokens of it) in prefill_seconds.
struct DecodeStart {
  std::span<const int32_t> history;
  int prompt_tokens = 0;
  double prefill_seconds = 0;
  int cached_prompt_tokens = 0;  // of prompt_tokens, those not computed again
};

// The decode loop of generate_with from the logits of history's last token; the
// generated tokens fed to the decoder are appended to *fed (when given), so that a
// caller that keeps the decoder (engine/conversation.h) knows what its cache holds.
GenerationResult decode_from(Decoder& decoder, std::vector<float> logits, const DecodeStart& start_at,
                             const model::ModelConfig& config, const tok::Tokenizer* tokenizer,
                             const GenerationOptions& options, int context, const TextCallback& on_text,
                             std::vector<int32_t>* fed = nullptr);

// Throws zc::Error for an empty prompt or one that does not fit the context.
// Without a tokenizer (a model folder that has none, prompt given as ids) the
// stream is the generated ids, comma-separated.
GenerationResult generate(const model::Model& model, const tok::Tokenizer* tokenizer,
                          const kv::MethodConfig& method, std::span<const int32_t> prompt,
                          const GenerationOptions& options, const TextCallback& on_text = {});

}  // namespace zc::engine
