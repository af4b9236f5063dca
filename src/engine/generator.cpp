#include "engine/generator.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "core/error.h"
#include "engine/sequence_generation.h"

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
  SequenceGeneration generation(start_at, config, tokenizer, options, context, on_text);
  const size_t vocab = logits.size();
  std::optional<int32_t> next = generation.advance(logits);
  const bool device_draws = decoder.draws_on_device();
  while (next) {
    const int32_t id = *next;
    const TokenPick pick = generation.next_pick(device_draws);
    const bool picked = pick.kind != TokenPick::Kind::kLogits;
    int32_t token = -1;
    if (picked)
      token = decoder.step_pick(id, pick);
    else
      logits = decoder.step(id);
    if (fed) fed->push_back(id);
    next = picked ? generation.advance_picked(token, vocab) : generation.advance(logits);
  }
  return generation.finish(decoder.memory());
}

int32_t Decoder::step_pick(int32_t id, const TokenPick& pick) { return pick_on_host(step(id), pick); }

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
