// The BPE model on small vocabularies whose results are worked out by hand (several are
// the unit tests of HF tokenizers' models/bpe, restated here).
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "toy_tokenizer.h"

namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

TEST(Bpe, MergesDownToTheWholeWord) {
  // HF test_tokenize_with_and_without_dropout: "unrelated" merges all the way.
  const json vocab = {{"u", 0}, {"n", 1},     {"r", 2},     {"e", 3},      {"l", 4},        {"a", 5},
                      {"t", 6}, {"d", 7},     {"re", 8},    {"at", 9},     {"ed", 10},      {"un", 11},
                      {"ated", 12}, {"rel", 13}, {"related", 14}, {"unrelated", 15}};
  const json merges = {"r e", "a t", "e d", "u n", "at ed", "re l", "rel ated", "un related"};
  EXPECT_EQ(toy::load(toy::bpe_json(vocab, merges)).encode("unrelated", false), Ids{15});
  // The same merges as [a, b] pairs (the newer format).
  json pairs = json::array();
  for (const auto& m : merges) {
    const std::string s = m.get<std::string>();
    pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  EXPECT_EQ(toy::load(toy::bpe_json(vocab, pairs)).encode("unrelated", false), Ids{15});
  EXPECT_EQ(toy::load(toy::bpe_json(vocab, pairs)).encode("unre", false), (Ids{11, 8}));
}

TEST(Bpe, LowerRankMergesFirstAndLeftmostOnTies) {
  const json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"aa", 5}};
  // "b c" has the better rank: a + bc, and "a bc" is not a merge.
  EXPECT_EQ(toy::load(toy::bpe_json(vocab, {"b c", "a b"})).encode("abc", false), (Ids{0, 4}));
  EXPECT_EQ(toy::load(toy::bpe_json(vocab, {"a b", "b c"})).encode("abc", false), (Ids{3, 2}));
  // Equal ranks: the leftmost pair merges first.
  EXPECT_EQ(toy::load(toy::bpe_json(vocab, {"a a"})).encode("aaa", false), (Ids{5, 0}));
  EXPECT_EQ(toy::load(toy::bpe_json(vocab, {"a a"})).encode("aaaa", false), (Ids{5, 5}));
  EXPECT_EQ(toy::load(toy::bpe_json(vocab, {"a a"})).encode("a", false), (Ids{0}));
}

TEST(Bpe, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  const json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"abc", 4}};
  json j = toy::bpe_json(vocab, {"a b"});
  EXPECT_EQ(toy::load(j).encode("abc", false), (Ids{3, 2}));  // "ab c": no merge makes abc
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(toy::load(j).encode("abc", false), (Ids{4}));
  EXPECT_EQ(toy::load(j).encode("abcab", false), (Ids{3, 2, 3}));
}

TEST(Bpe, UnknownCharactersFuseOrNot) {
  // HF test_unk_not_fused / test_unk_get_fused.
  const json vocab = {{"<unk>", 0}, {"a", 1}, {"b", 2}};
  json j = toy::bpe_json(vocab, json::array());
  j["model"]["unk_token"] = "<unk>";
  EXPECT_EQ(toy::load(j).encode("accb", false), (Ids{1, 0, 0, 2}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(toy::load(j).encode("accb", false), (Ids{1, 0, 2}));
  EXPECT_EQ(toy::load(j).encode("cc", false), (Ids{0}));
  // Without an unk token, unknown characters vanish (as in HF).
  j["model"]["unk_token"] = nullptr;
  EXPECT_EQ(toy::load(j).encode("accb", false), (Ids{1, 2}));
}

TEST(Bpe, ByteFallbackUsesByteTokens) {
  // HF test_bpe_byte_fallback, plus a two-byte character.
  const json vocab = {{"<unk>", 0}, {"<0x61>", 1}, {"<0xC3>", 2}, {"<0xA9>", 3}, {"b", 4}};
  json j = toy::bpe_json(vocab, json::array());
  j["model"]["unk_token"] = "<unk>";
  j["model"]["byte_fallback"] = true;
  j["decoder"] = {{"type", "ByteFallback"}};
  const auto tok = toy::load(j);
  EXPECT_EQ(tok.encode("c", false), (Ids{0}));
  EXPECT_EQ(tok.encode("a", false), (Ids{1}));
  EXPECT_EQ(tok.encode("\xC3\xA9", false), (Ids{2, 3}));
  // ByteFallback decoder: runs of byte tokens become their text, or U+FFFD per byte.
  EXPECT_EQ(tok.decode({2, 3, 1}), "\xC3\xA9\x61");
  EXPECT_EQ(tok.decode({2, 1}), "\xEF\xBF\xBD\xEF\xBF\xBD");  // C3 61 is one invalid run
  EXPECT_EQ(tok.decode({2, 4, 1}), "\xEF\xBF\xBD" "ba");
  EXPECT_EQ(tok.decode({3, 3}), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Bpe, ContinuingSubwordPrefix) {
  // HF test_bpe_with_continuing_subword_prefix.
  const json vocab = {{"a", 0}, {"##b", 1}, {"##c", 2}, {"ab", 3}, {"abc", 4}};
  json j = toy::bpe_json(vocab, json::array({json::array({"a", "##b"}), json::array({"ab", "##c"})}));
  j["model"]["continuing_subword_prefix"] = "##";
  EXPECT_EQ(toy::load(j).encode("ab", false), (Ids{3}));
  EXPECT_EQ(toy::load(j).encode("abc", false), (Ids{4}));
}

TEST(Bpe, LongWordsAreFast) {
  // A word of 20000 characters: the priority queue keeps this well under a second even
  // in sanitizer builds (a quadratic merge loop would not).
  const json vocab = {{"a", 0}, {"aa", 1}, {"aaaa", 2}};
  const auto tok = toy::load(toy::bpe_json(vocab, {"a a", "aa aa"}));
  const Ids ids = tok.encode(std::string(20001, 'a'), false);
  ASSERT_EQ(ids.size(), 5001u);
  for (size_t i = 0; i < 5000; ++i) ASSERT_EQ(ids[i], 2);
  EXPECT_EQ(ids.back(), 0);
}

TEST(Bpe, NoDecoderJoinsTokensWithSpaces) {
  const json vocab = {{"a", 0}, {"b", 1}};
  EXPECT_EQ(toy::load(toy::bpe_json(vocab, json::array())).decode({0, 1, 0}), "a b a");
}

}  // namespace
