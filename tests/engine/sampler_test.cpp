#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/sampling_reference.h"
#include "core/error.h"
#include "engine/sampler.h"

namespace {

using zc::engine::argmax_or_nan;
using zc::engine::check_picked;
using zc::engine::DrawSpec;
using zc::engine::pick_on_host;
using zc::engine::TokenPick;
using zc::engine::Sampler;
using zc::engine::SamplingParams;

// Independent reference: the HF logits-processor chain written out plainly on a
// small vocabulary, filtering by masks rather than by a sorted prefix.
std::vector<double> reference(std::vector<double> x, const SamplingParams& sp,
                              const std::vector<int32_t>& history) {
  const size_t n = x.size();
  if (sp.repeat_penalty != 1.0f) {
    std::vector<bool> done(n, false);
    for (int32_t t : history) {
      if (done[size_t(t)]) continue;
      done[size_t(t)] = true;
      x[size_t(t)] = x[size_t(t)] > 0 ? x[size_t(t)] / sp.repeat_penalty : x[size_t(t)] * sp.repeat_penalty;
    }
  }
  for (auto& v : x) v /= sp.temperature;
  std::vector<bool> alive(n, true);
  if (sp.top_k > 0) {
    for (size_t i = 0; i < n; ++i) {
      size_t better = 0;  // tokens strictly better, or equal with a lower id
      for (size_t j = 0; j < n; ++j) better += x[j] > x[i] || (x[j] == x[i] && j < i);
      if (better >= size_t(sp.top_k)) alive[i] = false;
    }
  }
  auto softmax = [&] {
    double mx = -INFINITY, s = 0;
    for (size_t i = 0; i < n; ++i)
      if (alive[i]) mx = std::max(mx, x[i]);
    std::vector<double> p(n, 0);
    for (size_t i = 0; i < n; ++i)
      if (alive[i]) s += p[i] = std::exp(x[i] - mx);
    for (auto& v : p) v /= s;
    return p;
  };
  auto p = softmax();
  if (sp.top_p < 1) {
    // A token stays if the mass of tokens ranked strictly before it is below top_p.
    std::vector<bool> keep(n, false);
    for (size_t i = 0; i < n; ++i) {
      if (!alive[i]) continue;
      double before = 0;
      for (size_t j = 0; j < n; ++j)
        if (alive[j] && (p[j] > p[i] || (p[j] == p[i] && j < i))) before += p[j];
      keep[i] = before < sp.top_p;
    }
    alive = keep;
    p = softmax();
  }
  if (sp.min_p > 0) {
    const double top = *std::max_element(p.begin(), p.end());
    for (size_t i = 0; i < n; ++i) alive[i] = alive[i] && p[i] >= sp.min_p * top;
    p = softmax();
  }
  return p;
}

std::vector<float> random_logits(uint64_t seed, size_t n) {
  zc::Rng rng(seed);
  std::vector<float> x(n);
  for (auto& v : x) v = rng.normal(0.0f, 2.0f);
  return x;
}

TEST(Sampler, DistributionMatchesReference) {
  zc::Rng rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    SamplingParams sp;
    sp.temperature = float(0.2 + 1.5 * rng.uniform());
    sp.top_k = int(rng.integer(0, 12));
    sp.top_p = rng.uniform() < 0.3 ? 1.0f : float(0.3 + 0.7 * rng.uniform());
    sp.min_p = rng.uniform() < 0.3 ? 0.0f : float(0.3 * rng.uniform());
    sp.repeat_penalty = rng.uniform() < 0.5 ? 1.0f : float(1.0 + rng.uniform());
    sp.repeat_last_n = -1;
    const size_t n = size_t(rng.integer(1, 40));
    const auto logits = random_logits(uint64_t(trial), n);
    std::vector<int32_t> history;
    for (int i = 0; i < 6; ++i) history.push_back(int32_t(rng.integer(0, int64_t(n) - 1)));
    const auto got = Sampler(sp).distribution(logits, history);
    const auto want = reference(std::vector<double>(logits.begin(), logits.end()), sp, history);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < n; ++i) EXPECT_NEAR(got[i], want[i], 1e-9) << "trial " << trial << " token " << i;
  }
}

