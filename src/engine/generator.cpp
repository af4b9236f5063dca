#include "engine/generator.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "core/error.h"
#include "engine/stop_strings.h"

namespace zc::engine {

namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

namespace {

class CpuDecoder final : public Decoder {
 public:
  CpuDecoder(const model::Model& model, const kv::MethodConfig& method, int context)
      : model_(model), seq_(model.new_sequence(method, context)) {}
  std::vector<float> prefill(std::span<const int32_t> prompt) override { return model_.forward(seq_, prompt); }
  std::vector<float> step(int32_t id) override {
    const int32_t one[1] = {id};
    return model_.forward(seq_, std::span<const int32_t>(one, 1));
  }
  kv::MemoryReport memory() const override { return seq_.memory(); }

 private:
  const model::Model& model_;
  model::SequenceState seq_;
};

}  // namespace

std::unique_ptr<Decoder> cpu_decoder(const model::Model& model, const kv::MethodConfig& method, int context) {
  return std::make_unique<CpuDecoder>(model, method, context);
}

GenerationResult generate(const model::Model& model, const tok::Tokenizer* tokenizer,
                          const kv::MethodConfig& method, std::span<const int32_t> prompt,
                          const GenerationOptions& options, const TextCallback& on_text) {
  const int max_context = model.config().max_position_embeddings;
  const int context = options.context > 0 ? options.context : max_context;
  if (context > max_context)
    fail("context {} is larger than the model's max_position_embeddings {}", context, max_context);
  CpuDecoder decoder(model, method, context);
  return generate_with(decoder, model.config(), tokenizer, prompt, options, context, on_text);
}

void check_prompt(std::span<const int32_t> prompt, int context) {
  if (prompt.empty()) fail("the prompt is empty (no tokens)");
  if (int(prompt.size()) >= context)
    fail("the prompt has {} tokens but the context holds {} (raise -c or shorten the prompt)",
         prompt.size(), context);
}

GenerationResult decode_from(Decoder& decoder, std::vector<float> logits, const DecodeStart& start_at,
                             const model::ModelConfig& config, const tok::Tokenizer* tokenizer,
                             const GenerationOptions& options, int context, const TextCallback& on_text,
                             std::vector<int32_t>* fed) {
  GenerationResult result;
  result.prompt_tokens = start_at.prompt_tokens;
  result.prefill_seconds = start_at.prefill_seconds;
  result.cached_prompt_tokens = start_at.cached_prompt_tokens;
  Sampler sampler(options.sampling);
  StopMatcher stops(options.stop);
  std::optional<tok::StreamDecoder> detok;
  if (tokenizer) detok.emplace(*tokenizer, /*skip_special_tokens=*/true);
  auto piece = [&](int32_t id) {
    if (detok) return detok->step(id);
    std::string text = std::to_string(id);
    if (result.tokens.size() > 1) text.insert(text.begin(), ',');
    return text;
  };
  const std::vector<int>& eos = config.eos_token_ids;
  auto is_eos = [&](int32_t id) {
    if (options.ignore_eos) return false;
    if (std::find(eos.begin(), eos.end(), id) != eos.end()) return true;
    if (!tokenizer) return false;
    const auto& tok_eos = tokenizer->eos_ids();
    return std::find(tok_eos.begin(), tok_eos.end(), id) != tok_eos.end();
  };
  auto emit = [&](const std::string& text) {
    if (text.empty()) return;
    result.text += text;
    if (on_text) on_text(text);
  };

  std::vector<int32_t> history(start_at.history.begin(), start_at.history.end());
  int position = int(history.size());
  const auto start = std::chrono::steady_clock::now();
  result.stop_reason = "max tokens";
  for (int n = 0; options.max_tokens < 0 || n < options.max_tokens; ++n) {
    const int32_t next = sampler.sample(logits, history);
    if (is_eos(next)) {
      result.stop_reason = "eos";
      result.end_token = next;
      break;
    }
    result.tokens.push_back(next);
    history.push_back(next);
    emit(stops.feed(piece(next)));
    if (stops.stopped()) {
      result.stop_reason = "stop string";
      break;
    }
    if (position >= context) {
      result.stop_reason = "context full";
      break;
    }
    if (options.max_tokens >= 0 && n + 1 == options.max_tokens) break;
    if (options.cancelled && options.cancelled()) {
      result.stop_reason = "cancelled";
      break;
    }
    logits = decoder.step(next);
    if (fed) fed->push_back(next);
    ++position;
  }
  if (!stops.stopped()) {
    if (detok) emit(stops.feed(detok->flush()));
    emit(stops.flush());
  }
  if (tokenizer) {
    std::vector<int32_t> sampled = result.tokens;
    if (result.end_token >= 0) sampled.push_back(result.end_token);
    result.raw_text = tokenizer->decode(sampled, /*skip_special_tokens=*/false);
  }
  result.decode_seconds = seconds_since(start);
  result.memory = decoder.memory();
  return result;
}

GenerationResult generate_with(Decoder& decoder, const model::ModelConfig& config,
                               const tok::Tokenizer* tokenizer, std::span<const int32_t> prompt,
                               const GenerationOptions& options, int context,
                               const TextCallback& on_text) {
  check_prompt(prompt, context);
  const auto start = std::chrono::steady_clock::now();
  std::vector<float> logits = decoder.prefill(prompt);
  const DecodeStart start_at{prompt, int(prompt.size()), seconds_since(start)};
  return decode_from(decoder, std::move(logits), start_at, config, tokenizer, options, context, on_text);
}

}  // namespace zc::engine
