// Host bookkeeping of the GPU KV block pool (chunk_allocator.h).
#include "cuda/kv/chunk_allocator.h"

#include <algorithm>

#include "core/error.h"

namespace zc::cuda {

namespace {
uint32_t pop(std::map<size_t, std::vector<uint32_t>>& free, std::map<size_t, std::vector<uint32_t>>::iterator it) {
  const uint32_t unit = it->second.back();
  it->second.pop_back();
  if (it->second.empty()) free.erase(it);
  return unit;
}
}  // namespace

ChunkAllocator::ChunkAllocator(size_t capacity) : capacity_(capacity / 16 * 16) {
  if (capacity_ == 0) fail("kv pool: size {} bytes is too small", capacity);
  if (capacity_ > kMaxBytes) fail("kv pool: {:.1f} GiB exceeds the 64 GiB a pool can address", pool_gib(capacity_));
}

uint32_t ChunkAllocator::alloc(size_t bytes) {
  if (bytes == 0) fail("kv pool: zero-byte chunk");
  const size_t size = pool_round(bytes);
  uint32_t unit = 0;
  if (auto it = free_.find(size); it != free_.end()) {
    unit = pop(free_, it);
  } else if (size <= capacity_ - top_) {
    unit = static_cast<uint32_t>(top_ / 16);
    top_ += size;
  } else if (auto larger = free_.upper_bound(size); larger != free_.end()) {
    // The smallest larger free chunk: the request takes its front.
    const size_t whole = larger->first;
    unit = pop(free_, larger);
    free_[whole - size].push_back(static_cast<uint32_t>(unit + size / 16));
    ++splits_;
  } else {
    throw OutOfMemory(fmt::format(
        "kv pool: out of memory: a {} B chunk does not fit ({:.3f} of {:.3f} GiB in use, {:.3f} GiB "
        "never used, {:.3f} GiB free in smaller chunks); give the KV cache more memory (--kv-mem) or run "
        "fewer/shorter sequences",
        size, pool_gib(used_), pool_gib(capacity_), pool_gib(capacity_ - top_), pool_gib(top_ - used_)));
  }
  used_ += size;
  peak_ = std::max(peak_, used_);
  return unit;
}

void ChunkAllocator::free(uint32_t unit, size_t bytes) {
  const size_t size = pool_round(bytes);
  ZC_CHECK(size > 0 && used_ >= size && size_t(unit) * 16 + size <= top_);
  used_ -= size;
  free_[size].push_back(unit);
}

}  // namespace zc::cuda