// A second reference for large vocabularies (the one above is quadratic): the whole
// vocabulary sorted (tests/common/sampling_reference.h).
std::vector<double> sorted_reference(const std::vector<float>& logits, const SamplingParams& sp) {
  return zc_test::hf_sampling_reference(logits, sp.temperature, sp.top_k, sp.top_p, sp.min_p);
}

std::vector<float> shaped_logits(uint64_t seed, size_t n, int shape) {
  zc::Rng rng(seed);
  return zc_test::shaped_logits(rng, n, shape);
}

// The draw written out: the walk over the tokens in id order to the uniform u; -1 when
// rounding leaves u past the last token.
int32_t reference_walk(const std::vector<double>& p, double u) {
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    if (u < p[i]) return int32_t(i);
    u -= p[i];
  }
  return -1;
}
// The seeded draw: the walk with the seed's first uniform.
int32_t reference_draw(const std::vector<double>& p, uint64_t seed) { return reference_walk(p, zc::Rng(seed).uniform()); }

TEST(Sampler, LargeVocabulariesMatchSortedReference) {
  zc::Rng rng(11);
  int trials = 0;
  for (const size_t n : {size_t(1), size_t(2), size_t(7), size_t(1000), size_t(32000), size_t(128256)}) {
    for (int shape = 0; shape < 4; ++shape) {
      for (int combo = 0; combo < (n > 32000 ? 3 : 6); ++combo) {
        SamplingParams sp;
        sp.temperature = float(0.3 + 1.2 * rng.uniform());
        const int64_t ks[] = {0, 1, 40, int64_t(n), int64_t(n) + 5};
        sp.top_k = int(ks[rng.integer(0, 4)]);
        const float ps[] = {1.0f, 0.5f, 0.9f, 0.999f};
        sp.top_p = ps[rng.integer(0, 3)];
        sp.min_p = rng.uniform() < 0.5 ? 0.0f : float(0.2 * rng.uniform());
        const auto logits = shaped_logits(uint64_t(trials), n, shape);
        const auto want = sorted_reference(logits, sp);
        const auto got = Sampler(sp).distribution(logits, {});
        ASSERT_EQ(got.size(), n);
        // Sums of up to 128256 terms in another order differ by ~1e-12 relative; a
        // wrong cut or tie rule moves whole probabilities.
        size_t wrong = 0, first = n;
        for (size_t i = 0; i < n; ++i) {
          if (std::abs(got[i] - want[i]) > 1e-9 * want[i] || (got[i] == 0) != (want[i] == 0)) {
            if (wrong++ == 0) first = i;
          }
        }
        EXPECT_EQ(wrong, 0u) << "n " << n << " shape " << shape << " T " << sp.temperature << " top_k " << sp.top_k
                             << " top_p " << sp.top_p << " min_p " << sp.min_p << ": first at token " << first
                             << " (" << (first < n ? got[first] : 0) << " vs " << (first < n ? want[first] : 0) << ")";
        // A seeded draw walks the kept tokens in id order with the seed's first uniform.
        sp.seed = uint64_t(1000 + trials);
        const int32_t expect = reference_draw(want, sp.seed);
        if (expect >= 0) {
          EXPECT_EQ(Sampler(sp).sample(logits, {}), expect) << "n " << n << " shape " << shape;
        }
        // The same draw as a device's pick with the uniform given (pick_on_host), and a
        // drawable sampler's next_draw hands out that uniform and the filters.
        Sampler drawing(sp);
        ASSERT_TRUE(drawing.drawable());
        const DrawSpec d = drawing.next_draw();
        EXPECT_EQ(d.u, zc::Rng(sp.seed).uniform());
        EXPECT_EQ(d.temperature, sp.temperature);
        EXPECT_EQ(d.top_k, sp.top_k);
        EXPECT_EQ(d.top_p, sp.top_p);
        EXPECT_EQ(d.min_p, sp.min_p);
        for (const double u : {d.u, 0.0, 0.5, 0.999999}) {
          const int32_t walk = reference_walk(want, u);
          if (walk < 0) continue;
          const TokenPick pick{TokenPick::Kind::kDraw, DrawSpec{d.temperature, d.top_k, d.top_p, d.min_p, u}};
          EXPECT_EQ(pick_on_host(logits, pick), walk) << "n " << n << " shape " << shape << " u " << u;
        }
        ++trials;
      }
    }
  }
}

