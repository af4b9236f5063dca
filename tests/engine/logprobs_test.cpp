// Log probabilities of generated tokens (engine::token_logprob, GenerationOptions::
// logprobs): against a double-precision log-softmax written here on random logits, and
// against HF transformers' fp32 logits of the golden models (the first generated
// token's log probability is the log-softmax of the prompt's last logits).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "engine/generator.h"
#include "model/testdata.h"

namespace zc::engine {
namespace {

std::vector<double> log_softmax(const std::vector<float>& x) {
  double mx = -INFINITY, s = 0;
  for (float v : x) mx = std::max(mx, double(v));
  for (float v : x) s += std::exp(double(v) - mx);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = double(x[i]) - mx - std::log(s);
  return out;
}

TEST(TokenLogprob, MatchesLogSoftmaxWithTopInRankOrder) {
  zc::Rng rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    const size_t n = size_t(rng.integer(1, trial < 150 ? 60 : 5000));
    std::vector<float> logits(n);
    for (auto& v : logits) v = trial % 3 == 0 ? std::round(rng.normal(0.0f, 2.0f)) : rng.normal(0.0f, 3.0f);
    const int32_t id = int32_t(rng.integer(0, int64_t(n) - 1));
    const int top = int(rng.integer(0, kMaxTopLogprobs));
    const TokenLogprob got = token_logprob(logits, id, top);
    const std::vector<double> want = log_softmax(logits);
    EXPECT_EQ(got.id, id);
    EXPECT_NEAR(got.logprob, want[size_t(id)], 1e-12) << "trial " << trial;
    // The reference ranking: logit descending, the lower id first on ties.
    std::vector<int32_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)]; });
    ASSERT_EQ(got.top.size(), std::min(n, size_t(top))) << "trial " << trial;
    for (size_t i = 0; i < got.top.size(); ++i) {
      EXPECT_EQ(got.top[i].first, order[i]) << "trial " << trial << " rank " << i;
      EXPECT_NEAR(got.top[i].second, want[size_t(order[i])], 1e-12);
    }
  }
  const std::vector<float> some = {0.0f, 1.0f};
  EXPECT_THROW(token_logprob(some, 2, 0), zc::Error);
  EXPECT_THROW(token_logprob(some, 0, kMaxTopLogprobs + 1), zc::Error);
  EXPECT_THROW(token_logprob(std::vector<float>{0.0f, NAN}, 0, 1), zc::Error);
}

class LogprobsGolden : public ::testing::TestWithParam<std::string> {};

// The first generated token of each golden prompt, greedy: its entry is transformers'
// log-softmax at the prompt's last position (the forward pass matches those logits to
// ~1e-4 relative, model/golden_test.cpp), its alternatives the reference's best tokens
// wherever their gaps are clear of that; and every later token has its own entry.
TEST_P(LogprobsGolden, FirstTokenIsTheReferenceLogSoftmax) {
  const model::Model model = model::Model::load(model::test::models_dir() + "/" + GetParam());
  for (const auto& g : model::test::golden_cases(GetParam())) {
    GenerationOptions o;
    o.max_tokens = 4;
    o.sampling.temperature = 0;
    o.ignore_eos = true;
    o.logprobs = 5;
    std::vector<TokenLogprob> streamed;
    o.on_logprob = [&](const TokenLogprob& e) { streamed.push_back(e); };
    const GenerationResult r = generate(model, nullptr, kv::parse_method("fp32"), g.prompt, o);
    ASSERT_EQ(r.logprobs.size(), r.tokens.size());
    ASSERT_EQ(streamed.size(), r.tokens.size());
    for (size_t i = 0; i < r.tokens.size(); ++i) {
      EXPECT_EQ(r.logprobs[i].id, r.tokens[i]);
      EXPECT_EQ(streamed[i].logprob, r.logprobs[i].logprob);
      EXPECT_LE(r.logprobs[i].logprob, 0.0);
      ASSERT_EQ(r.logprobs[i].top.size(), 5u);
      EXPECT_EQ(r.logprobs[i].top[0].first, r.tokens[i]);  // greedy: the best token
    }
    const std::vector<double> want = log_softmax(g.last_logits);
    const TokenLogprob& first = r.logprobs[0];
    const double scale = std::max(1.0, std::abs(want[size_t(first.id)]));
    EXPECT_NEAR(first.logprob, want[size_t(first.id)], 2e-3 * scale) << GetParam();
    std::vector<int32_t> order(want.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return want[size_t(a)] > want[size_t(b)]; });
    for (size_t k = 0; k < first.top.size(); ++k) {
      EXPECT_NEAR(first.top[k].second, want[size_t(first.top[k].first)], 2e-3 * scale);
      const bool clear = (k == 0 || want[size_t(order[k - 1])] - want[size_t(order[k])] > 1e-2) &&
                         want[size_t(order[k])] - want[size_t(order[k + 1])] > 1e-2;
      if (clear) {
        EXPECT_EQ(first.top[k].first, order[k]) << GetParam() << " rank " << k;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, LogprobsGolden, ::testing::ValuesIn(model::test::golden_models()));

}  // namespace
}  // namespace zc::engine
