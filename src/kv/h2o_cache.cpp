// H2O (SPEC.md section 5): per KV head, keep n = max(1, round(budget * L)) of the L
// tokens seen in fp16: the n - floor(n/2) most recent and the floor(n/2) others with
// the highest accumulated attention (ties: the later token); evict the rest for good.
// A token's score is the attention probability it has received from every query so
// far, summed over the query heads of its KV head (prefill: the full attention of the
// prompt; decode: each step's query), kept as one fp32 per kept token (metadata).
//
// Decode order: append the token (score 0, it is among the recent), evict down to n,
// attend over what is kept, add the step's probabilities to the scores. So each
// step's query sees exactly what snapshot() shows after it.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "kv/attention.h"
#include "kv/policy.h"
#include "kv/token_rows.h"

namespace zc::kv {
namespace {

class H2OCache final : public CacheBase {
 public:
  H2OCache(const MethodConfig& config, const KvShape& shape)
      : CacheBase(config, shape),
        heads_(size_t(shape.n_kv_heads), Head{TokenRows<uint16_t>(shape.head_dim), {}, {}}) {}

  void prefill(const float* q, const float* k, const float* v, int T, float* out) override {
    check_call("prefill", q, k, v, T, out);
    const int d = shape_.head_dim, n_kv = shape_.n_kv_heads;
    const size_t stride = size_t(n_kv) * size_t(d);
    std::vector<float> probs(size_t(n_kv) * size_t(T), 0.0f);
    prefill_attention(unwindowed(), q, k, v, T, length_, sources(), probs.data(), out);
    for (int h = 0; h < n_kv; ++h) {
      Head& head = heads_[size_t(h)];
      for (int t = 0; t < T; ++t) {
        head.rows.push(k + size_t(t) * stride + size_t(h) * d,
                       v + size_t(t) * stride + size_t(h) * d);
        head.score.push_back(probs[size_t(h) * size_t(T) + size_t(t)]);
        if (config_.record_positions) head.pos.push_back(length_ + t);
      }
    }
    length_ += T;
    evict();
  }

  void append(const float* q, const float* k, const float* v, float* out) override {
    check_call("append", q, k, v, 1, out);
    const int d = shape_.head_dim;
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      Head& head = heads_[size_t(h)];
      head.rows.push(k + size_t(h) * d, v + size_t(h) * d);
      head.score.push_back(0.0f);
      if (config_.record_positions) head.pos.push_back(length_);
    }
    ++length_;
    evict();
    decode_attention(unwindowed(), q, length_ - 1, sources(), out);
  }

  MemoryReport memory() const override {
    MemoryReport r = base_report();
    r.tokens_kept = size_t(heads_[0].rows.rows());
    for (const auto& head : heads_) {
      r.window_bytes += head.rows.bytes();
      r.metadata_bytes += head.score.size() * sizeof(float);
    }
    return r;
  }

  Snapshot snapshot() const override {
    require_positions();
    Snapshot s = empty_snapshot();
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      const Head& head = heads_[size_t(h)];
      for (int r = 0; r < head.rows.rows(); ++r) {
        const int pos = head.pos[size_t(r)];
        head.rows.get(r, &s.k[row_offset(h, pos)], &s.v[row_offset(h, pos)]);
        s.bits[size_t(h) * size_t(length_) + size_t(pos)] = 16;
      }
    }
    return s;
  }

 private:
  struct Head {
    TokenRows<uint16_t> rows;  // kept tokens in position order
    std::vector<float> score;  // accumulated attention per kept token
    std::vector<int> pos;      // positions (record_positions only)
  };

  SourceFn sources() {
    return [this](int h, std::vector<RowSource>& out) {
      Head& head = heads_[size_t(h)];
      RowSource s = head.rows.source();
      s.probs = head.score.data();
      out.push_back(s);
    };
  }

  int budget_tokens() const {
    const auto n = long(std::lround(config_.budget * double(length_)));
    return int(std::clamp(n, 1L, long(length_)));
  }

  void evict() {
    const int n = budget_tokens(), heavy = n / 2, recent = n - heavy;
    for (auto& head : heads_) {
      const int m = head.rows.rows();
      if (m <= n) continue;
      // Heavy hitters among the tokens older than the recent window.
      std::vector<int> order(static_cast<size_t>(m - recent));
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + heavy, order.end(), [&](int a, int b) {
        const float sa = head.score[size_t(a)], sb = head.score[size_t(b)];
        return sa != sb ? sa > sb : a > b;
      });
      std::vector<bool> keep(static_cast<size_t>(m), false);
      for (int i = 0; i < heavy; ++i) keep[size_t(order[size_t(i)])] = true;
      for (int r = m - recent; r < m; ++r) keep[size_t(r)] = true;
      head.rows.keep_only(keep);
      size_t out = 0;
      for (int r = 0; r < m; ++r) {
        if (!keep[size_t(r)]) continue;
        head.score[out] = head.score[size_t(r)];
        if (!head.pos.empty()) head.pos[out] = head.pos[size_t(r)];
        ++out;
      }
      head.score.resize(out);
      if (!head.pos.empty()) head.pos.resize(out);
    }
  }

  std::vector<Head> heads_;
};

}  // namespace

std::unique_ptr<Cache> make_h2o_cache(const MethodConfig& config, const KvShape& shape) {
  return std::make_unique<H2OCache>(config, shape);
}

}  // namespace zc::kv