// With no filter (the OpenAI API's default) every token is kept; the seeded draw skips
// whole chunks of the vocabulary by their sums. Many seeds over vocabularies of one to
// nine chunks (16384 tokens each), -inf tokens included, against the walk in id order
// over the double softmax written here.
TEST(Sampler, UnfilteredDrawsMatchTheWalkOverTheSoftmax) {
  for (const size_t n : {size_t(3), size_t(16384), size_t(16385), size_t(40000), size_t(128256), size_t(147457)}) {
    const auto logits = shaped_logits(uint64_t(n), n, n % 2 ? 3 : 0);
    SamplingParams sp;
    sp.temperature = 0.9f;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    double mx = -INFINITY, sum = 0;
    for (const float v : logits) mx = std::max(mx, double(v) / sp.temperature);
    std::vector<double> p(n);
    for (size_t i = 0; i < n; ++i) sum += p[i] = std::exp(double(logits[i]) / sp.temperature - mx);
    for (double& v : p) v /= sum;
    const auto got = Sampler(sp).distribution(logits, {});
    for (size_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], p[i], 1e-9 * p[i]) << "n " << n << " token " << i;
    for (uint64_t seed = 1; seed <= 150; ++seed) {
      sp.seed = seed * 7919;
      const int32_t want = reference_draw(p, sp.seed);
      ASSERT_GE(want, 0);
      EXPECT_EQ(Sampler(sp).sample(logits, {}), want) << "n " << n << " seed " << sp.seed;
    }
  }
}

// OpenAI's additive penalties, simulated in the test: each greedy step takes the argmax
// of logit - count * frequency - (count > 0) * presence over the tokens drawn before it
// (the first index on ties), and a sampled step's distribution is the reference's over
// the penalized logits.
TEST(Sampler, FrequencyAndPresencePenaltiesCountDrawnTokens) {
  zc::Rng rng(21);
  for (int trial = 0; trial < 40; ++trial) {
    const size_t n = size_t(rng.integer(1, 30));
    const auto logits = random_logits(uint64_t(500 + trial), n);
    SamplingParams sp;
    sp.temperature = 0;
    sp.frequency_penalty = float(4.0 * rng.uniform() - 2.0);
    sp.presence_penalty = float(4.0 * rng.uniform() - 2.0);
    Sampler greedy(sp);
    std::map<int32_t, int> counts;
    for (int step = 0; step < 25; ++step) {
      size_t best = 0;
      double top = -INFINITY;
      for (size_t i = 0; i < n; ++i) {
        const int c = counts.count(int32_t(i)) ? counts[int32_t(i)] : 0;
        const double v = double(logits[i]) - c * double(sp.frequency_penalty) - (c > 0 ? double(sp.presence_penalty) : 0.0);
        if (v > top) top = v, best = i;
      }
      ASSERT_EQ(greedy.sample(logits, {}), int32_t(best)) << "trial " << trial << " step " << step;
      counts[int32_t(best)]++;
    }
    // Sampled: the next draw's distribution after the same history of drawn tokens.
    SamplingParams hot = sp;
    hot.temperature = float(0.5 + rng.uniform());
    hot.top_k = 0, hot.top_p = 1.0f, hot.min_p = 0.0f;
    Sampler sampler(hot);
    std::map<int32_t, int> drawn;
    for (int step = 0; step < 5; ++step) drawn[sampler.sample(logits, {})]++;
    std::vector<double> penalized(logits.begin(), logits.end());
    for (const auto& [t, c] : drawn) penalized[size_t(t)] -= c * double(hot.frequency_penalty) + double(hot.presence_penalty);
    const auto want = reference(penalized, hot, {});
    const auto got = sampler.distribution(logits, {});
    for (size_t i = 0; i < n; ++i) EXPECT_NEAR(got[i], want[i], 1e-9) << "trial " << trial << " token " << i;
  }
  SamplingParams bad;
  bad.frequency_penalty = 2.5f;
  EXPECT_THROW(Sampler{bad}, zc::Error);
  bad = {};
  bad.presence_penalty = NAN;
  EXPECT_THROW(Sampler{bad}, zc::Error);
}

