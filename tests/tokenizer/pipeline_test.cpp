// Added tokens, normalizers, pre-tokenizers, post-processors and decoders on small
// tokenizers whose expected ids are worked out by hand from the HF rules (several cases
// are HF's own unit tests of added_vocabulary.rs, restated).
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "toy_tokenizer.h"

namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

// One token per printable ASCII character (ids 0..94 for ' '..'~'), no merges.
json ascii_vocab() {
  json v = json::object();
  for (int c = 32; c < 127; ++c) v[std::string(1, char(c))] = c - 32;
  return v;
}
Ids chars(const std::string& s) {
  Ids ids;
  for (char c : s) ids.push_back(c - 32);
  return ids;
}
Ids cat(std::initializer_list<Ids> parts) {
  Ids out;
  for (const Ids& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(AddedTokens, SingleWordOnlyMatchesWholeWords) {
  // HF test_single_word_is_correct (without its lowercasing normalizer).
  json j = toy::bpe_json(ascii_vocab(), json::array());
  j["added_tokens"].push_back(toy::added(100, "<mask>", false, false, false, true));
  const auto tok = toy::load(j);
  EXPECT_EQ(tok.encode("<mask> my name <mask> a<mask> <mask>ony <mask>", false),
            cat({{100}, chars(" my name "), {100}, chars(" a<mask> <mask>ony "), {100}}));
}

TEST(AddedTokens, LstripAndRstripSwallowUnicodeWhitespace) {
  // HF test_lstrip_unicode_space: "\t" and U+2000 count as whitespace.
  json j = toy::bpe_json(ascii_vocab(), json::array());
  j["added_tokens"].push_back(toy::added(100, "<mask>", false, true, true, true));
  const auto tok = toy::load(j);
  EXPECT_EQ(tok.encode("Hi <mask> there\t<mask>\t<mask>\xE2\x80\x80", false),
            cat({chars("Hi"), {100}, chars("there"), {100}, {100}}));
}

TEST(AddedTokens, LongestMatchWinsAndSpecialsAreSkippedOnDecode) {
  json j = toy::bpe_json(ascii_vocab(), json::array());
  j["added_tokens"].push_back(toy::added(100, "<a>", true));
  j["added_tokens"].push_back(toy::added(101, "<a><b>", false));
  const auto tok = toy::load(j);
  EXPECT_EQ(tok.encode("x<a><b><a>y", false), cat({chars("x"), {101, 100}, chars("y")}));
  EXPECT_EQ(tok.decode({101, 100, 65}, false), "<a><b> <a> a");  // no decoder: joined by spaces
  EXPECT_EQ(tok.decode({101, 100, 65}, true), "<a><b> a");
  EXPECT_TRUE(tok.is_special(100));
  EXPECT_FALSE(tok.is_special(101));
  EXPECT_EQ(tok.vocab_size(), 102);
}

TEST(AddedTokens, NormalizedTokensMatchTheNormalizedText) {
  // A normalized added token is looked for after the normalizer ran, in its own
  // normalized form: "a b" becomes "a_b" and is found in "xa by".
  json j = toy::bpe_json(ascii_vocab(), json::array());
  j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "_"}};
  j["added_tokens"].push_back(toy::added(100, "a b", false, false, false, false, true));
  const auto tok = toy::load(j);
  EXPECT_EQ(tok.encode("xa by", false), cat({chars("x"), {100}, chars("y")}));
  EXPECT_EQ(tok.encode("a  b", false), chars("a__b"));
}

