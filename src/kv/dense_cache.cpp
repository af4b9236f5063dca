// The uncompressed policies (SPEC.md section 5, "fp16: no compression"): keys and
// values stored as fp16 bits (2 bytes a value) or, for the Fp32 reference, as floats.
// They honour KvShape::sliding_window (Mistral): a query at position p sees keys at
// positions > p - W, and a row no later query can see is freed.
#include <algorithm>
#include <type_traits>

#include "kv/attention.h"
#include "kv/policy.h"
#include "kv/token_rows.h"

namespace zc::kv {
namespace {

template <typename Elem>
class DenseCache final : public CacheBase {
 public:
  DenseCache(const MethodConfig& config, const KvShape& shape)
      : CacheBase(config, shape), heads_(size_t(shape.n_kv_heads), TokenRows<Elem>(shape.head_dim)) {}

  void prefill(const float* q, const float* k, const float* v, int T, float* out) override {
    check_call("prefill", q, k, v, T, out, /*evicts_by_window=*/true);
    // Prefill attention reads the exact k/v given (cache.h); older tokens as stored.
    prefill_attention(shape_, q, k, v, T, length_, sources(), nullptr, out);
    const size_t stride = size_t(shape_.n_kv_heads) * size_t(shape_.head_dim);
    for (int t = 0; t < T; ++t) {
      for (int h = 0; h < shape_.n_kv_heads; ++h) {
        const size_t at = size_t(t) * stride + size_t(h) * size_t(shape_.head_dim);
        heads_[size_t(h)].push(k + at, v + at);
      }
    }
    length_ += T;
    evict_outside_window();
  }

  void append(const float* q, const float* k, const float* v, float* out) override {
    check_call("append", q, k, v, 1, out, /*evicts_by_window=*/true);
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      const size_t at = size_t(h) * size_t(shape_.head_dim);
      heads_[size_t(h)].push(k + at, v + at);
    }
    ++length_;
    decode_attention(shape_, q, length_ - 1, sources(), out);
    evict_outside_window();
  }

  MemoryReport memory() const override {
    MemoryReport r = base_report();
    r.tokens_kept = size_t(heads_[0].rows());
    for (const auto& rows : heads_) r.window_bytes += rows.bytes();
    return r;
  }

  Snapshot snapshot() const override {
    Snapshot s = empty_snapshot();
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      const auto& rows = heads_[size_t(h)];
      for (int r = 0; r < rows.rows(); ++r) {
        const int pos = first_pos() + r;
        rows.get(r, &s.k[row_offset(h, pos)], &s.v[row_offset(h, pos)]);
        s.bits[size_t(h) * size_t(length_) + size_t(pos)] = std::is_same_v<Elem, float> ? 32 : 16;
      }
    }
    return s;
  }

 private:
  // Every head holds the same positions: the newest rows() tokens.
  int first_pos() const { return length_ - heads_[0].rows(); }

  SourceFn sources() const {
    return [this](int h, std::vector<RowSource>& out) {
      RowSource s = heads_[size_t(h)].source();
      s.first_pos = first_pos();
      out.push_back(s);
    };
  }

  // The next query (position length_) sees positions > length_ - W: older rows go.
  void evict_outside_window() {
    const int window = shape_.sliding_window;
    if (window <= 0) return;
    const int drop = std::max(0, (length_ - window + 1) - first_pos());
    if (drop == 0) return;
    for (auto& rows : heads_) rows.erase_front(drop);
  }

  std::vector<TokenRows<Elem>> heads_;
};

}  // namespace

std::unique_ptr<Cache> make_dense_cache(const MethodConfig& config, const KvShape& shape) {
  if (config.method == Method::Fp32) return std::make_unique<DenseCache<float>>(config, shape);
  return std::make_unique<DenseCache<uint16_t>>(config, shape);
}

}  // namespace zc::kv
