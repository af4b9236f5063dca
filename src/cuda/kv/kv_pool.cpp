// Host bookkeeping of the GPU KV block pool (kv_pool.h).
#include "cuda/kv/kv_pool.h"

#include "core/error.h"

namespace zc::cuda {

namespace {
double gib(size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }
}  // namespace

KvPool::KvPool(size_t bytes) : chunks_(bytes) {
  size_t free_mem = 0, total = 0;
  check(cudaMemGetInfo(&free_mem, &total), "cudaMemGetInfo");
  if (capacity() > free_mem) {
    fail("kv pool: {:.2f} GiB requested but the GPU has {:.2f} GiB free (of {:.2f} GiB)", gib(capacity()),
         gib(free_mem), gib(total));
  }
  buffer_.resize(capacity() + kGuardBytes);
}

}  // namespace zc::cuda
