// Saliency scores (SPEC.md section 3). For each KV head h and each given query row t,
// the causal softmax attention probabilities A[t, i] (i <= t) of the g query heads
// that share h are summed into per-token column sums; then
//   accumulated: s_i = sum_t A[t, i]                        (H2O, MiKV)
//   normalized:  s_i = sum_t A[t, i] / nnz_i                (ZipCache)
// with nnz_i = the number of given rows t >= i (Norm::ProbeCount; 0 if none sees i)
// or L - i (Norm::Full, the official code's divisor). Recent scores newer tokens
// higher (s_i = i); Random draws s_i uniformly in [0, 1) from the seed.
// KV heads run in parallel; each writes only its own row of the [n_kv, L] output.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "saliency/saliency.h"

namespace zc::saliency {

namespace {

// Eight independent partial sums let the compiler vectorize without -ffast-math.
float dot(const float* a, const float* b, int n) {
  float acc[8] = {};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void check_finite(const float* x, size_t n, int heads, int d, const char* tensor) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) {
      const size_t per_token = static_cast<size_t>(heads) * static_cast<size_t>(d);
      fail("saliency scores: non-finite {} value {} at token {}, head {}, dim {}", tensor, x[i],
           i / per_token, (i % per_token) / static_cast<size_t>(d), i % static_cast<size_t>(d));
    }
  }
}

// Column sums of the attention probabilities of one KV head over the given rows.
// Returns false if a row's logits overflowed (inputs too large for fp32).
bool head_column_sums(const float* q, const float* k, const AttentionShape& s, float scale, int h,
                      const std::vector<int>& rows, std::vector<double>& sums) {
  const int L = s.L, d = s.head_dim, g = s.n_heads / s.n_kv_heads;
  const auto D = static_cast<size_t>(d);
  // This head's keys, contiguous: every query row walks all of them.
  std::vector<float> kh(static_cast<size_t>(L) * D);
  for (int i = 0; i < L; ++i) {
    const float* src =
        k +
        (static_cast<size_t>(i) * static_cast<size_t>(s.n_kv_heads) + static_cast<size_t>(h)) * D;
    std::copy(src, src + d, kh.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(i) * D));
  }
  std::vector<float> logit(static_cast<size_t>(L));
  sums.assign(static_cast<size_t>(L), 0.0);
  for (int t : rows) {
    for (int j = 0; j < g; ++j) {
      const float* qv = q + (static_cast<size_t>(t) * static_cast<size_t>(s.n_heads) +
                             static_cast<size_t>(h * g + j)) *
                                D;
      // Numerically stable softmax over the causal prefix [0, t].
      float m = -INFINITY;
      for (int i = 0; i <= t; ++i) {
        const float z = scale * dot(qv, &kh[static_cast<size_t>(i) * D], d);
        logit[static_cast<size_t>(i)] = z;
        m = std::max(m, z);
      }
      if (!std::isfinite(m)) return false;
      double denom = 0.0;
      for (int i = 0; i <= t; ++i) {
        const float e = std::exp(logit[static_cast<size_t>(i)] - m);
        logit[static_cast<size_t>(i)] = e;
        denom += e;
      }
      const double inv = 1.0 / denom;
      for (int i = 0; i <= t; ++i)
        sums[static_cast<size_t>(i)] += logit[static_cast<size_t>(i)] * inv;
    }
  }
  return true;
}

}  // namespace

std::vector<float> scores(const float* q, const float* k, const AttentionShape& shape,
                          const std::vector<int>& rows, Metric metric, Norm norm, uint64_t seed) {
  const int L = shape.L;
  if (L < 0 || shape.n_kv_heads < 1) {
    fail("saliency scores: bad shape L = {}, n_kv_heads = {}", L, shape.n_kv_heads);
  }
  const size_t n_kv = static_cast<size_t>(shape.n_kv_heads), UL = static_cast<size_t>(L);
  std::vector<float> out(n_kv * UL, 0.0f);
  if (metric == Metric::Recent) {
    for (size_t h = 0; h < n_kv; ++h) {
      for (size_t i = 0; i < UL; ++i) out[h * UL + i] = static_cast<float>(i);
    }
    return out;
  }
  if (metric == Metric::Random) {
    Rng rng(seed);
    for (auto& v : out) v = static_cast<float>(rng.uniform());
    return out;
  }

  if (shape.n_heads < 1 || shape.n_heads % shape.n_kv_heads != 0 || shape.head_dim < 1) {
    fail(
        "saliency scores: bad shape n_heads = {}, n_kv_heads = {}, head_dim = {} (n_heads must "
        "be a multiple of n_kv_heads)",
        shape.n_heads, shape.n_kv_heads, shape.head_dim);
  }
  // A scale left at 0 means the usual 1/sqrt(head_dim).
  const float scale =
      shape.scale == 0.0f ? 1.0f / std::sqrt(static_cast<float>(shape.head_dim)) : shape.scale;
  if (!std::isfinite(scale) || scale < 0.0f) fail("saliency scores: bad softmax scale {}", scale);
  if (L == 0) return out;
  if (q == nullptr || k == nullptr) fail("saliency scores: null q or k for L = {}", L);
  check_finite(q, UL * static_cast<size_t>(shape.n_heads) * static_cast<size_t>(shape.head_dim),
               shape.n_heads, shape.head_dim, "query");
  check_finite(k, UL * n_kv * static_cast<size_t>(shape.head_dim), shape.n_kv_heads, shape.head_dim,
               "key");

  std::vector<int> used = rows;
  if (used.empty()) {
    used.resize(UL);
    for (int t = 0; t < L; ++t) used[static_cast<size_t>(t)] = t;
  }
  // How many given rows see token i (rows t >= i), from a histogram's suffix sums.
  std::vector<int> seen_by(UL + 1, 0);
  for (int t : used) {
    if (t < 0 || t >= L) fail("saliency scores: query row {} is outside [0, {})", t, L);
    if (seen_by[static_cast<size_t>(t)]++ != 0)
      fail("saliency scores: query row {} given twice", t);
  }
  for (int i = L - 1; i >= 0; --i)
    seen_by[static_cast<size_t>(i)] += seen_by[static_cast<size_t>(i) + 1];

  std::vector<char> overflow(n_kv, 0);
  // Workers must not throw: a head that fails is flagged and reported afterwards.
  parallel_for(n_kv, [&](size_t h) {
    std::vector<double> sums;
    if (!head_column_sums(q, k, shape, scale, static_cast<int>(h), used, sums)) {
      overflow[h] = 1;
      return;
    }
    for (size_t i = 0; i < UL; ++i) {
      double s = sums[i];
      if (metric == Metric::Normalized) {
        const double count = norm == Norm::Full ? static_cast<double>(UL - i) : seen_by[i];
        s = count > 0 ? s / count : 0.0;
      }
      out[h * UL + i] = static_cast<float>(s);
    }
  });
  for (size_t h = 0; h < n_kv; ++h) {
    if (overflow[h]) fail("saliency scores: attention logits overflow fp32 in KV head {}", h);
  }
  return out;
}

}  // namespace zc::saliency
