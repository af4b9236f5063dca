// engine::Conversation (the chat's cache carried over turns) against the golden greedy
// continuations of HF transformers (../shared/testdata/models/*/golden.json): a first
// turn leaves part of the prompt in the cache, the second turn's prompt is the whole
// golden prompt, so the rest of it goes through decode steps, and the reply must be
// transformers' greedy continuation wherever its top-2 margin is clear of rounding.
#include "engine/conversation.h"

#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "model/testdata.h"

namespace zc::engine {
namespace {

using model::test::golden_cases;
using model::test::golden_models;

class ConversationGolden : public ::testing::TestWithParam<std::string> {};

GenerationOptions greedy(int max_tokens) {
  GenerationOptions o;
  o.max_tokens = max_tokens;
  o.sampling.temperature = 0;
  o.ignore_eos = true;
  return o;
}

// Matches reference ids until the first difference, which must sit at a step whose
// reference margin is within rounding (fp32 cache: 1e-3). Returns the matched count.
size_t matched_prefix(const std::vector<int32_t>& got, const model::test::GoldenCase& g) {
  size_t i = 0;
  for (; i < got.size() && i < g.greedy_ids.size(); ++i) {
    if (got[i] != g.greedy_ids[i]) {
      EXPECT_LE(g.greedy_margin[i], 1e-3) << "step " << i << " chose " << got[i] << ", reference "
                                          << g.greedy_ids[i];
      break;
    }
  }
  return i;
}

TEST_P(ConversationGolden, ReusedPrefixGivesTheReferenceContinuation) {
  const model::Model model = model::Model::load(model::test::models_dir() + "/" + GetParam());
  const int context = 512;
  const auto factory = [&](const kv::MethodConfig& m, int ctx) { return cpu_decoder(model, m, ctx); };
  std::mt19937 rng(7);
  size_t matched = 0, total = 0;
  for (const auto& g : golden_cases(GetParam())) {
    if (g.prompt.size() < 2) continue;
    Conversation chat(factory, kv::parse_method("fp32"), context, model.config(), nullptr);
    // Turn 1: a random proper prefix of the prompt (down to one token); no reply.
    const size_t k = std::uniform_int_distribution<size_t>(1, g.prompt.size() - 1)(rng);
    const std::vector<int32_t> first(g.prompt.begin(), g.prompt.begin() + long(k));
    const GenerationResult r1 = chat.reply(first, greedy(0));
    EXPECT_TRUE(r1.tokens.empty());
    EXPECT_EQ(chat.cached_tokens(), int(k));
    // Turn 2: the whole prompt; only its last prompt.size() - k tokens are computed.
    const int n = int(g.greedy_ids.size());
    const GenerationResult r2 = chat.reply(g.prompt, greedy(n));
    EXPECT_EQ(chat.reused_tokens(), int(k));
    EXPECT_EQ(r2.prompt_tokens, int(g.prompt.size()));
    EXPECT_EQ(r2.cached_prompt_tokens, int(k));
    ASSERT_EQ(int(r2.tokens.size()), n);
    // The cache holds the prompt and every reply token but the last (sampled, not fed).
    EXPECT_EQ(chat.cached_tokens(), int(g.prompt.size()) + n - 1);
    matched += matched_prefix(r2.tokens, g);
    total += size_t(n);
  }
  std::printf("[ measure  ] %s: greedy matched %zu of %zu tokens through a reused prefix\n", GetParam().c_str(),
              matched, total);
}

INSTANTIATE_TEST_SUITE_P(Models, ConversationGolden, ::testing::ValuesIn(golden_models()));

// A third turn that extends the second (prompt + reply + more) reuses all of it; one that
// does not (an edited earlier turn) starts over, and so does reset().
TEST(Conversation, ExtendsOrStartsOver) {
  const auto names = golden_models();
  ASSERT_FALSE(names.empty());
  const model::Model model = model::Model::load(model::test::models_dir() + "/" + names.front());
  const auto factory = [&](const kv::MethodConfig& m, int ctx) { return cpu_decoder(model, m, ctx); };
  Conversation chat(factory, kv::parse_method("zipcache"), 256, model.config(), nullptr);
  std::vector<int32_t> prompt = {1, 5, 9, 13, 2, 7, 11};
  const GenerationResult r1 = chat.reply(prompt, greedy(6));
  ASSERT_EQ(r1.tokens.size(), 6u);
  EXPECT_EQ(chat.reused_tokens(), 0);
  prompt.insert(prompt.end(), r1.tokens.begin(), r1.tokens.end());
  prompt.push_back(3);
  const GenerationResult r2 = chat.reply(prompt, greedy(4));
  EXPECT_EQ(chat.reused_tokens(), 7 + 5);  // the last reply token was never fed
  EXPECT_EQ(r2.prompt_tokens, 14);
  EXPECT_EQ(r2.cached_prompt_tokens, 12);
  prompt[2] = 10;  // an earlier turn edited
  chat.reply(prompt, greedy(1));
  EXPECT_EQ(chat.reused_tokens(), 0);
  EXPECT_EQ(chat.cached_tokens(), int(prompt.size()));
  chat.reset();
  EXPECT_EQ(chat.cached_tokens(), 0);
  chat.reply(prompt, greedy(1));
  EXPECT_EQ(chat.reused_tokens(), 0);
}

// A decoder that fails mid-reply leaves a cache the conversation cannot account for:
// it is dropped, and the next reply starts over.
TEST(Conversation, AFailedReplyStartsOver) {
  const auto names = golden_models();
  ASSERT_FALSE(names.empty());
  const model::Model model = model::Model::load(model::test::models_dir() + "/" + names.front());
  struct Failing final : Decoder {
    std::unique_ptr<Decoder> inner;
    int steps_left = 0;
    std::vector<float> prefill(std::span<const int32_t> p) override { return inner->prefill(p); }
    std::vector<float> step(int32_t id) override {
      if (steps_left-- == 0) zc::fail("device lost");
      return inner->step(id);
    }
    kv::MemoryReport memory() const override { return inner->memory(); }
  };
  int made = 0;
  const auto factory = [&](const kv::MethodConfig& m, int ctx) -> std::unique_ptr<Decoder> {
    auto d = std::make_unique<Failing>();
    d->inner = cpu_decoder(model, m, ctx);
    d->steps_left = made++ == 0 ? 2 : 100;
    return d;
  };
  Conversation chat(factory, kv::parse_method("fp16"), 64, model.config(), nullptr);
  const std::vector<int32_t> prompt = {1, 5, 9};
  EXPECT_THROW(chat.reply(prompt, greedy(6)), zc::Error);
  EXPECT_EQ(chat.cached_tokens(), 0);
  const GenerationResult r = chat.reply(prompt, greedy(6));
  EXPECT_EQ(r.tokens.size(), 6u);
  EXPECT_EQ(chat.reused_tokens(), 0);
  EXPECT_EQ(made, 2);
}

// Bad prompts are refused before the cache is touched.
TEST(Conversation, RefusesPromptsThatDoNotFit) {
  const auto names = golden_models();
  ASSERT_FALSE(names.empty());
  const model::Model model = model::Model::load(model::test::models_dir() + "/" + names.front());
  const auto factory = [&](const kv::MethodConfig& m, int ctx) { return cpu_decoder(model, m, ctx); };
  Conversation chat(factory, kv::parse_method("fp16"), 8, model.config(), nullptr);
  chat.reply(std::vector<int32_t>{1, 2, 3}, greedy(2));
  const int cached = chat.cached_tokens();
  EXPECT_THROW(chat.reply(std::vector<int32_t>(8, 1), greedy(1)), zc::Error);
  EXPECT_THROW(chat.reply(std::vector<int32_t>{}, greedy(1)), zc::Error);
  EXPECT_EQ(chat.cached_tokens(), cached);
}

}  // namespace
}  // namespace zc::engine

