// Checks every compressed policy must pass, independent of its quantization: prefill
// output equals exact attention over the given k/v, and each decode step's output
// equals double-precision attention over the cache's own snapshot() after the step
// (dequantized K/V, evicted tokens excluded). This tests the attention plumbing (row
// sources, online softmax merge, GQA) separately from what is stored.
#pragma once
#include <functional>
#include <string>

#include "kv/cache.h"
#include "kv_reference.h"

namespace zc_test {

inline zc::kv::MethodConfig recording_config(const std::string& spec) {
  auto c = zc::kv::parse_method(spec);
  c.record_positions = true;
  return c;
}

inline zc::kv::KvShape shape_of(const Dims& d) {
  zc::kv::KvShape s;
  s.n_heads = d.H, s.n_kv_heads = d.n_kv, s.head_dim = d.d;
  return s;
}

// Prefills x's first T tokens, then appends the rest one at a time. After the prefill
// and after every step, `after` (when given) inspects the cache.
inline void run_policy(const zc::kv::MethodConfig& config, const Tokens& x, int T,
                       const std::function<void(const zc::kv::Cache&)>& after = {}) {
  auto cache = zc::kv::make_cache(config, shape_of(x.dims));
  const Dims& dims = x.dims;
  const size_t qsz = size_t(dims.H) * dims.d;
  std::vector<float> out(size_t(T) * qsz);
  cache->prefill(x.qt(0), x.kt(0), x.vt(0), T, out.data());
  const auto exact = store_from_tokens(x, T, false);
  for (int t = 0; t < T; ++t) {
    expect_close(&out[size_t(t) * qsz], attend(x.qt(t), dims, exact, t + 1), 2e-5,
                 "prefill vs exact attention");
    if (testing::Test::HasFatalFailure()) return;
  }
  ASSERT_EQ(cache->length(), T);
  if (after) after(*cache);
  for (int t = T; t < x.T; ++t) {
    std::vector<float> o(qsz);
    cache->append(x.qt(t), x.kt(t), x.vt(t), o.data());
    ASSERT_EQ(cache->length(), t + 1);
    const auto snap = cache->snapshot();
    ASSERT_EQ(snap.length, t + 1);
    expect_close(o.data(), attend(x.qt(t), dims, store_from_snapshot(snap), t + 1), 2e-5,
                 "decode vs attention over snapshot()");
    if (testing::Test::HasFatalFailure()) {
      ADD_FAILURE() << "at decode step for position " << t;
      return;
    }
    if (after) after(*cache);
  }
}

}  // namespace zc_test
