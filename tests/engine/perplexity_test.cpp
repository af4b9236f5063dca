// Perplexity through the cache against a reference computed here in double from the
// logits of one exact prefill per window (a different path: no decode steps).
#include <cmath>
#include <span>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/perplexity.h"
#include "model/forward.h"

#include <fstream>
#include <sstream>

namespace {

std::vector<int32_t> golden_prompt(const std::string& model, size_t case_index) {
  std::ifstream in(std::string(ZC_TESTDATA_DIR) + "/models/" + model + "/golden.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str())["cases"][case_index]["prompt_ids"].get<std::vector<int32_t>>();
}

double reference_nll(std::span<const float> logits, int32_t target) {
  double mx = -INFINITY, sum = 0;
  for (float x : logits) mx = std::max(mx, double(x));
  for (float x : logits) sum += std::exp(double(x) - mx);
  return std::log(sum) + mx - double(logits[size_t(target)]);
}

TEST(Perplexity, MatchesOnePrefillPerWindow) {
  const auto model = zc::model::Model::load(std::string(ZC_TESTDATA_DIR) + "/models/llama3-tiny");
  const auto tokens = golden_prompt("llama3-tiny", 3);  // 300 tokens
  zc::engine::PerplexityOptions o;
  o.context = 97;  // odd: 3 windows, 9 tokens left over
  o.prefix = 40;
  const auto got = zc::engine::perplexity(model, zc::kv::parse_method("fp32"), tokens, o);
  const size_t vocab = size_t(model.config().vocab_size);
  double nll = 0;
  long count = 0;
  for (size_t w = 0; w < tokens.size() / size_t(o.context); ++w) {
    std::span<const int32_t> window(tokens.data() + w * size_t(o.context), size_t(o.context));
    auto seq = model.new_sequence(zc::kv::parse_method("fp32"));
    const auto logits = model.forward(seq, window, /*all_logits=*/true);
    for (int t = o.prefix; t < o.context; ++t, ++count)
      nll += reference_nll(std::span<const float>(logits).subspan(size_t(t - 1) * vocab, vocab), window[size_t(t)]);
  }
  EXPECT_EQ(got.windows, 3);
  EXPECT_EQ(got.scored_tokens, count);
  EXPECT_NEAR(got.perplexity(), std::exp(nll / double(count)), 1e-5 * std::exp(nll / double(count)));
  // Through a 2-bit cache the perplexity moves, and the report says how much was stored.
  const auto zip = zc::engine::perplexity(model, zc::kv::parse_method("zipcache"), tokens, o);
  EXPECT_NE(zip.perplexity(), got.perplexity());
  // 40 prefilled tokens quantized, 57 decoded ones still in the fp16 window (gap 100).
  EXPECT_GT(zip.memory.ratio(), 1.3);
}

TEST(Perplexity, BadOptions) {
  const auto model = zc::model::Model::load(std::string(ZC_TESTDATA_DIR) + "/models/llama3-tiny");
  const std::vector<int32_t> tokens(50, 3);
  zc::engine::PerplexityOptions o;
  o.context = 100;  // longer than the text
  EXPECT_THROW(zc::engine::perplexity(model, zc::kv::parse_method("fp16"), tokens, o), zc::Error);
  o.context = 10;
  o.prefix = 10;
  EXPECT_THROW(zc::engine::perplexity(model, zc::kv::parse_method("fp16"), tokens, o), zc::Error);
  o.prefix = 0;
  o.context = 1;
  EXPECT_THROW(zc::engine::perplexity(model, zc::kv::parse_method("fp16"), tokens, o), zc::Error);
}

}  // namespace
