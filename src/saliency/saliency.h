// Token saliency (SPEC.md section 3): accumulated, normalized, recent and random
// scores; probe selection; scores from all query rows or from the probe rows only;
// grouped-query attention (scores summed over the query heads of a KV head); the
// top-r split per KV head.
//
// Layouts: q is [L, n_heads, d] and k is [L, n_kv_heads, d] (token-major, as the
// model produces them; keys after RoPE). Scores are [n_kv_heads, L].
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace zc::saliency {

enum class Metric { Accumulated, Normalized, Recent, Random };
// Normalization of Normalized: ProbeCount divides by the number of probe rows that
// see token i (the paper's formula on probes); Full divides by L - i (official code).
enum class Norm { ProbeCount, Full };

Metric parse_metric(const std::string& name);  // "accumulated", "normalized", ...
Norm parse_norm(const std::string& name);      // "probes", "full"
std::string metric_name(Metric m);
std::string norm_name(Norm n);

struct ProbeConfig {
  double recent_ratio = 0.05;  // newest fraction of the prompt
  double random_ratio = 0.05;  // drawn uniformly from the rest
  uint64_t seed = 0;
  friend bool operator==(const ProbeConfig&, const ProbeConfig&) = default;
};

// Sorted, distinct query positions in [0, L). At least one of each kind when L >= 2.
std::vector<int> select_probes(int L, const ProbeConfig& config);

struct AttentionShape {
  int L = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float scale = 0.0f;  // softmax scale, usually 1/sqrt(head_dim)
};

// Causal attention probabilities of the given query rows (all rows when rows is
// empty), summed over the query heads of each KV head, reduced to per-token scores
// with the metric. Recent and Random ignore q/k (Random uses `seed`).
std::vector<float> scores(const float* q, const float* k, const AttentionShape& shape,
                          const std::vector<int>& rows, Metric metric, Norm norm,
                          uint64_t seed = 0);

// How many of L tokens the top-r split keeps: round(ratio * L), halves up, at most L.
int top_r_count(int L, double ratio);

// Indices (ascending) of the top_r_count(L, ratio) highest-scoring tokens of one head;
// ties go to the later token.
std::vector<int> top_r(const float* scores, int L, double ratio);

}  // namespace zc::saliency
