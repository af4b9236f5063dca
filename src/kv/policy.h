// What every cache policy shares (internal to src/kv): the configuration, the shape,
// the length, input checks and the factories make_cache() dispatches to.
#pragma once
#include <memory>
#include <string>

#include "kv/cache.h"

namespace zc::kv {

class CacheBase : public Cache {
 public:
  CacheBase(const MethodConfig& config, const KvShape& shape);
  int length() const override { return length_; }
  const KvShape& shape() const override { return shape_; }

 protected:
  std::string name() const;
  // Checks the pointers and T of a prefill/append call and that the sequence stays
  // inside the model's sliding window (only fp16/fp32 evict by window: the others
  // refuse a sequence longer than it rather than silently attend differently).
  void check_call(const char* what, const float* q, const float* k, const float* v, int T,
                  const float* out, bool evicts_by_window = false) const;
  // tokens_seen and fp16_bytes (= 2 tensors x 2 bytes x n_kv x d x tokens_seen).
  MemoryReport base_report() const;
  // An all-zero snapshot of the current length (bits 0 = nothing stored yet).
  Snapshot empty_snapshot() const;
  // The shape the attention routines get from policies that do not evict by window:
  // check_call keeps their sequences inside the window, where it has no effect.
  KvShape unwindowed() const {
    KvShape s = shape_;
    s.sliding_window = 0;
    return s;
  }
  // Policies that reorder or evict tokens need MethodConfig::record_positions.
  void require_positions() const;
  size_t row_offset(int kv_head, int pos) const {  // into Snapshot::k / v
    return (size_t(kv_head) * size_t(length_) + size_t(pos)) * size_t(shape_.head_dim);
  }

  MethodConfig config_;
  KvShape shape_;
  int length_ = 0;
};

std::unique_ptr<Cache> make_dense_cache(const MethodConfig& config, const KvShape& shape);
std::unique_ptr<Cache> make_kivi_cache(const MethodConfig& config, const KvShape& shape);
std::unique_ptr<Cache> make_mixed_cache(const MethodConfig& config, const KvShape& shape);
std::unique_ptr<Cache> make_h2o_cache(const MethodConfig& config, const KvShape& shape);

}  // namespace zc::kv
