// UTF-8 helpers and the PCRE2 regex layer, against hand-worked references: the Unicode
// Standard's U+FFFD example, Rust/Oniguruma find_iter semantics, the Llama 3 pattern.
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace {

using namespace zc::tok;
const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8, LossyReplacesMaximalSubparts) {
  // Unicode Standard, ch. 3 "U+FFFD Substitution of Maximal Subparts" (Table 3-11):
  // 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 -> a FFFD FFFD FFFD b FFFD c FFFD FFFD d
  const std::string in = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  EXPECT_EQ(utf8_lossy(in), "a" + kFffd + kFffd + kFffd + "b" + kFffd + "c" + kFffd + kFffd + "d");
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98"), kFffd);                           // truncated emoji: one
  EXPECT_EQ(utf8_lossy("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");          // complete emoji
  EXPECT_EQ(utf8_lossy("\xC0\x80"), kFffd + kFffd);                       // overlong lead
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), kFffd + kFffd + kFffd);           // surrogate
  EXPECT_EQ(utf8_lossy("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
  EXPECT_EQ(utf8_lossy("\xE2\x82\xAC\x80"), "\xE2\x82\xAC" + kFffd);
  EXPECT_EQ(utf8_lossy(""), "");
}

TEST(Utf8, ValidationFindsTheFirstBadByte) {
  EXPECT_TRUE(utf8_valid("héllo 日本 😀"));
  EXPECT_EQ(utf8_invalid_at("ab\xC3"), 2u);
  EXPECT_EQ(utf8_invalid_at("a\xE2\x28\xA1"), 1u);
  EXPECT_EQ(utf8_invalid_at("\x80"), 0u);
  EXPECT_TRUE(utf8_valid(std::string("a\0b", 3)));
}

TEST(Utf8, CodePointsRoundTrip) {
  for (char32_t cp : {char32_t(0x41), char32_t(0xE9), char32_t(0x65E5), char32_t(0x1F600), char32_t(0x10FFFF)}) {
    std::string s = "x";
    utf8_append(s, cp);
    size_t i = 1;
    EXPECT_EQ(utf8_next(s, i), cp);
    EXPECT_EQ(i, s.size());
    size_t start = 0;
    EXPECT_EQ(utf8_prev(s, s.size(), start), cp);
    EXPECT_EQ(start, 1u);
  }
}

TEST(Utf8, UnicodeClasses) {
  for (char32_t cp : {0x20, 0x09, 0x0A, 0x0D, 0x85, 0xA0, 0x3000, 0x2028}) {
    EXPECT_TRUE(is_white_space(cp)) << uint32_t(cp);
  }
  for (char32_t cp : {0x41, 0x200B, 0x180E, 0x5F}) EXPECT_FALSE(is_white_space(cp)) << uint32_t(cp);
  for (char32_t cp : {0x61, 0x5F, 0x39, 0xE9, 0x65E5, 0x0301, 0x0664}) EXPECT_TRUE(is_word_char(cp)) << uint32_t(cp);
  for (char32_t cp : {0x2D, 0x2C, 0x20, 0x1F600}) EXPECT_FALSE(is_word_char(cp)) << uint32_t(cp);
}

TEST(Utf8, NormalizationForms) {
  EXPECT_EQ(unicode_normalize("e\xCC\x81", NormForm::NFC), "\xC3\xA9");     // e + U+0301 -> é
  EXPECT_EQ(unicode_normalize("\xC3\xA9", NormForm::NFD), "e\xCC\x81");
  EXPECT_EQ(unicode_normalize("\xEF\xAC\x81", NormForm::NFKC), "fi");       // U+FB01 ligature
  EXPECT_EQ(unicode_normalize("\xEF\xAC\x81", NormForm::NFC), "\xEF\xAC\x81");
  EXPECT_EQ(unicode_normalize("", NormForm::NFC), "");
}

std::vector<std::string> matches(const Regex& re, const std::string& s) {
  std::vector<std::pair<size_t, size_t>> spans;
  re.find_all(s, spans);
  std::vector<std::string> out;
  for (auto [a, b] : spans) out.push_back(s.substr(a, b - a));
  return out;
}

const char* const kLlama3 =  // the Split regex of Llama 3's tokenizer.json
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|)"
    R"(\s*[\r\n]+|\s+(?!\S)|\s+)";

TEST(Regex, OnigurumaSpaceClassIncludesNel) {
  EXPECT_EQ(onig_to_pcre2(kLlama3),
            R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\x{85}\p{L}\p{N}]+[\r\n]*|)"
            R"([\s\x{85}]*[\r\n]+|[\s\x{85}]+(?![^\s\x{85}])|[\s\x{85}]+)");
  EXPECT_EQ(onig_to_pcre2(R"([]\s]\\s[:alpha:])"), R"([]\s\x{85}]\\s[:alpha:])");
  Regex re(R"(\s+)", "test");
  EXPECT_EQ(matches(re, "a\xC2\x85\xC2\x85z"), std::vector<std::string>{"\xC2\x85\xC2\x85"});
}

TEST(Regex, Llama3PatternSplitsAsHF) {
  Regex re(kLlama3, "test");
  // Worked by hand: \s+(?!\S) leaves the last space of a run to the next word; digits
  // group by three; "\n\n " keeps the newlines apart from the space before "y".
  EXPECT_EQ(matches(re, "Hello world  123456 x\n\n y"),
            (std::vector<std::string>{"Hello", " world", " ", " ", "123", "456", " x", "\n\n", " y"}));
  EXPECT_EQ(matches(re, "HE'S here"), (std::vector<std::string>{"HE", "'S", " here"}));
  EXPECT_EQ(matches(re, "日本語 ok!!"), (std::vector<std::string>{"日本語", " ok", "!!"}));
  EXPECT_TRUE(matches(re, "").empty());
}

TEST(Regex, EmptyMatchesFollowRustFindIter) {
  // Rust regex / onig find_iter on "bab" with a*: 0..0, 1..2, 3..3 (no empty match right
  // after the previous match).
  Regex re("a*", "test");
  std::vector<std::pair<size_t, size_t>> spans;
  re.find_all("bab", spans);
  EXPECT_EQ(spans, (std::vector<std::pair<size_t, size_t>>{{0, 0}, {1, 2}, {3, 3}}));
}

TEST(Regex, LongWhitespaceRunDoesNotFail) {
  Regex re(kLlama3, "test");
  const std::string s = "x" + std::string(200000, ' ') + "y";
  const auto m = matches(re, s);
  ASSERT_EQ(m.size(), 3u);  // "x", the run minus its last space, " y"
  EXPECT_EQ(m[1].size(), 199999u);
  EXPECT_EQ(m[2], " y");
}

TEST(Regex, BadPatternNamesWhere) {
  try {
    Regex re("(ab", "file.json: pre_tokenizer.pattern");
    FAIL() << "no error";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("file.json: pre_tokenizer.pattern"), std::string::npos) << e.what();
  }
}

}  // namespace