TEST(Normalizers, PrependAppliesToEachStretchBetweenAddedTokens) {
  // The Llama 2 rule: each stretch of text between added tokens gets its own "▁".
  json vocab = ascii_vocab();
  vocab["\xE2\x96\x81"] = 95;
  json j = toy::bpe_json(vocab, json::array());
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers",
                      {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                       {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}}}};
  j["added_tokens"].push_back(toy::added(100, "<s>", true));
  const auto tok = toy::load(j);
  EXPECT_EQ(tok.encode("a b<s>c", false), cat({{95}, chars("a"), {95}, chars("b"), {100, 95}, chars("c")}));
  EXPECT_EQ(tok.encode("<s>", false), (Ids{100}));
  EXPECT_EQ(tok.encode("", false), Ids{});
}

TEST(Normalizers, NfcAndStrip) {
  json vocab = ascii_vocab();
  vocab["\xC3\xA9"] = 95;  // é
  json j = toy::bpe_json(vocab, json::array());
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Strip"}}}}};
  EXPECT_EQ(toy::load(j).encode(" \te\xCC\x81!\xE3\x80\x80 ", false), (Ids{95, 1}));
}

// Split behaviours on "a-b" / "a--b", observed through merges that only apply within a
// pre-token: vocab a b - a- -b --, merges "a -", "- b", "- -".
std::vector<Ids> split_results(const std::string& behavior, const json& pattern, bool invert = false) {
  const json vocab = {{"a", 0}, {"b", 1}, {"-", 2}, {"a-", 3}, {"-b", 4}, {"--", 5}};
  json j = toy::bpe_json(vocab, {"a -", "- b", "- -"});
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", pattern}, {"behavior", behavior}, {"invert", invert}};
  const auto tok = toy::load(j);
  return {tok.encode("a-b", false), tok.encode("a--b", false)};
}

TEST(PreTokenizers, SplitBehaviours) {
  const json dash = {{"String", "-"}};
  EXPECT_EQ(split_results("Removed", dash), (std::vector<Ids>{{0, 1}, {0, 1}}));
  EXPECT_EQ(split_results("Isolated", dash), (std::vector<Ids>{{0, 2, 1}, {0, 2, 2, 1}}));
  EXPECT_EQ(split_results("MergedWithPrevious", dash), (std::vector<Ids>{{3, 1}, {3, 2, 1}}));
  EXPECT_EQ(split_results("MergedWithNext", dash), (std::vector<Ids>{{0, 4}, {0, 2, 4}}));
  EXPECT_EQ(split_results("Contiguous", dash), (std::vector<Ids>{{0, 2, 1}, {0, 5, 1}}));
  // invert: the regex matches are the content, what lies between them the delimiters.
  EXPECT_EQ(split_results("Removed", {{"Regex", "[ab]"}}, true), (std::vector<Ids>{{0, 1}, {0, 1}}));
  EXPECT_EQ(split_results("Isolated", {{"Regex", "-+"}}), (std::vector<Ids>{{0, 2, 1}, {0, 5, 1}}));
}

TEST(PreTokenizers, ByteLevelWithPrefixSpaceAndGpt2Regex) {
  // "Ġ" is the byte-level character of the space; "Ċ" of "\n".
  const json vocab = {{"\xC4\xA0", 0}, {"H", 1}, {"i", 2}, {"\xC4\xA0H", 3}, {"\xC4\xA0Hi", 4}, {"\xC4\x8A", 5}};
  json j = toy::bpe_json(vocab, {"\xC4\xA0 H", "\xC4\xA0H i"});
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  j["decoder"] = {{"type", "ByteLevel"}};
  const auto tok = toy::load(j);
  EXPECT_EQ(tok.encode("Hi", false), (Ids{4}));
  EXPECT_EQ(tok.encode("Hi Hi\n", false), (Ids{4, 4, 5}));
  EXPECT_EQ(tok.decode({4, 4, 5}), " Hi Hi\n");
}

