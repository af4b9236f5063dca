// The tokenizers of Llama 2 (SentencePiece-style BPE, byte fallback), Llama 3 (byte-level
// BPE, ignore_merges) and Qwen3 (byte-level BPE, NFC) against the ids and text of HF
// tokenizers 0.23 (testdata/tokenizers/<model>/vectors.json, README.md there).
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "golden_models.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace {

using golden::Case;
using golden::Model;
using golden::model;
using zc::tok::StreamDecoder;
using zc::tok::Tokenizer;

class Golden : public ::testing::TestWithParam<std::string> {
 protected:
  const Model& m() const { return model(GetParam()); }
};

TEST_P(Golden, LoadsAndHasCases) {
  EXPECT_EQ(m().cases.size(), 32u);
  std::printf("[ info ] %s: tokenizer.json loaded in %.0f ms, vocab_size %d\n", GetParam().c_str(), m().load_ms,
              m().tok->vocab_size());
}

TEST_P(Golden, EncodeWithoutSpecialTokensMatchesHF) {
  for (const Case& c : m().cases) EXPECT_EQ(m().tok->encode(c.text, false), c.ids) << "text: " << c.text;
}

TEST_P(Golden, EncodeWithSpecialTokensMatchesHF) {
  for (const Case& c : m().cases) EXPECT_EQ(m().tok->encode(c.text, true), c.ids_with_special) << "text: " << c.text;
}

TEST_P(Golden, DecodeMatchesHF) {
  for (const Case& c : m().cases) EXPECT_EQ(m().tok->decode(c.ids, false), c.decoded) << "text: " << c.text;
}

// HF's decoded text is decode(ids, skip_special_tokens=False). Where the text itself holds
// no special token, skipping the specials of ids_with_special (the BOS) gives it too.
TEST_P(Golden, DecodeSkippingSpecialTokensMatchesHF) {
  int checked = 0;
  for (const Case& c : m().cases) {
    bool text_has_special = false;
    for (int32_t id : c.ids) text_has_special |= m().tok->is_special(id);
    if (text_has_special) continue;
    EXPECT_EQ(m().tok->decode(c.ids_with_special, true), c.decoded) << "text: " << c.text;
    ++checked;
  }
  EXPECT_GE(checked, 30);
}

// Streams ids one at a time; every chunk must be valid UTF-8 and their concatenation
// (plus flush) the expected text.
void expect_stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip, const std::string& expected,
                   const std::string& label) {
  StreamDecoder stream(tok, skip);
  std::string all;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string chunk = stream.step(ids[i]);
    EXPECT_TRUE(zc::tok::utf8_valid(chunk)) << label << " step " << i;
    all += chunk;
  }
  const std::string rest = stream.flush();
  EXPECT_TRUE(zc::tok::utf8_valid(rest)) << label;
  all += rest;
  EXPECT_EQ(all, expected) << label;
}

TEST_P(Golden, StreamingDecodeEqualsHFText) {
  for (const Case& c : m().cases) {
    expect_stream(*m().tok, c.ids, false, c.decoded, "text: " + c.text);
    bool text_has_special = false;
    for (int32_t id : c.ids) text_has_special |= m().tok->is_special(id);
    if (!text_has_special) expect_stream(*m().tok, c.ids_with_special, true, c.decoded, "skip, text: " + c.text);
  }
}

TEST_P(Golden, StreamingDecodeOfAllCasesConcatenated) {
  // One long stream through every case, specials included, both skip settings; the
  // reference is the full decode (itself checked against HF above).
  std::vector<int32_t> all;
  for (const Case& c : m().cases) all.insert(all.end(), c.ids_with_special.begin(), c.ids_with_special.end());
  for (bool skip : {false, true}) expect_stream(*m().tok, all, skip, m().tok->decode(all, skip), "all cases");
}

TEST_P(Golden, StreamingHoldsBackIncompleteCharacters) {
  // The emoji case splits characters over several ids (byte tokens in Llama 2, partial
  // byte-level tokens in Llama 3 / Qwen3): a chunk is never a partial sequence, and some
  // step must have held text back.
  for (const Case& c : m().cases) {
    if (c.text.rfind("Emoji", 0) != 0) continue;
    StreamDecoder stream(*m().tok);
    int held = 0;
    for (int32_t id : c.ids) {
      const std::string chunk = stream.step(id);
      EXPECT_TRUE(zc::tok::utf8_valid(chunk));
      EXPECT_EQ(chunk.find("\xEF\xBF\xBD"), std::string::npos) << "a replacement character was emitted";
      held += chunk.empty();
    }
    EXPECT_GT(held, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, Golden, ::testing::Values("llama2", "llama3", "qwen3"));

// Special ids, as tokenizer_config.json and the added tokens of each file state them.
TEST(GoldenSpecials, BosEosAndVocabSize) {
  const Tokenizer& l2 = *model("llama2").tok;
  EXPECT_EQ(l2.bos_id(), 1);
  EXPECT_EQ(l2.eos_ids(), std::vector<int32_t>{2});
  EXPECT_EQ(l2.vocab_size(), 32000);
  EXPECT_EQ(l2.id_to_token(13), "<0x0A>");
  EXPECT_EQ(l2.token_to_id("<unk>"), 0);

  const Tokenizer& l3 = *model("llama3").tok;
  EXPECT_EQ(l3.bos_id(), 128000);
  EXPECT_EQ(l3.eos_ids(), std::vector<int32_t>{128001});
  EXPECT_EQ(l3.vocab_size(), 128256);
  EXPECT_EQ(l3.token_to_id("<|eot_id|>"), 128009);
  EXPECT_EQ(l3.id_to_token(128000), "<|begin_of_text|>");
  EXPECT_TRUE(l3.is_special(128009));
  EXPECT_FALSE(l3.is_special(9906));

  const Tokenizer& q3 = *model("qwen3").tok;
  EXPECT_EQ(q3.bos_id(), -1);
  EXPECT_EQ(q3.eos_ids(), std::vector<int32_t>{151645});
  EXPECT_EQ(q3.vocab_size(), 151669);
  EXPECT_EQ(q3.token_to_id("<think>"), 151667);
  EXPECT_FALSE(q3.is_special(151667));  // <think> is an added token, not a special one
  EXPECT_FALSE(q3.token_to_id("no such token").has_value());
  EXPECT_FALSE(q3.id_to_token(151669).has_value());
  EXPECT_FALSE(q3.id_to_token(-1).has_value());
}

}  // namespace
