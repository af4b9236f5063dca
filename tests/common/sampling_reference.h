// The tests' reference for sampling (engine::Sampler, cuda::GpuSampler): HF's logits
// processors in double over the whole vocabulary sorted, and logits shaped like a
// language model's and like the cases that break cuts.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "core/rng.h"

namespace zc_test {

// HF's processors in double: logits / T, a stable sort (ties: lower id first), softmax
// over the top-k (<= 0: all), the shortest prefix with mass >= top_p, the prefix with
// p >= min_p * p_max, renormalized; zeros for removed tokens.
inline std::vector<double> hf_sampling_reference(const std::vector<float>& logits, double temperature, int top_k,
                                                 double top_p, double min_p) {
  const size_t n = logits.size();
  std::vector<double> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = double(logits[i]) / temperature;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] > x[b]; });
  size_t keep = top_k > 0 ? std::min(n, size_t(top_k)) : n;
  std::vector<double> prob(keep);
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += prob[i] = std::exp(x[order[i]] - x[order[0]]);
  for (double& p : prob) p /= total;
  if (top_p < 1) {
    double mass = 0;
    for (size_t i = 0; i < keep; ++i) {
      mass += prob[i];
      if (mass >= top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  size_t cut = 1;
  while (cut < keep && (min_p <= 0 || prob[cut] >= min_p * prob[0])) ++cut;
  keep = cut;
  double kept = 0;
  for (size_t i = 0; i < keep; ++i) kept += prob[i];
  std::vector<double> p(n, 0.0);
  for (size_t i = 0; i < keep; ++i) p[order[i]] = prob[i] / kept;
  return p;
}

// Logits of a vocabulary of n: peaked (a few tokens far ahead, as a language model's
// usually are), flat, tied (whole numbers: runs of exact ties across every cut) or
// masked (a third of the tokens at -inf).
inline std::vector<float> shaped_logits(zc::Rng& rng, size_t n, int shape) {
  std::vector<float> x(n);
  for (auto& v : x) v = rng.normal(0.0f, shape == 1 ? 0.3f : 2.0f);
  if (shape == 0) {
    for (int i = 0; i < 5; ++i) x[size_t(rng.integer(0, int64_t(n) - 1))] += 12.0f - 2.0f * float(i);
  } else if (shape == 2) {
    for (auto& v : x) v = std::round(v);
  } else if (shape == 3) {
    for (size_t i = 0; i < n; ++i)
      if (i % 3 == 1) x[i] = -std::numeric_limits<float>::infinity();
  }
  return x;
}

}  // namespace zc_test
