// The GPU KV block pool (issue 4, "Memory"): one device allocation made once, from
// which every sequence's pages and block parameters are carved. Sequences of any
// length share it; what a cache holds is counted here, so memory figures come from
// the allocator, not from formulas.
//
// Chunks are multiples of 16 bytes (kv_page.h addresses the pool in 16-byte units);
// chunk_allocator.h keeps the books (free lists per size, the untouched end, splitting
// a larger free chunk as a last resort). Host bookkeeping only: nothing here syncs.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/core/device.h"
#include "cuda/kv/chunk_allocator.h"

namespace zc::cuda {

class KvPool {
 public:
  // Allocates `bytes` (rounded down to 16) of device memory. Throws zc::Error when the
  // size is out of range or the device cannot provide it, naming the size and the free
  // memory.
  explicit KvPool(size_t bytes);
  // The most a pool can hold: page fields address it in 16-byte units with 32 bits.
  static constexpr size_t kMaxBytes = ChunkAllocator::kMaxBytes;
  // Allocated past the capacity, never handed out: the decode kernel's zero-filled
  // copies of rows a 2-bit page lacks name addresses up to 1 KB past a chunk without
  // reading them (decode_mma.cuh, stage_page); the guard keeps even those inside the
  // allocation.
  static constexpr size_t kGuardBytes = 4096;

  // 16-byte unit offset of a chunk of `bytes` (> 0). Throws zc::Error "kv pool: out of
  // memory" with the request and the pool's use when nothing fits.
  uint32_t alloc(size_t bytes) { return chunks_.alloc(bytes); }
  // Returns a chunk made by alloc(bytes) (same size).
  void free(uint32_t unit, size_t bytes) { chunks_.free(unit, bytes); }

  uint8_t* base() const { return buffer_.get(); }
  size_t capacity() const { return chunks_.capacity(); }
  size_t used() const { return chunks_.used(); }  // bytes in live chunks
  size_t peak() const { return chunks_.peak(); }  // most bytes ever live at once
  size_t free_bytes() const { return capacity() - used(); }

 private:
  DeviceBuffer<uint8_t> buffer_;
  ChunkAllocator chunks_;
};

}  // namespace zc::cuda
