#include "kv_synthetic.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace zc::app {

namespace {

// RoPE as in Llama (rotate_half pairs (i, i + d/2)), so keys look like the keys a
// model stores: their outlier channels rotate with position.
void apply_rope(float* x, int d, int position) {
  const int half = d / 2;
  for (int i = 0; i < half; ++i) {
    const double freq = std::pow(10000.0, -2.0 * i / d);
    const double angle = position * freq;
    const double c = std::cos(angle), s = std::sin(angle);
    const double a = x[i], b = x[i + half];
    x[i] = float(a * c - b * s);
    x[i + half] = float(a * s + b * c);
  }
}

}  // namespace

SyntheticKv make_synthetic_kv(int L, int n_heads, int n_kv_heads, int head_dim, uint64_t seed) {
  if (L < 1 || n_kv_heads < 1 || n_heads % n_kv_heads != 0 || head_dim < 2 || head_dim % 2)
    fail("synthetic K/V: need L >= 1, n_heads a multiple of n_kv_heads, even head_dim");
  Rng rng(seed);
  SyntheticKv s;
  s.L = L, s.n_heads = n_heads, s.n_kv_heads = n_kv_heads, s.head_dim = head_dim;
  const int d = head_dim;
  s.q.resize(size_t(L) * n_heads * d);
  s.k.resize(size_t(L) * n_kv_heads * d);
  s.v.resize(size_t(L) * n_kv_heads * d);

  // Graded importance: about half the tokens pull queries toward them, with a
  // strength drawn per token; token 0 is an attention sink. Important tokens are
  // spread over the whole context, so accumulated scores (biased to early tokens)
  // and normalized scores pick different sets.
  std::vector<float> pull(L, 0.0f);
  for (int t = 0; t < L; ++t) pull[t] = rng.normal(0.0f, 1.0f);
  pull[0] = 3.0f;
  for (int t = 0; t < L; ++t)
    if (pull[t] > 1.2f) s.important.push_back(t);

  const float sqrt_d = std::sqrt(float(d));
  // Locality, as real attention has it: a shared component in the RoPE channel pairs
  // whose wavelengths span about 25 to 600 tokens, so q_t . k_s is large for nearby
  // tokens and averages out far away (the rotations decorrelate). Recent tokens then
  // matter to the newest queries although few queries have seen them yet, which is
  // what accumulated scores get wrong.
  const int band_lo = int(std::lround(d * 0.075)), band_hi = std::max(band_lo + 1, int(std::lround(d * 0.25)));
  const float locality = std::sqrt(6.0f * sqrt_d / float(band_hi - band_lo));
  for (int h = 0; h < n_kv_heads; ++h) {
    // Per head: a direction u that important keys share and queries look for, a few
    // outlier key channels with large magnitude and offset, uneven value channels.
    std::vector<float> u(d);
    double norm = 0;
    for (auto& x : u) {
      x = rng.normal();
      norm += double(x) * x;
    }
    for (auto& x : u) x = float(x / std::sqrt(norm));
    std::vector<float> key_scale(d, 1.0f), key_offset(d, 0.0f), value_scale(d, 1.0f);
    for (int j = 0; j < std::max(1, d / 32); ++j) {
      const int c = int(rng.integer(0, d - 1));
      key_scale[c] = 8.0f + 4.0f * float(rng.uniform());
      key_offset[c] = 6.0f * rng.normal();
    }
    for (int c = 0; c < d; ++c) value_scale[c] = float(std::exp(1.0 * rng.normal()));

    for (int t = 0; t < L; ++t) {
      float* k = &s.k[(size_t(t) * n_kv_heads + h) * d];
      float* v = &s.v[(size_t(t) * n_kv_heads + h) * d];
      for (int c = 0; c < d; ++c) {
        k[c] = key_scale[c] * rng.normal() * 0.5f + key_offset[c];
        v[c] = value_scale[c] * rng.normal();
      }
      for (int c = band_lo; c < band_hi; ++c) k[c] += locality;
      apply_rope(k, d, t);
      // Content match on top of position: independent of distance.
      for (int c = 0; c < d; ++c) k[c] += pull[t] * 0.5f * sqrt_d * u[c];
    }
    const int group = n_heads / n_kv_heads;
    for (int g = 0; g < group; ++g) {
      const int qh = h * group + g;
      for (int t = 0; t < L; ++t) {
        float* q = &s.q[(size_t(t) * n_heads + qh) * d];
        for (int c = 0; c < d; ++c) q[c] = rng.normal() * 0.6f;
        for (int c = band_lo; c < band_hi; ++c) q[c] += locality;
        apply_rope(q, d, t);
        for (int c = 0; c < d; ++c) q[c] += 5.0f * u[c];
      }
    }
  }
  return s;
}

}  // namespace zc::app
