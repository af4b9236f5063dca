// engine::generate_with over a scripted decoder: a greedy generation without penalty or
// logprobs takes each next token from the decoder's step_argmax (the GPU decoder's
// argmax on the device, one id copied instead of the row), every other generation reads
// the rows; a NaN row (-1 from step_argmax) is the sampler's NaN error. The results
// against the golden models' greedy continuations are tests/model/golden_test.cpp's.
#include "engine/generator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/error.h"

namespace zc::engine {
namespace {

constexpr int kVocab = 40;

// The next token of a sequence is its last one plus one (one-hot logits); counts the
// calls. step_argmax answers the same without the row; fed nan_after gives a NaN row.
class CountingDecoder final : public Decoder {
 public:
  std::vector<float> prefill(std::span<const int32_t> prompt) override { return row(prompt.back()); }
  std::vector<float> step(int32_t id) override {
    ++steps;
    return row(id);
  }
  int32_t step_argmax(int32_t id) override {
    ++argmax_steps;
    return id == nan_after ? -1 : (id + 1) % kVocab;
  }
  kv::MemoryReport memory() const override { return {}; }

  int steps = 0, argmax_steps = 0;
  int32_t nan_after = -1;

 private:
  std::vector<float> row(int32_t last) const {
    std::vector<float> r(kVocab, 0.0f);
    r[size_t((last + 1) % kVocab)] = 8.0f;
    if (last == nan_after) r[0] = std::nanf("");
    return r;
  }
};

model::ModelConfig config() {
  model::ModelConfig c;
  c.vocab_size = kVocab;
  c.max_position_embeddings = 64;
  return c;
}

GenerationOptions greedy(int n) {
  GenerationOptions o;
  o.max_tokens = n;
  o.sampling.temperature = 0;
  return o;
}

std::vector<int32_t> counting(int32_t from, int n) {
  std::vector<int32_t> v;
  for (int i = 0; i < n; ++i) v.push_back((from + i) % kVocab);
  return v;
}

TEST(GenerateWith, GreedyStepsTakeTheDecodersArgmax) {
  const model::ModelConfig c = config();
  const std::vector<int32_t> prompt = {3, 9};
  for (int variant = 0; variant < 5; ++variant) {
    SCOPED_TRACE(variant);
    GenerationOptions o = greedy(7);
    if (variant == 1) o.sampling.repeat_penalty = 1.2f;
    if (variant == 2) o.logprobs = 2;
    if (variant == 3) o.sampling.temperature = 0.5f, o.sampling.top_k = 1;
    if (variant == 4) o.sampling.frequency_penalty = 0.3f;
    CountingDecoder d;
    const GenerationResult r = generate_with(d, c, nullptr, prompt, o, 64);
    EXPECT_EQ(r.tokens, counting(10, 7));
    // Six steps after the prefill's token: all through step_argmax for plain greedy.
    EXPECT_EQ(d.argmax_steps, variant == 0 ? 6 : 0);
    EXPECT_EQ(d.steps, variant == 0 ? 0 : 6);
    if (variant == 2) {
      EXPECT_EQ(r.logprobs.size(), 7u);
    }
  }
}

TEST(GenerateWith, NanFromTheDecodersArgmaxIsAnError) {
  const model::ModelConfig c = config();
  for (const bool greedy_path : {true, false}) {
    CountingDecoder d;
    d.nan_after = 12;
    GenerationOptions o = greedy(10);
    if (!greedy_path) o.sampling.repeat_penalty = 1.1f;
    try {
      generate_with(d, c, nullptr, std::vector<int32_t>{9}, o, 64);
      ADD_FAILURE() << "NaN logits gave a result";
    } catch (const zc::Error& e) {
      EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
    }
  }
  // The default step_argmax (the host's argmax of step()) gives -1 for a NaN row too.
  struct RowsOnly final : Decoder {
    std::vector<float> prefill(std::span<const int32_t>) override { return {1.0f, 2.0f}; }
    std::vector<float> step(int32_t id) override { return id == 0 ? std::vector<float>{0.5f, std::nanf("")} : std::vector<float>{3.0f, 2.0f}; }
    kv::MemoryReport memory() const override { return {}; }
  } rows;
  EXPECT_EQ(rows.step_argmax(1), 0);
  EXPECT_EQ(rows.step_argmax(0), -1);
}

}  // namespace
}  // namespace zc::engine
