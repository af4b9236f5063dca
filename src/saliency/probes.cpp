// Probe selection (SPEC.md section 3, ZipCache's probe approximation): the newest
// `recent_ratio` of the prompt plus `random_ratio` of it drawn uniformly without
// replacement from the older positions.
//
// Counts: n = round(ratio * L), halves rounded up (computed in double). A kind whose
// ratio is > 0 gets at least one probe when L >= 2 (so the 5% defaults give one
// recent and one random probe for any prompt of 2..29 tokens); a ratio of 0 turns
// that kind off. L == 1 gives {0}; L == 0 gives no probes.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "saliency/saliency.h"

namespace zc::saliency {

namespace {
int rounded_count(double ratio, int L) {
  return static_cast<int>(std::floor(ratio * static_cast<double>(L) + 0.5));
}
}  // namespace

std::vector<int> select_probes(int L, const ProbeConfig& config) {
  if (L < 0) fail("select_probes: negative prompt length {}", L);
  for (const auto& [name, r] : {std::pair{"recent_ratio", config.recent_ratio},
                                std::pair{"random_ratio", config.random_ratio}}) {
    if (!(r >= 0.0 && r <= 1.0)) fail("select_probes: {} = {} is outside [0, 1]", name, r);
  }
  if (config.recent_ratio == 0.0 && config.random_ratio == 0.0) {
    fail("select_probes: recent_ratio and random_ratio are both 0 (no probes)");
  }
  if (L == 0) return {};
  if (L == 1) return {0};

  int n_recent = rounded_count(config.recent_ratio, L);
  if (config.recent_ratio > 0.0) n_recent = std::max(n_recent, 1);
  // Leave room for one random probe when random ones are asked for.
  n_recent = std::min(n_recent, config.random_ratio > 0.0 ? L - 1 : L);
  int n_random = rounded_count(config.random_ratio, L);
  if (config.random_ratio > 0.0) n_random = std::max(n_random, 1);
  const int older = L - n_recent;
  n_random = std::min(n_random, older);

  // Partial Fisher-Yates over the older positions [0, older): uniform, no repeats.
  std::vector<int> pool(static_cast<size_t>(older));
  std::iota(pool.begin(), pool.end(), 0);
  Rng rng(config.seed);
  for (int i = 0; i < n_random; ++i) {
    const auto j = static_cast<size_t>(rng.integer(i, older - 1));
    std::swap(pool[static_cast<size_t>(i)], pool[j]);
  }
  std::vector<int> probes(pool.begin(), pool.begin() + n_random);
  for (int t = older; t < L; ++t) probes.push_back(t);
  std::sort(probes.begin(), probes.end());
  return probes;
}

}  // namespace zc::saliency
