// Realistic synthetic K/V for `zipcache kv demo`: keys after RoPE with a few outlier
// channels (as KIVI and ZipCache observe in real models), values with uneven channel
// magnitudes, and queries drawn toward "important" tokens
// spread over the whole context (so the early-token bias of accumulated saliency shows).
#pragma once
#include <cstdint>
#include <vector>

namespace zc::app {

struct SyntheticKv {
  int L = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  std::vector<float> q;          // [L, n_heads, d]
  std::vector<float> k, v;       // [L, n_kv_heads, d]
  std::vector<int> important;    // token positions that queries attend to strongly
};

SyntheticKv make_synthetic_kv(int L, int n_heads, int n_kv_heads, int head_dim, uint64_t seed);

}  // namespace zc::app
