// Properties on random input, for the three golden tokenizers: decode(encode(text)) gives
// the text back (byte-level BPE and byte fallback are lossless); streaming random ids
// gives exactly the full decode with valid UTF-8 at every step; concurrent encodes agree
// with HF's ids.
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/rng.h"
#include "golden_models.h"
#include "tokenizer/utf8.h"

namespace {

using golden::model;
using zc::tok::StreamDecoder;

// Pieces of random text: ASCII, whitespace runs, Latin-1, CJK, Cyrillic, emoji (one and
// multi-code-point), digits. All NFC-stable (Qwen normalizes to NFC), no "▁" (Llama 2
// reads it as a space) and no '<' (no accidental special tokens).
const std::vector<std::string> kAlphabet = {
    "a", "Z", "q", "the", " ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", ".", ",", "!", "'s", "'", "\"", "-", "_",
    "0", "7", "123", "\xC3\xA9", "\xC3\xBC", "\xC3\x9F", "\xCE\xA9", "\xD0\x96", "\xE6\x97\xA5", "\xE6\x9C\xAC",
    "\xED\x95\x9C", "\xF0\x9F\x98\x80", "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", "\xE2\x80\x99", "\xC2\xA0", "\xE2\x82\xAC",
    "#", "{", "}", "(", ")", "/", "\\", "=", "+", "*", "|", "~", "`", "@", "$", "%", "^", "&", ">"};

std::string random_text(zc::Rng& rng, int pieces) {
  std::string s;
  for (int i = 0; i < pieces; ++i) s += kAlphabet[static_cast<size_t>(rng.integer(0, int64_t(kAlphabet.size()) - 1))];
  return s;
}

class Random : public ::testing::TestWithParam<std::string> {};

TEST_P(Random, DecodeOfEncodeGivesTheText) {
  const auto& tok = *model(GetParam()).tok;
  zc::Rng rng(1234);
  for (int trial = 0; trial < 300; ++trial) {
    const int pieces = trial < 60 ? 1 + trial % 3 : static_cast<int>(rng.integer(1, 120));  // length 1 included
    const std::string text = random_text(rng, pieces);
    const auto ids = tok.encode(text, false);
    EXPECT_EQ(tok.decode(ids, false), text) << "trial " << trial;
    EXPECT_EQ(tok.decode(tok.encode(text, true), true), text) << "trial " << trial;
  }
}

TEST_P(Random, StreamingRandomIdsEqualsFullDecode) {
  const auto& tok = *model(GetParam()).tok;
  zc::Rng rng(99);
  for (int trial = 0; trial < 300; ++trial) {
    const int n = static_cast<int>(rng.integer(1, 40));
    std::vector<int32_t> ids;
    for (int i = 0; i < n; ++i) {
      // Mostly low ids (byte tokens, pieces of characters), some of any id, some specials.
      const double u = rng.uniform();
      ids.push_back(static_cast<int32_t>(u < 0.5   ? rng.integer(0, 300)
                                         : u < 0.9 ? rng.integer(0, tok.vocab_size() - 1)
                                                   : rng.integer(tok.vocab_size() - 20, tok.vocab_size() - 1)));
    }
    for (bool skip : {false, true}) {
      StreamDecoder stream(tok, skip);
      std::string all;
      for (int32_t id : ids) {
        const std::string chunk = stream.step(id);
        ASSERT_TRUE(zc::tok::utf8_valid(chunk)) << "trial " << trial;
        all += chunk;
      }
      all += stream.flush();
      EXPECT_EQ(all, tok.decode(ids, skip))
          << "trial " << trial << " skip " << skip << " ids " << ::testing::PrintToString(ids);
    }
  }
}

TEST_P(Random, ConcurrentEncodesMatchHF) {
  const auto& m = model(GetParam());
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m, &mismatches, t] {
      for (int round = 0; round < 3; ++round) {
        for (const auto& c : m.cases) {
          mismatches[static_cast<size_t>(t)] += m.tok->encode(c.text, true) != c.ids_with_special;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int count : mismatches) EXPECT_EQ(count, 0);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, Random, ::testing::Values("llama2", "llama3", "qwen3"));

}  // namespace