namespace zc::engine {
namespace {

// Text prompts: the second turn's text goes on from the first prompt and its reply as
// the reply's text spells it, so the cache is reused even where the sampled ids are not
// the tokenizer's spelling of that text; the ids it then holds are the first prompt's,
// the reply's and the new text's, and the reply is greedy decoding of exactly those
// (checked by a fresh prefill of them over the exact fp32 cache).
TEST(ConversationText, GoesOnFromTheTextTheCacheHolds) {
  const std::string dir = std::string(ZC_SOURCE_DIR) + "/models/zipcache-tiny-19m";
  const model::Model model = model::Model::load(dir);
  const tok::Tokenizer tokenizer = tok::Tokenizer::from_dir(dir);
  const auto factory = [&](const kv::MethodConfig& m, int ctx) { return cpu_decoder(model, m, ctx); };
  Conversation chat(factory, kv::parse_method("fp32"), 512, model.config(), &tokenizer);
  const std::string first = "<|begin_of_text|>Q: name a colour.\nA:";
  const GenerationResult r1 = chat.reply(first, greedy(7));
  ASSERT_EQ(r1.tokens.size(), 7u);
  const std::string second = first + r1.raw_text + "\nQ: and another?\nA:";
  const GenerationResult r2 = chat.reply(second, greedy(6));
  const auto first_ids = tokenizer.encode(first, false);
  EXPECT_EQ(chat.reused_tokens(), int(first_ids.size()) + 6);  // all but the reply's last id
  std::vector<int32_t> held = first_ids;
  held.insert(held.end(), r1.tokens.begin(), r1.tokens.end());
  const auto rest = tokenizer.encode("\nQ: and another?\nA:", false);
  held.insert(held.end(), rest.begin(), rest.end());
  EXPECT_EQ(r2.prompt_tokens, int(held.size()));
  EXPECT_EQ(r2.cached_prompt_tokens, chat.reused_tokens());
  const GenerationResult fresh = generate(model, &tokenizer, kv::parse_method("fp32"), held, greedy(6));
  EXPECT_EQ(r2.tokens, fresh.tokens);
  // A text that does not go on from it (an earlier turn edited) starts over.
  const std::string third = "<|begin_of_text|>Q: name a fruit.\nA:";
  const GenerationResult r3 = chat.reply(third, greedy(5));
  EXPECT_EQ(chat.reused_tokens(), 0);
  // One that leaves out the reply's last (unfed) id, as a template that does not write
  // the EOS after a reply does, goes on from the ids before it.
  const std::vector<int32_t> kept(r3.tokens.begin(), r3.tokens.end() - 1);
  chat.reply(third + tokenizer.decode(kept) + "\nQ: why?\nA:", greedy(2));
  EXPECT_EQ(chat.reused_tokens(), int(tokenizer.encode(third, false).size() + kept.size()));
}

}  // namespace
}  // namespace zc::engine
