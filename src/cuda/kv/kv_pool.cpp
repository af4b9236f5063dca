// Host bookkeeping of the GPU KV block pool (kv_pool.h).
#include "cuda/kv/kv_pool.h"

#include "core/error.h"

namespace zc::cuda {

KvPool::KvPool(size_t bytes) : chunks_(bytes) {
  size_t free_mem = 0, total = 0;
  check(cudaMemGetInfo(&free_mem, &total), "cudaMemGetInfo");
  if (capacity() > free_mem) {
    fail("kv pool: {:.2f} GiB requested but the GPU has {:.2f} GiB free (of {:.2f} GiB)", pool_gib(capacity()),
         pool_gib(free_mem), pool_gib(total));
  }
  buffer_.resize(capacity() + kGuardBytes);
}

}  // namespace zc::cuda
