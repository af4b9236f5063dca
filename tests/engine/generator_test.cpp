// engine::generate_with over a scripted decoder: a greedy generation without penalty or
// logprobs takes each next token from the decoder's step_pick (the GPU decoder's argmax
// on the device, one id copied instead of the row); a sampling one without penalty or
// logprobs does too when the decoder draws on the device, handing it the seed's next
// uniform; every other generation reads the rows; a NaN row (-1 from step_pick) is the
// sampler's NaN error. The results against the golden models' greedy continuations are
// tests/model/golden_test.cpp's.
#include "engine/generator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "core/rng.h"

namespace zc::engine {
namespace {

constexpr int kVocab = 40;

// The next token of a sequence is its last one plus one (one-hot logits); counts the
// calls. step_pick answers the same without the row (a draw too: the row is nearly
// one-hot), recording the draws; fed nan_after gives a NaN row.
class CountingDecoder final : public Decoder {
 public:
  std::vector<float> prefill(std::span<const int32_t> prompt) override { return row(prompt.back()); }
  std::vector<float> step(int32_t id) override {
    ++steps;
    return row(id);
  }
  int32_t step_pick(int32_t id, const TokenPick& pick) override {
    if (pick.kind == TokenPick::Kind::kDraw)
      draws.push_back(pick.draw);
    else
      ++argmax_steps;
    EXPECT_NE(pick.kind, TokenPick::Kind::kLogits);
    return id == nan_after ? -1 : (id + 1) % kVocab;
  }
  bool draws_on_device() const override { return device_draws; }
  kv::MemoryReport memory() const override { return {}; }

  int steps = 0, argmax_steps = 0;
  int32_t nan_after = -1;
  bool device_draws = false;
  std::vector<DrawSpec> draws;

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
    // Six steps after the prefill's token: all through step_pick for plain greedy.
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
  // A device draw's -1 too.
  CountingDecoder d;
  d.nan_after = 12;
  d.device_draws = true;
  GenerationOptions o = greedy(10);
  o.sampling.temperature = 0.5f;
  EXPECT_THROW(generate_with(d, c, nullptr, std::vector<int32_t>{9}, o, 64), zc::Error);
  EXPECT_EQ(d.draws.size(), 3u);  // fed 10, 11, 12
  // The default step_pick (the host's pick from step()) gives -1 for a NaN row too.
  struct RowsOnly final : Decoder {
    std::vector<float> prefill(std::span<const int32_t>) override { return {1.0f, 2.0f}; }
    std::vector<float> step(int32_t id) override { return id == 0 ? std::vector<float>{0.5f, std::nanf("")} : std::vector<float>{3.0f, 2.0f}; }
    kv::MemoryReport memory() const override { return {}; }
  } rows;
  TokenPick argmax{TokenPick::Kind::kArgmax, {}}, draw{TokenPick::Kind::kDraw, DrawSpec{1.0f, 0, 1.0f, 0.0f, 0.5}};
  EXPECT_EQ(rows.step_pick(1, argmax), 0);
  EXPECT_EQ(rows.step_pick(0, argmax), -1);
  EXPECT_EQ(rows.step_pick(0, draw), -1);
  EXPECT_FALSE(rows.draws_on_device());
}

// A sampling generation without penalty or logprobs has a device-drawing decoder draw
// each token after the first, with the seed's next uniform: the first token is sampled
// on the host from the prefill's row and takes the first.
TEST(GenerateWith, DeviceDrawsTakeTheSeedsUniformsInOrder) {
  const model::ModelConfig c = config();
  for (int variant = 0; variant < 4; ++variant) {
    SCOPED_TRACE(variant);
    GenerationOptions o = greedy(7);
    o.sampling.temperature = 0.7f;
    o.sampling.top_k = 5;
    o.sampling.top_p = 0.9f;
    o.sampling.min_p = 0.1f;
    o.sampling.seed = 42 + uint64_t(variant);
    if (variant == 1) o.logprobs = 0;
    if (variant == 2) o.sampling.presence_penalty = 0.5f;
    CountingDecoder d;
    d.device_draws = variant != 3;
    const GenerationResult r = generate_with(d, c, nullptr, std::vector<int32_t>{3}, o, 64);
    EXPECT_EQ(r.tokens, counting(4, 7));
    if (variant != 0) {
      EXPECT_TRUE(d.draws.empty());
      EXPECT_EQ(d.steps, 6);
      continue;
    }
    EXPECT_EQ(d.steps, 0);
    ASSERT_EQ(d.draws.size(), 6u);
    Rng rng(o.sampling.seed);
    rng.uniform();  // the first token's
    for (const DrawSpec& s : d.draws) {
      EXPECT_EQ(s.u, rng.uniform());
      EXPECT_EQ(s.temperature, 0.7f);
      EXPECT_EQ(s.top_k, 5);
      EXPECT_EQ(s.top_p, 0.9f);
      EXPECT_EQ(s.min_p, 0.1f);
    }
  }
}

// A decoder that draws on the device with the host's pick (pick_on_host) gives the text
// that sampling the rows on the host gives, seed for seed, over rows of random logits.
TEST(GenerateWith, HostPicksOfDrawsMatchSamplingTheRows) {
  model::ModelConfig c = config();
  c.vocab_size = 3000;
  struct RandomRows final : Decoder {
    std::vector<float> prefill(std::span<const int32_t> p) override { return row(p.back()); }
    std::vector<float> step(int32_t id) override { return row(id); }
    int32_t step_pick(int32_t id, const TokenPick& pick) override { return pick_on_host(row(id), pick); }
    bool draws_on_device() const override { return device; }
    kv::MemoryReport memory() const override { return {}; }
    std::vector<float> row(int32_t last) const {
      Rng rng(uint64_t(last) * 7919 + 1);
      std::vector<float> r(3000);
      for (float& v : r) v = rng.normal() * 2.5f;
      return r;
    }
    bool device = false;
  };
  for (int variant = 0; variant < 5; ++variant) {
    GenerationOptions o = greedy(40);
    o.sampling.temperature = variant == 4 ? 1.7f : 0.9f;
    o.sampling.top_k = variant == 1 ? 50 : 0;
    o.sampling.top_p = variant == 2 ? 0.8f : 1.0f;
    o.sampling.min_p = variant == 3 ? 0.05f : 0.0f;
    o.sampling.seed = 7 + uint64_t(variant);
    o.ignore_eos = true;
    RandomRows host, device;
    device.device = true;
    const auto a = generate_with(host, c, nullptr, std::vector<int32_t>{5}, o, 64).tokens;
    const auto b = generate_with(device, c, nullptr, std::vector<int32_t>{5}, o, 64).tokens;
    EXPECT_EQ(a, b) << "variant " << variant;
    EXPECT_EQ(a.size(), 40u);
  }
}

}  // namespace
}  // namespace zc::engine
