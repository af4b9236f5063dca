// Independent double-precision references for the kv tests: softmax attention,
// attention probabilities, quantization error bounds (SPEC.md sections 1-2), random
// inputs. Written from the formulas, not from src/kv.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "core/half.h"
#include "core/rng.h"
#include "kv/cache.h"

namespace zc_test {

struct Dims {
  int H = 1, n_kv = 1, d = 64;
  int g() const { return H / n_kv; }
};

// Token-major random q [T, H, d], k/v [T, n_kv, d]. Keys get a few outlier channels
// (as real keys after RoPE do), so per-channel ranges differ.
struct Tokens {
  int T = 0;
  Dims dims;
  std::vector<float> q, k, v;
  const float* qt(int t) const { return &q[size_t(t) * dims.H * dims.d]; }
  const float* kt(int t) const { return &k[size_t(t) * dims.n_kv * dims.d]; }
  const float* vt(int t) const { return &v[size_t(t) * dims.n_kv * dims.d]; }
};

inline Tokens random_tokens(int T, const Dims& dims, uint64_t seed, float q_scale = 1.0f) {
  zc::Rng rng(seed);
  Tokens x;
  x.T = T, x.dims = dims;
  const int d = dims.d;
  x.q.resize(size_t(T) * dims.H * d);
  x.k.resize(size_t(T) * dims.n_kv * d);
  x.v.resize(x.k.size());
  for (auto& e : x.q) e = rng.normal(0.0f, q_scale);
  for (size_t i = 0; i < x.k.size(); ++i) {
    const int c = int(i % size_t(d));
    x.k[i] = rng.normal(c % 7 == 3 ? 2.0f : 0.0f, c % 11 == 5 ? 4.0f : 1.0f);
    x.v[i] = rng.normal(0.0f, c % 13 == 2 ? 3.0f : 1.0f);
  }
  return x;
}

// Head-major store [n_kv, n, d] of keys and values with a visibility mask, built from
// token-major rows or from a cache snapshot.
struct Store {
  int n_kv = 0, n = 0, d = 0;
  std::vector<double> k, v;
  std::vector<uint8_t> visible;  // [n_kv, n]
  const double* kr(int h, int j) const { return &k[(size_t(h) * n + j) * d]; }
  const double* vr(int h, int j) const { return &v[(size_t(h) * n + j) * d]; }
};

// The first n tokens, rounded to fp16 when `round_half` (what an fp16 cache stores).
inline Store store_from_tokens(const Tokens& x, int n, bool round_half) {
  Store s;
  s.n_kv = x.dims.n_kv, s.n = n, s.d = x.dims.d;
  s.k.resize(size_t(s.n_kv) * n * s.d);
  s.v.resize(s.k.size());
  s.visible.assign(size_t(s.n_kv) * n, 1);
  for (int j = 0; j < n; ++j)
    for (int h = 0; h < s.n_kv; ++h)
      for (int c = 0; c < s.d; ++c) {
        const float kk = x.kt(j)[h * s.d + c], vv = x.vt(j)[h * s.d + c];
        s.k[(size_t(h) * n + j) * s.d + c] = round_half ? zc::round_to_half(kk) : kk;
        s.v[(size_t(h) * n + j) * s.d + c] = round_half ? zc::round_to_half(vv) : vv;
      }
  return s;
}

inline Store store_from_snapshot(const zc::kv::Snapshot& snap) {
  Store s;
  s.n_kv = snap.n_kv_heads, s.n = snap.length, s.d = snap.head_dim;
  s.k.assign(snap.k.begin(), snap.k.end());
  s.v.assign(snap.v.begin(), snap.v.end());
  s.visible.resize(snap.bits.size());
  for (size_t i = 0; i < snap.bits.size(); ++i) s.visible[i] = snap.bits[i] != 0;
  return s;
}

// Attention of one query position (q: H x d) over tokens [first, upto) of the store
// that are visible. Returns out [H, d]; probs (when given) [n_kv, n] receives the
// probability each token got, summed over the query heads of its KV head.
inline std::vector<double> attend(const float* q, const Dims& dims, const Store& s, int upto,
                                  int first = 0, std::vector<double>* probs = nullptr) {
  const int d = dims.d, g = dims.g();
  const double scale = 1.0 / std::sqrt(double(d));
  std::vector<double> out(size_t(dims.H) * d, 0.0);
  if (probs) probs->assign(size_t(s.n_kv) * s.n, 0.0);
  std::vector<double> logit(size_t(s.n));
  for (int hq = 0; hq < dims.H; ++hq) {
    const int h = hq / g;
    double mx = -INFINITY;
    for (int j = first; j < upto; ++j) {
      if (!s.visible[size_t(h) * s.n + j]) continue;
      double dot = 0;
      for (int c = 0; c < d; ++c) dot += double(q[hq * d + c]) * s.kr(h, j)[c];
      logit[j] = dot * scale;
      mx = std::max(mx, logit[j]);
    }
    double sum = 0;
    for (int j = first; j < upto; ++j)
      if (s.visible[size_t(h) * s.n + j]) sum += std::exp(logit[j] - mx);
    for (int j = first; j < upto; ++j) {
      if (!s.visible[size_t(h) * s.n + j]) continue;
      const double p = std::exp(logit[j] - mx) / sum;
      for (int c = 0; c < d; ++c) out[size_t(hq) * d + c] += p * s.vr(h, j)[c];
      if (probs) (*probs)[size_t(h) * s.n + j] += p;
    }
  }
  return out;
}

// |got - want| <= tol * (1 + max |want|) for every element.
inline void expect_close(const float* got, const std::vector<double>& want, double tol,
                         const char* what) {
  double mx = 0;
  for (double w : want) mx = std::max(mx, std::fabs(w));
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * (1.0 + mx)) << what << " element " << i;
  }
}

// Largest error uniform b-bit quantization of a group may make (SPEC.md section 1):
// half a step plus how far fp16 rounding of lo and step may move the grid's ends,
// with 1% slack.
inline double quant_bound(double mn, double mx, int bits) {
  const double range = mx - mn;
  return 1.01 * (0.5 * range / ((1 << bits) - 1) + std::ldexp(std::fabs(mn) + range, -10)) + 1e-6;
}

}  // namespace zc_test