TEST(Sampler, EveryTokenMaskedIsAnError) {
  SamplingParams sp;
  const std::vector<float> logits(50, -INFINITY);
  try {
    Sampler(sp).sample(logits, {});
    FAIL() << "all -inf accepted";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("-inf"), std::string::npos) << e.what();
  }
}

TEST(Sampler, GreedyPicksArgmaxAndIgnoresSeed) {
  SamplingParams sp;
  sp.temperature = 0;
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f};
  for (uint64_t seed : {1u, 2u, 3u}) {
    sp.seed = seed;
    EXPECT_EQ(Sampler(sp).sample(logits, {}), 1);  // first of the tied best
  }
}

// argmax_or_nan (the host form of a device's argmax) against a scan written here, on
// rows of 1 to 128256 logits with ties, -inf and NaN; check_picked's errors; which
// options make sample() the plain argmax or a draw a device may make.
TEST(Sampler, ArgmaxOrNanAndPlainArgmax) {
  std::mt19937 rng(7);
  for (const size_t n : {size_t(1), size_t(2), size_t(7), size_t(33), size_t(1000), size_t(128256)}) {
    for (int trial = 0; trial < 4; ++trial) {
      std::vector<float> row(n);
      std::uniform_int_distribution<int> level(-3, 3);  // few values: many ties
      for (float& v : row) v = trial == 0 ? float(level(rng)) : std::normal_distribution<float>(0, 3)(rng);
      if (trial == 2) row[n / 2] = -INFINITY;
      size_t want = 0;
      for (size_t i = 1; i < n; ++i)
        if (double(row[i]) > double(row[want])) want = i;
      EXPECT_EQ(argmax_or_nan(row), int32_t(want)) << n << " trial " << trial;
      EXPECT_EQ(check_picked(argmax_or_nan(row), n), int32_t(want));
      EXPECT_EQ(pick_on_host(row, TokenPick{TokenPick::Kind::kArgmax, {}}), int32_t(want));
      if (trial == 3) {
        row[n - 1] = NAN;
        EXPECT_EQ(argmax_or_nan(row), -1) << n;
        EXPECT_EQ(pick_on_host(row, TokenPick{TokenPick::Kind::kDraw, DrawSpec{}}), -1) << n;
      }
    }
  }
  EXPECT_THROW(argmax_or_nan({}), zc::Error);
  try {
    check_picked(-1, 10);
    FAIL() << "-1 accepted";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
  try {
    check_picked(-2, 10);
    FAIL() << "-2 accepted";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("largest logit"), std::string::npos) << e.what();
  }
  EXPECT_THROW(check_picked(10, 10), zc::Error);
  EXPECT_THROW(check_picked(-3, 10), zc::Error);
  // A draw over logits whose largest is +inf or that are all -inf: -2.
  const TokenPick draw{TokenPick::Kind::kDraw, DrawSpec{}};
  EXPECT_EQ(pick_on_host(std::vector<float>{1.0f, INFINITY}, draw), -2);
  EXPECT_EQ(pick_on_host(std::vector<float>{-INFINITY, -INFINITY}, draw), -2);
  EXPECT_THROW(pick_on_host(std::vector<float>{1.0f}, TokenPick{}), zc::Error);  // kLogits
  EXPECT_THROW(pick_on_host(std::vector<float>{1.0f}, TokenPick{TokenPick::Kind::kDraw, DrawSpec{0.0f, 0, 1, 0, 0.5}}),
               zc::Error);  // greedy is not a draw
  EXPECT_THROW(pick_on_host(std::vector<float>{1.0f}, TokenPick{TokenPick::Kind::kDraw, DrawSpec{1.0f, 0, 1, 0, 1.0}}),
               zc::Error);  // u = 1

  SamplingParams sp;
  EXPECT_FALSE(Sampler(sp).plain_argmax());  // the defaults sample
  EXPECT_TRUE(Sampler(sp).drawable());
  sp.temperature = 0;
  EXPECT_TRUE(Sampler(sp).plain_argmax());
  EXPECT_FALSE(Sampler(sp).drawable());
  EXPECT_THROW(Sampler(sp).next_draw(), zc::Error);
  for (const float temperature : {0.0f, 0.8f}) {
    for (int change = 0; change < 3; ++change) {
      SamplingParams p = sp;
      p.temperature = temperature;
      if (change == 0) p.repeat_penalty = 1.1f;
      if (change == 1) p.frequency_penalty = -0.5f;
      if (change == 2) p.presence_penalty = 0.5f;
      EXPECT_FALSE(Sampler(p).plain_argmax()) << change;
      EXPECT_FALSE(Sampler(p).drawable()) << change;
    }
  }
}

