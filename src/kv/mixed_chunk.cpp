// Saliency split and mixed-precision quantization of a chunk (mixed_chunk.h).
#include "kv/mixed_chunk.h"

#include <algorithm>

#include "core/error.h"
#include "core/rng.h"
#include "kv/attention.h"
#include "saliency/saliency.h"

namespace zc::kv {
namespace {

std::string label(const MethodConfig& c) {
  return c.label.empty() ? method_name(c.method) : c.label;
}

bool uses_attention(saliency::Metric m) {
  return m == saliency::Metric::Normalized || m == saliency::Metric::Accumulated;
}

}  // namespace

std::vector<std::vector<int>> prompt_salient(const MethodConfig& config, const KvShape& shape,
                                             const float* q, const float* k, int T) {
  const int n_kv = shape.n_kv_heads;
  std::vector<std::vector<int>> out(static_cast<size_t>(n_kv));
  if (!config.given_salient.empty()) {
    for (int h = 0; h < n_kv; ++h) {
      const auto& list = config.given_salient[config.given_salient.size() == 1 ? 0 : size_t(h)];
      for (size_t i = 0; i < list.size(); ++i) {
        if (list[i] < 0 || list[i] >= T) {
          fail("kv cache {}: given salient position {} of KV head {} is outside the prompt of "
               "{} tokens",
               label(config), list[i], h, T);
        }
        if (i > 0 && list[i] <= list[i - 1]) {
          fail("kv cache {}: given salient positions of KV head {} are not strictly ascending "
               "({} after {})",
               label(config), h, list[i], list[i - 1]);
        }
      }
      out[size_t(h)] = list;
    }
    return out;
  }

  // SPEC.md section 3: attention probabilities of the probe rows only (ZipCache), or
  // of every row (probe_all_rows: MiKV's full attention scores).
  std::vector<int> rows;
  if (uses_attention(config.metric) && !config.probe_all_rows) {
    rows = saliency::select_probes(T, config.probes);
    if (rows.empty()) {
      fail("kv cache {}: no probe rows for a prompt of {} tokens (probe ratios {} + {}); give a "
           "positive probe ratio or probe-kind=all",
           label(config), T, config.probes.recent_ratio, config.probes.random_ratio);
    }
  }
  saliency::AttentionShape as;
  as.L = T, as.n_heads = shape.n_heads, as.n_kv_heads = n_kv, as.head_dim = shape.head_dim;
  as.scale = softmax_scale(shape);
  const auto scores =
      saliency::scores(q, k, as, rows, config.metric, config.norm, config.probes.seed);
  ZC_CHECK(scores.size() == size_t(n_kv) * size_t(T));
  for (int h = 0; h < n_kv; ++h) {
    out[size_t(h)] = saliency::top_r(&scores[size_t(h) * size_t(T)], T, config.saliency_ratio);
  }
  return out;
}

std::vector<int> chunk_salient(const MethodConfig& config, const float* prob_sums, int n,
                               uint64_t chunk_seed) {
  std::vector<float> s(static_cast<size_t>(n));
  Rng rng(chunk_seed);
  for (int j = 0; j < n; ++j) {
    switch (config.metric) {
      case saliency::Metric::Normalized: s[size_t(j)] = prob_sums[j] / float(n - j); break;
      case saliency::Metric::Accumulated: s[size_t(j)] = prob_sums[j]; break;
      case saliency::Metric::Recent: s[size_t(j)] = float(j); break;
      case saliency::Metric::Random: s[size_t(j)] = float(rng.uniform()); break;
    }
  }
  return saliency::top_r(s.data(), n, config.saliency_ratio);
}

void quantize_chunk(const MethodConfig& config, int d, const float* k, const float* v,
                    size_t stride, int n, const std::vector<int>& salient, int first_pos,
                    std::vector<MixedBlock>& out) {
  std::vector<bool> is_salient(static_cast<size_t>(n), false);
  for (int i : salient) {
    ZC_CHECK(i >= 0 && i < n);
    is_salient[size_t(i)] = true;
  }
  std::vector<int> regular;
  for (int i = 0; i < n; ++i) {
    if (!is_salient[size_t(i)]) regular.push_back(i);
  }
  const int kgroup = config.key_scheme == quant::Scheme::Groupwise ? config.key_group : 0;
  const int vgroup = config.value_scheme == quant::Scheme::Groupwise ? config.value_group : 0;
  std::vector<float> kb, vb;
  for (const bool high : {true, false}) {
    const auto& set = high ? salient : regular;
    const int size = int(set.size());
    const int per_block = config.stats_block > 0 ? config.stats_block : size;
    for (int start = 0; start < size; start += per_block) {
      const int m = std::min(per_block, size - start);
      kb.resize(size_t(m) * d);
      vb.resize(size_t(m) * d);
      for (int r = 0; r < m; ++r) {
        const size_t from = size_t(set[size_t(start + r)]) * stride;
        std::copy_n(k + from, d, &kb[size_t(r) * d]);
        std::copy_n(v + from, d, &vb[size_t(r) * d]);
      }
      MixedBlock b;
      b.bits = high ? config.bits_high : config.bits_low;
      b.k = quant::quantize(kb.data(), m, d, b.bits, config.key_scheme, kgroup);
      b.v = quant::quantize(vb.data(), m, d, b.bits, config.value_scheme, vgroup);
      if (config.record_positions) {
        for (int r = 0; r < m; ++r) b.positions.push_back(first_pos + set[size_t(start + r)]);
      }
      out.push_back(std::move(b));
    }
  }
}

}  // namespace zc::kv