TEST(PreTokenizers, DigitsAloneOrInRuns) {
  // HF's digits.rs tests: "Hey 123 friend!" -> "Hey ", "123", " friend!" (runs) or
  // "Hey ", "1", "2", "3", " friend!" (individual_digits); seen through merges that
  // only act inside a pre-token. U+0664 (Arabic-Indic four) is numeric too.
  json vocab = ascii_vocab();
  vocab["12"] = 95;
  vocab["123"] = 96;
  vocab["y "] = 97;
  vocab["\xD9\xA4"] = 98;
  json j = toy::bpe_json(vocab, json::array({"1 2", "12 3", json::array({"y", " "})}));  // (" " needs a pair)
  j["pre_tokenizer"] = {{"type", "Digits"}, {"individual_digits", false}};
  EXPECT_EQ(toy::load(j).encode("Hey 123 friend!", false), cat({chars("He"), {97, 96}, chars(" friend!")}));
  EXPECT_EQ(toy::load(j).encode("a\xD9\xA4" "1", false), cat({chars("a"), {98}, chars("1")}));
  j["pre_tokenizer"]["individual_digits"] = true;
  EXPECT_EQ(toy::load(j).encode("Hey 123 friend!", false), cat({chars("He"), {97}, chars("123 friend!")}));
}

TEST(PreTokenizers, MetaspaceFirstPrependsOnlyAtTheStart) {
  const std::string m = "\xE2\x96\x81";  // ▁
  const json vocab = {{m, 0}, {"h", 1}, {"i", 2}, {m + "h", 3}, {m + "hi", 4}};
  json j = toy::bpe_json(vocab, {m + " h", m + "h i"});
  j["added_tokens"].push_back(toy::added(10, "<s>", true));
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", m}, {"prepend_scheme", "first"}, {"split", false}};
  j["decoder"] = {{"type", "Metaspace"}, {"replacement", m}, {"prepend_scheme", "first"}, {"split", false}};
  EXPECT_EQ(toy::load(j).encode("hi<s>hi hi", false), (Ids{4, 10, 1, 2, 4}));
  EXPECT_EQ(toy::load(j).decode({4, 4, 1}), "hi hih");
  j["pre_tokenizer"]["prepend_scheme"] = "always";
  j["pre_tokenizer"]["split"] = true;
  EXPECT_EQ(toy::load(j).encode("hi<s>hi hi", false), (Ids{4, 10, 4, 4}));
}

TEST(PostProcessors, TemplateAndConfigBos) {
  json j = toy::bpe_json(ascii_vocab(), json::array());
  j["added_tokens"].push_back(toy::added(100, "<s>", true));
  j["added_tokens"].push_back(toy::added(101, "</s>", true));
  j["post_processor"] = json::parse(R"({"type": "Sequence", "processors": [
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
      {"type": "TemplateProcessing",
       "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
       "pair": [],
       "special_tokens": {"<s>": {"id": "<s>", "ids": [100], "tokens": ["<s>"]}}}]})");
  const auto dir = toy::temp_dir();
  const std::string path = toy::write(dir / "tokenizer.json", j.dump());
  const auto plain = zc::tok::Tokenizer::from_files(path);
  EXPECT_EQ(plain.encode("a", true), (Ids{100, 65}));
  EXPECT_EQ(plain.encode("a", false), (Ids{65}));
  EXPECT_EQ(plain.bos_id(), 100);  // from the template, without tokenizer_config.json
  // add_eos_token in tokenizer_config.json appends the EOS; the template's BOS is not doubled.
  const std::string config = toy::write(dir / "tokenizer_config.json",
                                        R"({"bos_token": {"content": "<s>"}, "eos_token": "</s>",
                                            "add_bos_token": true, "add_eos_token": true})");
  toy::write(dir / "generation_config.json", R"({"eos_token_id": [101, 65]})");
  const auto configured = zc::tok::Tokenizer::from_dir(dir.string());
  EXPECT_EQ(configured.encode("a", true), (Ids{100, 65, 101}));
  EXPECT_EQ(configured.encode("a", false), (Ids{65}));
  EXPECT_EQ(configured.eos_ids(), (Ids{101, 65}));
}

}  // namespace