TEST(Sampler, RepetitionPenaltyFollowsHfRule) {
  SamplingParams sp;
  sp.temperature = 0;
  sp.repeat_penalty = 2.0f;
  // Token 0 (logit 3, seen) becomes 1.5 < token 2's 2.0; token 1 (-1, seen) becomes -2.
  const std::vector<float> logits = {3.0f, -1.0f, 2.0f};
  const std::vector<int32_t> history = {0, 1};
  EXPECT_EQ(Sampler(sp).sample(logits, history), 2);
  sp.repeat_last_n = 1;  // only token 1 is recent now: token 0 keeps its 3.0
  EXPECT_EQ(Sampler(sp).sample(logits, history), 0);
}

TEST(Sampler, SampleFrequenciesFollowDistribution) {
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 0;
  sp.top_p = 0.9f;
  sp.min_p = 0.0f;
  sp.seed = 123;
  const auto logits = random_logits(99, 8);
  Sampler sampler(sp);
  const auto p = sampler.distribution(logits, {});
  std::map<int32_t, int> counts;
  const int draws = 40000;
  for (int i = 0; i < draws; ++i) counts[sampler.sample(logits, {})]++;
  for (size_t i = 0; i < p.size(); ++i) {
    const double f = double(counts[int32_t(i)]) / draws;
    const double sd = std::sqrt(p[i] * (1 - p[i]) / draws);
    EXPECT_NEAR(f, p[i], 5 * sd + 1e-12) << "token " << i;
  }
}

TEST(Sampler, SameSeedSameTokens) {
  SamplingParams sp;
  sp.seed = 42;
  const auto logits = random_logits(5, 50);
  Sampler a(sp), b(sp);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(logits, {}), b.sample(logits, {}));
}

TEST(Sampler, BadOptionsAndNaN) {
  SamplingParams sp;
  sp.top_p = 0;
  EXPECT_THROW(Sampler{sp}, zc::Error);
  sp = {};
  sp.min_p = 2;
  EXPECT_THROW(Sampler{sp}, zc::Error);
  sp = {};
  sp.repeat_penalty = 0;
  EXPECT_THROW(Sampler{sp}, zc::Error);
  sp = {};
  std::vector<float> logits = {0.0f, NAN};
  try {
    Sampler(sp).sample(logits, {});
    FAIL() << "NaN accepted";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos);
  }
}

}  // namespace
