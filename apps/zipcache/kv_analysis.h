// What `zipcache kv` measures for one method on one set of K/V (and optional Q):
// the true storage of the compressed cache and the error it introduces.
#pragma once
#include <string>
#include <vector>

#include "kv/cache.h"

namespace zc::app {

// Token-major tensors, as kv::Cache takes them: q [L, n_heads, d], k/v [L, n_kv, d].
struct KvInput {
  int L = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  std::vector<float> q, k, v;  // q may be empty
};

struct KvResult {
  std::string label;
  kv::MemoryReport memory;
  double k_rel_error = 0, v_rel_error = 0;
  double attn_rel_error = -1;  // -1 when no queries were given
  kv::Snapshot snapshot;       // dequantized K/V [n_kv, L, d] and bits per token
};

// Number of trailing query rows the attention-output error is measured on: the rows
// that see (nearly) the whole cache, as decode queries do.
inline constexpr int kAttentionRows = 128;

KvResult analyse(const KvInput& input, const kv::MethodConfig& method);

// [a, b, d] -> [b, a, d]: token-major <-> head-major.
std::vector<float> swap_outer_axes(const std::vector<float>& x, int a, int b, int d);

// Relative L2 error ||a - b|| / ||a|| in double precision, over rows whose bit width
// is not 0 when `bits` is given (evicted tokens have no stored value to compare).
double relative_error(const std::vector<float>& reference, const std::vector<float>& approx);

}  // namespace zc::app
