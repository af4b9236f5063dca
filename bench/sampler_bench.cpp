// Sampling one token from a 128256-token vocabulary (Llama 3's), per filter setting:
// engine::Sampler against the full stable sort per token it replaced (written out
// below as the baseline), on the same logits. Two shapes of logits: "peaked" (normal
// with sd 2 and five tokens 4-12 ahead, as a language model's usually are) and "flat"
// (sd 3 and nothing ahead, where a top-p nucleus holds much of the vocabulary).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/rng.h"
#include "engine/sampler.h"

namespace {

constexpr size_t kVocab = 128256;

const std::vector<float>& logits(bool peaked) {
  static const auto make = [](bool p) {
    zc::Rng rng(3);
    std::vector<float> x(kVocab);
    for (auto& v : x) v = rng.normal(0.0f, p ? 2.0f : 3.0f);
    if (p) {
      for (int i = 0; i < 5; ++i) x[size_t(rng.integer(0, int64_t(kVocab) - 1))] += 12.0f - 2.0f * float(i);
    }
    return x;
  };
  static const std::vector<float> a = make(true), b = make(false);
  return peaked ? a : b;
}

// The settings: 0 the OpenAI API's default (temperature 1, no filter), 1 top-p 0.9,
// 2 the command line's defaults (0.8, top-k 40, top-p 0.95, min-p 0.05), 3 greedy.
zc::engine::SamplingParams params(int which) {
  zc::engine::SamplingParams sp;
  if (which == 0 || which == 1) sp.temperature = 1.0f, sp.top_k = 0, sp.top_p = which == 1 ? 0.9f : 1.0f, sp.min_p = 0.0f;
  if (which == 3) sp.temperature = 0.0f;
  return sp;
}

void sampler(benchmark::State& state) {
  const auto& x = logits(state.range(1) != 0);
  zc::engine::Sampler s(params(int(state.range(0))));
  for (auto _ : state) benchmark::DoNotOptimize(s.sample(x, {}));
}

// The former sampler: every logit sorted, then the filters on the sorted prefix.
int32_t full_sort_sample(const std::vector<float>& logits, const zc::engine::SamplingParams& sp, zc::Rng& rng) {
  const size_t n = logits.size();
  if (sp.temperature <= 0) return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  std::vector<double> x(logits.begin(), logits.end());
  for (auto& v : x) v /= sp.temperature;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] > x[b]; });
  size_t keep = sp.top_k > 0 ? std::min(n, size_t(sp.top_k)) : n;
  std::vector<double> prob(keep);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += prob[i] = std::exp(x[order[i]] - x[order[0]]);
  for (auto& v : prob) v /= sum;
  if (sp.top_p < 1) {
    double mass = 0;
    for (size_t i = 0; i < keep; ++i)
      if ((mass += prob[i]) >= sp.top_p) {
        keep = i + 1;
        break;
      }
  }
  size_t cut = 1;
  while (cut < keep && (sp.min_p <= 0 || prob[cut] >= sp.min_p * prob[0])) ++cut;
  std::vector<double> p(n, 0.0);
  double kept = 0;
  for (size_t i = 0; i < cut; ++i) kept += prob[i];
  for (size_t i = 0; i < cut; ++i) p[order[i]] = prob[i] / kept;
  double u = rng.uniform();
  for (size_t i = 0; i < n; ++i) {
    if (p[i] <= 0) continue;
    if (u < p[i]) return int32_t(i);
    u -= p[i];
  }
  return int32_t(order[0]);
}

void full_sort(benchmark::State& state) {
  const auto& x = logits(state.range(1) != 0);
  const auto sp = params(int(state.range(0)));
  zc::Rng rng(0);
  for (auto _ : state) benchmark::DoNotOptimize(full_sort_sample(x, sp, rng));
}

// Args: {setting, peaked}.
const auto kArgs = [](benchmark::internal::Benchmark* b) {
  for (int w = 0; w < 4; ++w) b->Args({w, 1});
  b->Args({1, 0});
  b->ArgNames({"setting", "peaked"})->Unit(benchmark::kMicrosecond);
};
BENCHMARK(sampler)->Apply(kArgs);
BENCHMARK(full_sort)->Apply(kArgs);

}  // namespace
