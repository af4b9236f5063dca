#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

#include "core/error.h"

namespace zc::engine {

void SamplingParams::validate() const {
  if (!std::isfinite(temperature)) fail("--temp must be a finite number, got {}", temperature);
  if (!(top_p > 0.0f)) fail("--top-p must be in (0, 1], got {}", top_p);
  if (min_p < 0.0f || min_p > 1.0f) fail("--min-p must be in [0, 1], got {}", min_p);
  if (!(repeat_penalty > 0.0f)) fail("--repeat-penalty must be > 0, got {}", repeat_penalty);
  if (repeat_last_n < -1) fail("--repeat-last-n must be -1 (all) or >= 0, got {}", repeat_last_n);
}

int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) fail("sampler: empty logits");
  int32_t best = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (std::isnan(logits[i])) fail("sampler: logit {} is NaN (the model produced NaN)", i);
    if (logits[i] > logits[size_t(best)]) best = int32_t(i);
  }
  return best;
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  params_.validate();
}

std::vector<double> Sampler::distribution(std::span<const float> logits,
                                          std::span<const int32_t> history) const {
  const size_t n = logits.size();
  std::vector<double> x(logits.begin(), logits.end());
  for (size_t i = 0; i < n; ++i)
    if (std::isnan(x[i])) fail("sampler: logit {} is NaN (the model produced NaN)", i);

  // Repetition penalty over the distinct tokens of the recent history.
  if (params_.repeat_penalty != 1.0f) {
    const size_t from = params_.repeat_last_n < 0 || size_t(params_.repeat_last_n) >= history.size()
                            ? 0
                            : history.size() - size_t(params_.repeat_last_n);
    std::unordered_set<int32_t> seen(history.begin() + long(from), history.end());
    for (int32_t t : seen) {
      if (t < 0 || size_t(t) >= n) continue;
      x[size_t(t)] = x[size_t(t)] > 0 ? x[size_t(t)] / params_.repeat_penalty
                                      : x[size_t(t)] * params_.repeat_penalty;
    }
  }
  std::vector<double> p(n, 0.0);
  if (params_.temperature <= 0.0f) {
    size_t best = 0;
    for (size_t i = 1; i < n; ++i)
      if (x[i] > x[best]) best = i;
    p[best] = 1.0;
    return p;
  }
  for (auto& v : x) v /= params_.temperature;

  // Candidates sorted by logit, best first (stable: lower id first on ties).
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] > x[b]; });
  size_t keep = n;
  if (params_.top_k > 0) keep = std::min(keep, size_t(params_.top_k));

  // Softmax over the kept candidates.
  const double mx = x[order[0]];
  std::vector<double> prob(keep);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += prob[i] = std::exp(x[order[i]] - mx);
  for (auto& v : prob) v /= sum;

  // top-p: the smallest prefix whose mass reaches top_p (at least one token).
  if (params_.top_p < 1.0f) {
    double mass = 0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      mass += prob[i];
      if (mass >= params_.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
  }
  // min-p: tokens at least min_p times as likely as the best.
  if (params_.min_p > 0.0f) {
    size_t cut = 1;
    while (cut < keep && prob[cut] >= params_.min_p * prob[0]) ++cut;
    keep = cut;
  }
  double kept = 0;
  for (size_t i = 0; i < keep; ++i) kept += prob[i];
  for (size_t i = 0; i < keep; ++i) p[order[i]] = prob[i] / kept;
  return p;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  if (params_.temperature <= 0.0f && params_.repeat_penalty == 1.0f) return argmax(logits);
  const auto p = distribution(logits, history);
  double u = rng_.uniform();
  int32_t last = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    last = int32_t(i);
    if (u < p[i]) return int32_t(i);
    u -= p[i];
  }
  return last;  // rounding left a sliver of mass: the last candidate takes it
}

}  // namespace zc::engine
