#include "engine/batch_decoder.h"

#include <algorithm>
#include <optional>

#include "core/error.h"
#include "core/thread_pool.h"
#include "engine/sampler.h"

namespace zc::engine {

namespace {

class SequentialBatch final : public BatchDecoder {
 public:
  SequentialBatch(DecoderFactory make_decoder, kv::MethodConfig method, int context, int slots, int vocab)
      : make_decoder_(std::move(make_decoder)), method_(std::move(method)), context_(context), vocab_(vocab),
        decoders_(size_t(slots)) {
    if (slots < 1) fail("a batch of {} slots; at least 1", slots);
  }
  int slots() const override { return int(decoders_.size()); }
  int vocab() const override { return vocab_; }

  std::vector<float> prefill(int slot, std::span<const int32_t> prompt, int /*max_new_tokens*/) override {
    std::unique_ptr<Decoder>& d = at(slot);
    if (d) fail("batch slot {} is busy", slot);
    d = make_decoder_(method_, context_);
    if (!d) fail("the decoder factory gave no decoder");
    try {
      return d->prefill(prompt);
    } catch (...) {
      d.reset();
      throw;
    }
  }

  std::span<const float> step(std::span<const int> slots, std::span<const int32_t> ids) override {
    return step_pick(slots, ids, {}, {});
  }
  // Each decoder's own step_pick for the picked rows (a GPU decoder copies one id);
  // empty picks: every row's logits (step).
  std::span<const float> step_pick(std::span<const int> slots, std::span<const int32_t> ids,
                                   std::span<const TokenPick> picks, std::span<int32_t> tokens) override {
    if (slots.size() != ids.size()) fail("a batch step of {} slots with {} ids", slots.size(), ids.size());
    const bool any = !picks.empty() || !tokens.empty();
    if (any) check_pick_args(slots, picks, tokens);
    logits_.resize(slots.size() * size_t(vocab_));
    for (size_t i = 0; i < slots.size(); ++i) {
      std::unique_ptr<Decoder>& d = at(slots[i]);
      if (!d) fail("batch slot {} is free", slots[i]);
      if (any && picks[i].kind != TokenPick::Kind::kLogits) {
        tokens[i] = d->step_pick(ids[i], picks[i]);
        continue;
      }
      const std::vector<float> row = d->step(ids[i]);
      if (int(row.size()) != vocab_) fail("a decoder gave {} logits, the vocabulary has {}", row.size(), vocab_);
      std::copy(row.begin(), row.end(), logits_.begin() + std::ptrdiff_t(i) * vocab_);
    }
    return logits_;
  }

  kv::MemoryReport memory(int slot) const override {
    const std::unique_ptr<Decoder>& d = decoders_.at(size_t(slot));
    return d ? d->memory() : kv::MemoryReport{};
  }
  void release(int slot) override { at(slot).reset(); }

 private:
  std::unique_ptr<Decoder>& at(int slot) {
    if (slot < 0 || slot >= slots()) fail("batch slot {} of {}", slot, slots());
    return decoders_[size_t(slot)];
  }

  DecoderFactory make_decoder_;
  kv::MethodConfig method_;
  int context_, vocab_;
  std::vector<std::unique_ptr<Decoder>> decoders_;
  std::vector<float> logits_;  // the last step's rows
};

class CpuBatch final : public BatchDecoder {
 public:
  CpuBatch(const model::Model& model, kv::MethodConfig method, int context, int slots)
      : model_(model), method_(std::move(method)), context_(context), seqs_(size_t(slots)) {
    if (slots < 1) fail("a batch of {} slots; at least 1", slots);
    // The context is checked here, not at the first prompt.
    (void)model_.new_sequence(method_, context_);
  }
  int slots() const override { return int(seqs_.size()); }
  int vocab() const override { return model_.config().vocab_size; }

  std::vector<float> prefill(int slot, std::span<const int32_t> prompt, int /*max_new_tokens*/) override {
    std::optional<model::SequenceState>& s = at(slot);
    if (s) fail("batch slot {} is busy", slot);
    model::SequenceState seq = model_.new_sequence(method_, context_);
    std::vector<float> logits = model_.forward(seq, prompt);  // throws before the slot is taken
    s = std::move(seq);
    return logits;
  }

  std::span<const float> step(std::span<const int> slots, std::span<const int32_t> ids) override {
    if (slots.size() != ids.size()) fail("a batch step of {} slots with {} ids", slots.size(), ids.size());
    std::vector<model::ForwardRequest> batch(slots.size());
    for (size_t i = 0; i < slots.size(); ++i) {
      std::optional<model::SequenceState>& s = at(slots[i]);
      if (!s) fail("batch slot {} is free", slots[i]);
      batch[i].seq = &*s;
      batch[i].tokens = ids.subspan(i, 1);
    }
    // Model::forward checks every request (a slot given twice, a full context) before
    // any cache changes.
    const std::vector<std::vector<float>> rows = model_.forward(batch);
    const size_t v = size_t(vocab());
    logits_.resize(rows.size() * v);
    for (size_t i = 0; i < rows.size(); ++i) std::copy(rows[i].begin(), rows[i].end(), logits_.begin() + std::ptrdiff_t(i * v));
    return logits_;
  }

  kv::MemoryReport memory(int slot) const override {
    const std::optional<model::SequenceState>& s = seqs_.at(size_t(slot));
    return s ? s->memory() : kv::MemoryReport{};
  }
  void release(int slot) override { at(slot).reset(); }

 private:
  std::optional<model::SequenceState>& at(int slot) {
    if (slot < 0 || slot >= slots()) fail("batch slot {} of {}", slot, slots());
    return seqs_[size_t(slot)];
  }

  const model::Model& model_;
  kv::MethodConfig method_;
  int context_;
  std::vector<std::optional<model::SequenceState>> seqs_;
  std::vector<float> logits_;  // the last step's rows
};

}  // namespace

void BatchDecoder::check_pick_args(std::span<const int> slots, std::span<const TokenPick> picks,
                                   std::span<int32_t> tokens) {
  if (picks.size() != slots.size() || tokens.size() != slots.size())
    fail("a batch step of {} slots with {} picks and {} tokens", slots.size(), picks.size(), tokens.size());
}

std::span<const float> BatchDecoder::step_pick(std::span<const int> slots, std::span<const int32_t> ids,
                                              std::span<const TokenPick> picks, std::span<int32_t> tokens) {
  check_pick_args(slots, picks, tokens);
  const std::span<const float> rows = step(slots, ids);
  const size_t v = size_t(vocab());
  parallel_for(slots.size(), [&](size_t i) {
    if (picks[i].kind != TokenPick::Kind::kLogits) tokens[i] = pick_on_host(rows.subspan(i * v, v), picks[i]);
  });
  return rows;
}

std::unique_ptr<BatchDecoder> cpu_batch(const model::Model& model, const kv::MethodConfig& method, int context,
                                        int slots) {
  return std::make_unique<CpuBatch>(model, method, context, slots);
}

std::unique_ptr<BatchDecoder> sequential_batch(DecoderFactory make_decoder, const kv::MethodConfig& method,
                                               int context, int slots, int vocab) {
  return std::make_unique<SequentialBatch>(std::move(make_decoder), method, context, slots, vocab);
}

}  // namespace zc::engine
