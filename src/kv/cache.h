// The one interface the model calls for attention over a KV cache (one layer, one
// sequence). fp16, KIVI, ZipCache, H2O and MiKV differ only behind it.
//
// Layouts (token-major, as the model produces them): q [T, n_heads, d],
// k and v [T, n_kv_heads, d] with keys after RoPE, out [T, n_heads, d].
// Grouped-query attention: query head h reads KV head h / (n_heads / n_kv_heads).
// Softmax scale is 1/sqrt(d) unless KvShape::scale is set.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kv/method.h"

namespace zc::kv {

struct KvShape {
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float scale = 0.0f;      // 0: 1/sqrt(head_dim)
  int sliding_window = 0;  // 0: none (Mistral sets it; only fp16 supports eviction by window)
};

// Exact storage, in bytes, of what the cache holds.
struct MemoryReport {
  size_t tokens_seen = 0;     // tokens appended so far
  size_t tokens_kept = 0;     // tokens attention can still see (H2O evicts)
  size_t code_bytes = 0;      // packed quantization codes
  size_t param_bytes = 0;     // fp16 lo/step, channel scales
  size_t window_bytes = 0;    // tokens kept in fp16 (residual / streaming window, fp16 policy)
  size_t metadata_bytes = 0;  // per-token bookkeeping the policy needs (H2O scores, ...)
  size_t fp16_bytes = 0;      // what an fp16 cache would hold for tokens_seen: 2*2*kv*d*L

  size_t total() const { return code_bytes + param_bytes + window_bytes + metadata_bytes; }
  double ratio() const { return total() ? double(fp16_bytes) / double(total()) : 0.0; }
  double bits_per_value() const { return fp16_bytes ? 16.0 * double(total()) / double(fp16_bytes) : 0.0; }
  MemoryReport& operator+=(const MemoryReport& o);
};

// What the cache holds, dequantized, for analysis (zipcache kv, tests).
struct Snapshot {
  int n_kv_heads = 0, head_dim = 0, length = 0;  // length = tokens seen
  std::vector<float> k, v;        // [n_kv_heads, length, d]; rows of evicted tokens are 0
  std::vector<uint8_t> bits;      // [n_kv_heads, length]: 16 fp16, 8/4/2 quantized, 0 evicted
};

class Cache {
 public:
  virtual ~Cache() = default;
  // Appends T >= 1 tokens and returns causal attention of their queries over the
  // cache plus themselves. Prefill attention uses the exact k/v given (as the
  // papers' flash prefill does); compression affects what later queries see.
  virtual void prefill(const float* q, const float* k, const float* v, int T, float* out) = 0;
  // One decode step: appends one token and returns its attention over the cache.
  virtual void append(const float* q, const float* k, const float* v, float* out) = 0;
  virtual int length() const = 0;
  virtual MemoryReport memory() const = 0;
  // Needs MethodConfig::record_positions for policies that reorder tokens.
  virtual Snapshot snapshot() const = 0;
  virtual const KvShape& shape() const = 0;
};

std::unique_ptr<Cache> make_cache(const MethodConfig& config, const KvShape& shape);

}  // namespace zc::kv
