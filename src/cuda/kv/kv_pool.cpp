// Host bookkeeping of the GPU KV block pool (kv_pool.h).
#include "cuda/kv/kv_pool.h"

#include <algorithm>

#include "core/error.h"

namespace zc::cuda {

namespace {
double gib(size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }
}  // namespace

KvPool::KvPool(size_t bytes) {
  capacity_ = bytes / 16 * 16;
  if (capacity_ == 0) fail("kv pool: size {} bytes is too small", bytes);
  if (capacity_ > kMaxBytes) fail("kv pool: {:.1f} GiB exceeds the 64 GiB a pool can address", gib(capacity_));
  size_t free_mem = 0, total = 0;
  check(cudaMemGetInfo(&free_mem, &total), "cudaMemGetInfo");
  if (capacity_ > free_mem) {
    fail("kv pool: {:.2f} GiB requested but the GPU has {:.2f} GiB free (of {:.2f} GiB)", gib(capacity_),
         gib(free_mem), gib(total));
  }
  buffer_.resize(capacity_ + kGuardBytes);
}

uint32_t KvPool::alloc(size_t bytes) {
  if (bytes == 0) fail("kv pool: zero-byte chunk");
  const size_t size = pool_round(bytes);
  auto it = free_.find(size);
  uint32_t unit = 0;
  if (it != free_.end() && !it->second.empty()) {
    unit = it->second.back();
    it->second.pop_back();
  } else {
    if (size > capacity_ - top_) {
      fail("kv pool: out of memory: a {} B chunk does not fit ({:.3f} of {:.3f} GiB in use, {:.3f} GiB "
           "never used, the rest in freed chunks of other sizes); give the KV cache more memory "
           "(--kv-mem) or run fewer/shorter sequences",
           size, gib(used_), gib(capacity_), gib(capacity_ - top_));
    }
    unit = static_cast<uint32_t>(top_ / 16);
    top_ += size;
  }
  used_ += size;
  peak_ = std::max(peak_, used_);
  return unit;
}

void KvPool::free(uint32_t unit, size_t bytes) {
  const size_t size = pool_round(bytes);
  ZC_CHECK(used_ >= size && size_t(unit) * 16 + size <= top_);
  used_ -= size;
  free_[size].push_back(unit);
}

}  // namespace zc::cuda
