// The top-r split of SPEC.md section 4: per KV head, the round(r * L) tokens with
// the highest saliency are salient. Halves round up; equal scores prefer the later
// token (newer tokens are the ones attention keeps coming back to).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "saliency/saliency.h"

namespace zc::saliency {

int top_r_count(int L, double ratio) {
  return static_cast<int>(std::min<double>(L, std::floor(ratio * static_cast<double>(L) + 0.5)));
}

std::vector<int> top_r(const float* scores, int L, double ratio) {
  if (!(ratio >= 0.0 && ratio <= 1.0)) fail("top_r: saliency ratio {} is outside [0, 1]", ratio);
  if (L < 0) fail("top_r: negative token count {}", L);
  for (int i = 0; i < L; ++i) {
    if (std::isnan(scores[i])) fail("top_r: score of token {} is NaN", i);
  }
  const auto n = static_cast<size_t>(top_r_count(L, ratio));
  std::vector<int> idx(static_cast<size_t>(L));
  std::iota(idx.begin(), idx.end(), 0);
  const auto before = [scores](int a, int b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a > b);
  };
  std::nth_element(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n), idx.end(), before);
  idx.resize(n);
  std::sort(idx.begin(), idx.end());
  return idx;
}

}  // namespace zc::saliency
