#include "kv_analysis.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/thread_pool.h"

namespace zc::app {

std::vector<float> swap_outer_axes(const std::vector<float>& x, int a, int b, int d) {
  ZC_CHECK(x.size() == size_t(a) * size_t(b) * size_t(d));
  std::vector<float> out(x.size());
  for (int i = 0; i < a; ++i)
    for (int j = 0; j < b; ++j)
      std::copy_n(&x[(size_t(i) * b + j) * d], d, &out[(size_t(j) * a + i) * d]);
  return out;
}

double relative_error(const std::vector<float>& reference, const std::vector<float>& approx) {
  ZC_CHECK(reference.size() == approx.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    const double d = double(reference[i]) - double(approx[i]);
    num += d * d;
    den += double(reference[i]) * reference[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

namespace {

// Causal attention of query rows [first, L) in double precision, keys/values given
// head-major [n_kv, L, d]; tokens whose `keep` is 0 are invisible (evicted).
std::vector<double> attention_rows(const KvInput& in, const std::vector<float>& k_head_major,
                                   const std::vector<float>& v_head_major,
                                   const std::vector<uint8_t>* keep, int first) {
  const int L = in.L, d = in.head_dim, H = in.n_heads, group = in.n_heads / in.n_kv_heads;
  const int rows = L - first;
  std::vector<double> out(size_t(rows) * H * d, 0.0);
  const double scale = 1.0 / std::sqrt(double(d));
  parallel_for(size_t(H), [&](size_t hh) {
    const int h = int(hh), kvh = h / group;
    std::vector<double> logits(L);
    for (int r = 0; r < rows; ++r) {
      const int t = first + r;
      const float* q = &in.q[(size_t(t) * H + h) * d];
      double mx = -INFINITY;
      for (int j = 0; j <= t; ++j) {
        if (keep && (*keep)[size_t(kvh) * L + j] == 0) {
          logits[j] = -INFINITY;
          continue;
        }
        const float* k = &k_head_major[(size_t(kvh) * L + j) * d];
        double dot = 0;
        for (int c = 0; c < d; ++c) dot += double(q[c]) * k[c];
        logits[j] = dot * scale;
        mx = std::max(mx, logits[j]);
      }
      double sum = 0;
      double* o = &out[(size_t(r) * H + h) * d];
      for (int j = 0; j <= t; ++j) {
        if (logits[j] == -INFINITY) continue;
        const double p = std::exp(logits[j] - mx);
        sum += p;
        const float* v = &v_head_major[(size_t(kvh) * L + j) * d];
        for (int c = 0; c < d; ++c) o[c] += p * v[c];
      }
      for (int c = 0; c < d; ++c) o[c] /= sum;
    }
  });
  return out;
}

}  // namespace

KvResult analyse(const KvInput& in, const kv::MethodConfig& method) {
  kv::KvShape shape;
  shape.n_heads = in.n_heads;
  shape.n_kv_heads = in.n_kv_heads;
  shape.head_dim = in.head_dim;
  kv::MethodConfig config = method;
  config.record_positions = true;  // the snapshot must put tokens back in order
  auto cache = kv::make_cache(config, shape);

  const bool has_q = !in.q.empty();
  // Without queries the cache still needs a q buffer; attention-aware policies
  // refuse earlier (in the command) unless salient tokens are given.
  std::vector<float> zero_q;
  if (!has_q) zero_q.assign(size_t(in.L) * in.n_heads * in.head_dim, 0.0f);
  std::vector<float> out(size_t(in.L) * in.n_heads * in.head_dim);
  cache->prefill(has_q ? in.q.data() : zero_q.data(), in.k.data(), in.v.data(), in.L, out.data());

  KvResult result;
  result.label = config.label.empty() ? kv::method_name(config.method) : config.label;
  result.memory = cache->memory();
  result.snapshot = cache->snapshot();
  const auto& snap = result.snapshot;
  ZC_CHECK(snap.length == in.L && snap.n_kv_heads == in.n_kv_heads);

  const auto k_ref = swap_outer_axes(in.k, in.L, in.n_kv_heads, in.head_dim);
  const auto v_ref = swap_outer_axes(in.v, in.L, in.n_kv_heads, in.head_dim);
  result.k_rel_error = relative_error(k_ref, snap.k);
  result.v_rel_error = relative_error(v_ref, snap.v);
  if (has_q) {
    const int first = std::max(0, in.L - kAttentionRows);
    const auto exact = attention_rows(in, k_ref, v_ref, nullptr, first);
    const auto approx = attention_rows(in, snap.k, snap.v, &snap.bits, first);
    double num = 0, den = 0;
    for (size_t i = 0; i < exact.size(); ++i) {
      num += (exact[i] - approx[i]) * (exact[i] - approx[i]);
      den += exact[i] * exact[i];
    }
    result.attn_rel_error = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  }
  return result;
}

}  // namespace zc::app
