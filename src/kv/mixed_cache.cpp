// ZipCache (SPEC.md section 4) and MiKV (section 5, the same code with accumulated
// scores over all rows and groupwise quantization: the difference is configuration).
//
// Storage per KV head: a list of quantized blocks (salient at bits_high, regular at
// bits_low, in any order: softmax ignores key order) and an fp16 streaming window.
//  - Prefill into an empty cache: saliency of the prompt (probes), then every prompt
//    token is quantized at once (prompt_salient + quantize_chunk on the exact k/v).
//  - Decode: new tokens stay in the fp16 window, each with the sum of the attention
//    probabilities it has received since it arrived. Once stream_gap tokens have
//    gathered, the next append first quantizes them as one chunk (saliency from those
//    sums, normalized by the n - j queries that saw token j), then adds its own token:
//    the chunk's saliency therefore covers the queries up to and including the last
//    token's own, and each step's query sees exactly what snapshot() shows after it.
//    Quantized blocks are never touched again (no re-quantization).
//  - Prefill into a non-empty cache: the new tokens join the window like decode
//    tokens (their sums from the prefill queries), and the window is quantized as one
//    chunk at the end if it holds stream_gap tokens or more.
// Positions are kept only with record_positions (diagnostics, not counted).
#include "core/thread_pool.h"
#include "kv/attention.h"
#include "kv/mixed_chunk.h"
#include "kv/policy.h"
#include "kv/token_rows.h"

namespace zc::kv {
namespace {

class MixedCache final : public CacheBase {
 public:
  MixedCache(const MethodConfig& config, const KvShape& shape)
      : CacheBase(config, shape),
        heads_(size_t(shape.n_kv_heads), Head{{}, TokenRows<uint16_t>(shape.head_dim), {}}),
        track_(config.metric == saliency::Metric::Normalized ||
               config.metric == saliency::Metric::Accumulated) {}

  void prefill(const float* q, const float* k, const float* v, int T, float* out) override {
    check_call("prefill", q, k, v, T, out);
    const int d = shape_.head_dim, n_kv = shape_.n_kv_heads;
    const size_t stride = size_t(n_kv) * size_t(d);
    if (length_ == 0) {
      prefill_attention(unwindowed(), q, k, v, T, 0, [](int, std::vector<RowSource>&) {}, nullptr, out);
      const auto salient = prompt_salient(config_, shape_, q, k, T);
      parallel_for(size_t(n_kv), [&](size_t h) {
        quantize_chunk(config_, d, k + h * size_t(d), v + h * size_t(d), stride, T, salient[h], 0,
                       heads_[h].blocks);
      });
      length_ = T;
      return;
    }
    flush_if_full();
    std::vector<float> probs(track_ ? size_t(n_kv) * size_t(T) : 0, 0.0f);
    prefill_attention(unwindowed(), q, k, v, T, length_, sources(), track_ ? probs.data() : nullptr,
                      out);
    for (int h = 0; h < n_kv; ++h) {
      Head& head = heads_[size_t(h)];
      for (int t = 0; t < T; ++t) {
        head.window.push(k + size_t(t) * stride + size_t(h) * d,
                         v + size_t(t) * stride + size_t(h) * d);
        if (track_) head.sums.push_back(probs[size_t(h) * size_t(T) + size_t(t)]);
      }
    }
    length_ += T;
    flush_if_full();
  }

  void append(const float* q, const float* k, const float* v, float* out) override {
    check_call("append", q, k, v, 1, out);
    flush_if_full();
    const int d = shape_.head_dim;
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      Head& head = heads_[size_t(h)];
      head.window.push(k + size_t(h) * d, v + size_t(h) * d);
      if (track_) head.sums.push_back(0.0f);
    }
    ++length_;
    decode_attention(unwindowed(), q, length_ - 1, sources(), out);
  }

  MemoryReport memory() const override {
    MemoryReport r = base_report();
    r.tokens_kept = size_t(length_);
    for (const auto& head : heads_) {
      for (const auto& b : head.blocks) {
        r.code_bytes += b.k.code_bytes() + b.v.code_bytes();
        r.param_bytes += b.k.param_bytes() + b.v.param_bytes();
      }
      r.window_bytes += head.window.bytes();
      r.metadata_bytes += head.sums.size() * sizeof(float);  // streaming saliency sums
    }
    return r;
  }

  Snapshot snapshot() const override {
    require_positions();
    Snapshot s = empty_snapshot();
    const int d = shape_.head_dim;
    std::vector<float> kb, vb;
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      const Head& head = heads_[size_t(h)];
      for (const auto& b : head.blocks) {
        kb.resize(size_t(b.k.rows) * d);
        vb.resize(size_t(b.v.rows) * d);
        quant::dequantize(b.k, kb.data());
        quant::dequantize(b.v, vb.data());
        ZC_CHECK(b.positions.size() == size_t(b.k.rows));
        for (int r = 0; r < b.k.rows; ++r) {
          const int pos = b.positions[size_t(r)];
          std::copy_n(&kb[size_t(r) * d], d, &s.k[row_offset(h, pos)]);
          std::copy_n(&vb[size_t(r) * d], d, &s.v[row_offset(h, pos)]);
          s.bits[size_t(h) * size_t(length_) + size_t(pos)] = uint8_t(b.bits);
        }
      }
      const int first = length_ - head.window.rows();  // the window: the newest tokens
      for (int r = 0; r < head.window.rows(); ++r) {
        head.window.get(r, &s.k[row_offset(h, first + r)], &s.v[row_offset(h, first + r)]);
        s.bits[size_t(h) * size_t(length_) + size_t(first + r)] = 16;
      }
    }
    return s;
  }

 private:
  struct Head {
    std::vector<MixedBlock> blocks;
    TokenRows<uint16_t> window;
    std::vector<float> sums;  // attention received per window token (when track_)
  };

  SourceFn sources() {
    return [this](int h, std::vector<RowSource>& out) {
      Head& head = heads_[size_t(h)];
      for (const auto& b : head.blocks) out.push_back(RowSource::quant(b.k, b.v));
      RowSource w = head.window.source();
      if (track_) w.probs = head.sums.data();
      out.push_back(w);
    };
  }

  // Quantizes the window as one chunk once it holds stream_gap tokens (SPEC.md
  // section 4, "Decode (streaming)").
  void flush_if_full() {
    const int n = heads_[0].window.rows();
    if (n < config_.stream_gap) return;
    const int d = shape_.head_dim;
    const uint64_t chunk_seed = config_.probes.seed + 0x9E3779B97F4A7C15ull * uint64_t(++chunks_);
    parallel_for(heads_.size(), [&](size_t h) {
      Head& head = heads_[h];
      std::vector<float> kb(size_t(n) * d), vb(size_t(n) * d);
      for (int r = 0; r < n; ++r) head.window.get(r, &kb[size_t(r) * d], &vb[size_t(r) * d]);
      const auto salient = chunk_salient(config_, head.sums.data(), n, chunk_seed + h);
      quantize_chunk(config_, d, kb.data(), vb.data(), size_t(d), n, salient, length_ - n,
                     head.blocks);
      head.window.clear();
      head.sums.clear();
    });
  }

  std::vector<Head> heads_;
  bool track_ = false;  // the metric needs the attention the window tokens receive
  uint64_t chunks_ = 0;
};

}  // namespace

std::unique_ptr<Cache> make_mixed_cache(const MethodConfig& config, const KvShape& shape) {
  return std::make_unique<MixedCache>(config, shape);
}

}  // namespace zc::kv
