// Host side of the flash prefill kernel (prefill_attention.h).
#include "cuda/kv/prefill_attention.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include "core/error.h"
#include "cuda/core/device.h"
#include "cuda/kv/prefill_launch.h"

namespace zc::cuda {

void prefill_attention(const PrefillShape& shape, Dtype type, const void* q, const void* k,
                       const void* v, void* out, cudaStream_t stream, float* lse) {
  if (shape.batch < 1 || shape.tokens < 1 || shape.n_kv_heads < 1 || shape.n_heads < 1 ||
      shape.n_heads % shape.n_kv_heads != 0) {
    fail("cuda prefill attention: bad shape (batch {}, {} tokens, {} heads, {} KV heads)",
         shape.batch, shape.tokens, shape.n_heads, shape.n_kv_heads);
  }
  if (shape.head_dim != 64 && shape.head_dim != 128) {
    fail("cuda prefill attention: head_dim {} is not supported (64 or 128)", shape.head_dim);
  }
  if (shape.n_heads > 65535 || shape.batch > 65535) {
    fail("cuda prefill attention: {} heads x batch {} exceeds the grid", shape.n_heads, shape.batch);
  }
  if (!q || !k || !v || !out) fail("cuda prefill attention: null tensor");
  // The kernel moves 16-byte vectors (rows are 64 or 128 elements, so only the base
  // pointers can break the alignment).
  for (const void* ptr : {q, k, v, static_cast<const void*>(out)}) {
    if (reinterpret_cast<std::uintptr_t>(ptr) % 16 != 0) {
      fail("cuda prefill attention: tensor at {} is not 16-byte aligned", ptr);
    }
  }
  // One CTA per (query block, head, sequence) on a 1-D grid.
  const long long rows = detail::prefill_rows_per_cta();
  const long long blocks = (shape.tokens + rows - 1) / rows * shape.n_heads * static_cast<long long>(shape.batch);
  if (blocks > std::numeric_limits<int>::max()) {
    fail("cuda prefill attention: {} tokens x {} heads x batch {} exceeds the grid", shape.tokens,
         shape.n_heads, shape.batch);
  }
  detail::PrefillParams p;
  p.q = q, p.k = k, p.v = v, p.out = out, p.lse = lse;
  p.batch = shape.batch, p.tokens = shape.tokens, p.n_heads = shape.n_heads;
  p.n_kv = shape.n_kv_heads, p.d = shape.head_dim;
  const float scale =
      shape.scale > 0.0f ? shape.scale : 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  // In double, as the probe pass does: its column kernel may take these rows' lse.
  p.scale_log2 = static_cast<float>(static_cast<double>(scale) * 1.4426950408889634);
  check(detail::launch_prefill(p, type == Dtype::BF16, stream), "prefill attention kernel");
}

}  // namespace zc::cuda
