// make_cache (validation of the shape and of the method's options against it), the
// memory report's sum, and the parts every policy shares (policy.h).
#include <cmath>

#include "core/error.h"
#include "kv/policy.h"

namespace zc::kv {

// Every field adds: summed over the layers of a sequence the token counts count
// (token, layer) pairs, like the bytes do.
MemoryReport& MemoryReport::operator+=(const MemoryReport& o) {
  tokens_seen += o.tokens_seen;
  tokens_kept += o.tokens_kept;
  code_bytes += o.code_bytes;
  param_bytes += o.param_bytes;
  window_bytes += o.window_bytes;
  metadata_bytes += o.metadata_bytes;
  fp16_bytes += o.fp16_bytes;
  return *this;
}

CacheBase::CacheBase(const MethodConfig& config, const KvShape& shape)
    : config_(config), shape_(shape) {}

std::string CacheBase::name() const {
  return config_.label.empty() ? method_name(config_.method) : config_.label;
}

void CacheBase::check_call(const char* what, const float* q, const float* k, const float* v,
                           int T, const float* out, bool evicts_by_window) const {
  if (T < 1) fail("kv cache {}: {}: T = {} (at least 1 token)", name(), what, T);
  if (!q || !k || !v || !out) fail("kv cache {}: {}: null q/k/v/out buffer", name(), what);
  const int window = shape_.sliding_window;
  if (!evicts_by_window && window > 0 && length_ + T > window) {
    fail("kv cache {}: {}: sequence of {} tokens exceeds the model's sliding window of {} "
         "(only fp16/fp32 support sliding-window eviction)",
         name(), what, length_ + T, window);
  }
}

MemoryReport CacheBase::base_report() const {
  MemoryReport r;
  r.tokens_seen = size_t(length_);
  r.fp16_bytes = 2 * 2 * size_t(shape_.n_kv_heads) * size_t(shape_.head_dim) * size_t(length_);
  return r;
}

Snapshot CacheBase::empty_snapshot() const {
  Snapshot s;
  s.n_kv_heads = shape_.n_kv_heads, s.head_dim = shape_.head_dim, s.length = length_;
  const size_t rows = size_t(shape_.n_kv_heads) * size_t(length_);
  s.k.assign(rows * size_t(shape_.head_dim), 0.0f);
  s.v.assign(rows * size_t(shape_.head_dim), 0.0f);
  s.bits.assign(rows, 0);
  return s;
}

void CacheBase::require_positions() const {
  if (!config_.record_positions) {
    fail("kv cache {}: snapshot() needs MethodConfig::record_positions (this policy reorders "
         "or evicts tokens)",
         name());
  }
}

namespace {

void check_shape(const KvShape& s) {
  if (s.n_heads < 1 || s.n_kv_heads < 1 || s.head_dim < 1) {
    fail("kv cache: bad shape n_heads={} n_kv_heads={} head_dim={} (each at least 1)", s.n_heads,
         s.n_kv_heads, s.head_dim);
  }
  if (s.n_heads % s.n_kv_heads != 0) {
    fail("kv cache: n_heads {} is not a multiple of n_kv_heads {}", s.n_heads, s.n_kv_heads);
  }
  if (!std::isfinite(s.scale) || s.scale < 0.0f) fail("kv cache: bad softmax scale {}", s.scale);
  if (s.sliding_window < 0) fail("kv cache: negative sliding_window {}", s.sliding_window);
}

void check_bits(const std::string& name, const char* field, int bits) {
  if (bits != 2 && bits != 4 && bits != 8) {
    fail("kv cache {}: {} = {} (supported: 2, 4, 8)", name, field, bits);
  }
}

void check_group(const std::string& name, const char* field, quant::Scheme scheme, int group,
                 int head_dim) {
  if (scheme == quant::Scheme::Groupwise && (group < 1 || head_dim % group != 0)) {
    fail("kv cache {}: {} {} does not divide head_dim {}", name, field, group, head_dim);
  }
}

void check_config(const MethodConfig& c, const KvShape& s) {
  const std::string name = c.label.empty() ? method_name(c.method) : c.label;
  switch (c.method) {
    case Method::Fp32:
    case Method::Fp16: break;
    case Method::Kivi:
      check_bits(name, "kivi_bits", c.kivi_bits);
      if (c.group < 1 || c.residual < 0 || c.residual % c.group != 0) {
        fail("kv cache {}: residual {} must be a non-negative multiple of group {} (>= 1)", name,
             c.residual, c.group);
      }
      // Values are quantized per token in groups of G channels (SPEC.md section 2).
      check_group(name, "group", quant::Scheme::Groupwise, c.group, s.head_dim);
      break;
    case Method::ZipCache:
    case Method::MiKV:
      check_bits(name, "bits_high", c.bits_high);
      check_bits(name, "bits_low", c.bits_low);
      if (!(c.saliency_ratio >= 0.0 && c.saliency_ratio <= 1.0)) {
        fail("kv cache {}: saliency_ratio {} outside [0, 1]", name, c.saliency_ratio);
      }
      if (c.stream_gap < 1) fail("kv cache {}: stream_gap {} (at least 1)", name, c.stream_gap);
      if (c.stats_block < 0) fail("kv cache {}: negative stats_block {}", name, c.stats_block);
      check_group(name, "key_group", c.key_scheme, c.key_group, s.head_dim);
      check_group(name, "value_group", c.value_scheme, c.value_group, s.head_dim);
      if (!c.given_salient.empty() && c.given_salient.size() != 1 &&
          c.given_salient.size() != size_t(s.n_kv_heads)) {
        fail("kv cache {}: given_salient has {} lists (1 or n_kv_heads = {})", name,
             c.given_salient.size(), s.n_kv_heads);
      }
      break;
    case Method::H2O:
      if (!(c.budget > 0.0 && c.budget <= 1.0)) {
        fail("kv cache {}: budget {} outside (0, 1]", name, c.budget);
      }
      break;
  }
}

}  // namespace

std::unique_ptr<Cache> make_cache(const MethodConfig& config, const KvShape& shape) {
  check_shape(shape);
  check_config(config, shape);
  switch (config.method) {
    case Method::Fp32:
    case Method::Fp16: return make_dense_cache(config, shape);
    case Method::Kivi: return make_kivi_cache(config, shape);
    case Method::ZipCache:
    case Method::MiKV: return make_mixed_cache(config, shape);
    case Method::H2O: return make_h2o_cache(config, shape);
  }
  fail("kv cache: unknown method");
}

}  // namespace zc::kv
