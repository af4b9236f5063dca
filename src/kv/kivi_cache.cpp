// KIVI (SPEC.md section 2): keys per channel over groups of G consecutive tokens,
// values per token in groups of G channels, the newest tokens in an fp16 residual
// window. Streaming rule: whenever the window holds R + G tokens its oldest G are
// quantized (keys as one channelwise group of G tokens, values as G groupwise rows)
// and leave it.
//
// Prefill follows the same rule exactly: the T tokens enter the window (as fp16, as
// decode tokens do) and groups of G leave it while it holds R + G or more. After any
// call the window therefore holds min(n, R + (n - R) mod G) tokens (n = tokens seen):
// the newest R .. R+G-1 tokens once n >= R; a prefill of T tokens followed by decode
// steps stores bit for bit what T + steps single appends would store. Blocks keep
// position order, so no positions are needed.
//
// Decode quantizes first, then attends: the step's query sees exactly what the cache
// holds afterwards (snapshot() after the step).
#include "kv/attention.h"
#include "kv/policy.h"
#include "kv/token_rows.h"

namespace zc::kv {
namespace {

struct KiviBlock {  // G tokens: keys channelwise, values groupwise (group G)
  quant::QuantizedMatrix k, v;
};

class KiviCache final : public CacheBase {
 public:
  KiviCache(const MethodConfig& config, const KvShape& shape)
      : CacheBase(config, shape),
        blocks_(size_t(shape.n_kv_heads)),
        window_(size_t(shape.n_kv_heads), TokenRows<uint16_t>(shape.head_dim)) {}

  void prefill(const float* q, const float* k, const float* v, int T, float* out) override {
    check_call("prefill", q, k, v, T, out);
    prefill_attention(unwindowed(), q, k, v, T, length_, sources(), nullptr, out);
    const int d = shape_.head_dim;
    const size_t stride = size_t(shape_.n_kv_heads) * size_t(d);
    for (int t = 0; t < T; ++t) {
      for (int h = 0; h < shape_.n_kv_heads; ++h) {
        window_[size_t(h)].push(k + size_t(t) * stride + size_t(h) * d,
                                v + size_t(t) * stride + size_t(h) * d);
      }
    }
    length_ += T;
    compress();
  }

  void append(const float* q, const float* k, const float* v, float* out) override {
    check_call("append", q, k, v, 1, out);
    const int d = shape_.head_dim;
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      window_[size_t(h)].push(k + size_t(h) * d, v + size_t(h) * d);
    }
    ++length_;
    compress();
    decode_attention(unwindowed(), q, length_ - 1, sources(), out);
  }

  MemoryReport memory() const override {
    MemoryReport r = base_report();
    r.tokens_kept = size_t(length_);
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      for (const auto& b : blocks_[size_t(h)]) {
        r.code_bytes += b.k.code_bytes() + b.v.code_bytes();
        r.param_bytes += b.k.param_bytes() + b.v.param_bytes();
      }
      r.window_bytes += window_[size_t(h)].bytes();
    }
    return r;
  }

  Snapshot snapshot() const override {
    Snapshot s = empty_snapshot();
    const int d = shape_.head_dim, G = config_.group;
    std::vector<float> kb(size_t(G) * d), vb(size_t(G) * d);
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      int pos = 0;
      for (const auto& b : blocks_[size_t(h)]) {
        quant::dequantize(b.k, kb.data());
        quant::dequantize(b.v, vb.data());
        for (int r = 0; r < G; ++r, ++pos) {
          std::copy_n(&kb[size_t(r) * d], d, &s.k[row_offset(h, pos)]);
          std::copy_n(&vb[size_t(r) * d], d, &s.v[row_offset(h, pos)]);
          s.bits[size_t(h) * size_t(length_) + size_t(pos)] = uint8_t(config_.kivi_bits);
        }
      }
      const auto& w = window_[size_t(h)];
      for (int r = 0; r < w.rows(); ++r, ++pos) {
        w.get(r, &s.k[row_offset(h, pos)], &s.v[row_offset(h, pos)]);
        s.bits[size_t(h) * size_t(length_) + size_t(pos)] = 16;
      }
      ZC_CHECK(pos == length_);
    }
    return s;
  }

 private:
  SourceFn sources() const {
    return [this](int h, std::vector<RowSource>& out) {
      for (const auto& b : blocks_[size_t(h)]) out.push_back(RowSource::quant(b.k, b.v));
      out.push_back(window_[size_t(h)].source());
    };
  }

  // The streaming rule: while the window holds R + G tokens, quantize its oldest G.
  void compress() {
    const int G = config_.group, R = config_.residual, d = shape_.head_dim;
    std::vector<float> kb(size_t(G) * d), vb(size_t(G) * d);
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      auto& w = window_[size_t(h)];
      while (w.rows() >= R + G) {
        for (int r = 0; r < G; ++r) w.get(r, &kb[size_t(r) * d], &vb[size_t(r) * d]);
        KiviBlock b;
        b.k = quant::quantize(kb.data(), G, d, config_.kivi_bits, quant::Scheme::Channelwise);
        b.v = quant::quantize(vb.data(), G, d, config_.kivi_bits, quant::Scheme::Groupwise, G);
        blocks_[size_t(h)].push_back(std::move(b));
        w.erase_front(G);
      }
    }
  }

  std::vector<std::vector<KiviBlock>> blocks_;
  std::vector<TokenRows<uint16_t>> window_;
};

}  // namespace

std::unique_ptr<Cache> make_kivi_cache(const MethodConfig& config, const KvShape& shape) {
  return std::make_unique<KiviCache>(config, shape);
}

}  // namespace zc::kv
