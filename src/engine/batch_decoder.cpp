#include "engine/batch_decoder.h"

#include <algorithm>

#include "core/error.h"

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

  std::vector<float> prefill(int slot, std::span<const int32_t> prompt) override {
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

  void step(std::span<const int> slots, std::span<const int32_t> ids, std::vector<float>& logits) override {
    if (slots.size() != ids.size()) fail("a batch step of {} slots with {} ids", slots.size(), ids.size());
    logits.resize(slots.size() * size_t(vocab_));
    for (size_t i = 0; i < slots.size(); ++i) {
      std::unique_ptr<Decoder>& d = at(slots[i]);
      if (!d) fail("batch slot {} is free", slots[i]);
      const std::vector<float> row = d->step(ids[i]);
      if (int(row.size()) != vocab_) fail("a decoder gave {} logits, the vocabulary has {}", row.size(), vocab_);
      std::copy(row.begin(), row.end(), logits.begin() + std::ptrdiff_t(i) * vocab_);
    }
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
};

}  // namespace

std::unique_ptr<BatchDecoder> sequential_batch(DecoderFactory make_decoder, const kv::MethodConfig& method,
                                               int context, int slots, int vocab) {
  return std::make_unique<SequentialBatch>(std::move(make_decoder), method, context, slots, vocab);
}

}  // namespace zc::engine
