// The GPU KV block pool (issue 4, "Memory"): one device allocation made once, from
// which every sequence's pages and block parameters are carved. Sequences of any
// length share it; what a cache holds is counted here, so memory figures come from
// the allocator, not from formulas.
//
// Chunks are multiples of 16 bytes (kv_page.h addresses the pool in 16-byte units).
// A cache asks for a few distinct sizes (an fp16 page, a 2- or 4-bit page, a block's
// parameters), so freed chunks go to a free list per size and are reused first; new
// chunks come from the untouched end. Host bookkeeping only: nothing here syncs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "cuda/core/device.h"

namespace zc::cuda {

class KvPool {
 public:
  // Allocates `bytes` (rounded down to 16) of device memory. Throws zc::Error when the
  // device cannot provide it, naming the size and the free memory.
  explicit KvPool(size_t bytes);
  // The most a pool can hold: page fields address it in 16-byte units with 32 bits.
  static constexpr size_t kMaxBytes = size_t(16) << 32;
  // Allocated past the capacity, never handed out: the decode kernel's zero-filled
  // copies of rows a 2-bit page lacks name addresses up to 1 KB past a chunk without
  // reading them (decode_mma.cuh, stage_page); the guard keeps even those inside the
  // allocation.
  static constexpr size_t kGuardBytes = 4096;

  // 16-byte unit offset of a chunk of `bytes` (> 0). Throws zc::Error "kv pool: out of
  // memory" with the request and the pool's use when nothing fits.
  uint32_t alloc(size_t bytes);
  // Returns a chunk made by alloc(bytes) (same size).
  void free(uint32_t unit, size_t bytes);

  uint8_t* base() const { return buffer_.get(); }
  size_t capacity() const { return capacity_; }
  size_t used() const { return used_; }        // bytes in live chunks
  size_t peak() const { return peak_; }        // most bytes ever live at once
  size_t free_bytes() const { return capacity_ - used_; }

 private:
  DeviceBuffer<uint8_t> buffer_;
  size_t capacity_ = 0, used_ = 0, peak_ = 0;
  size_t top_ = 0;  // first never-used byte
  std::map<size_t, std::vector<uint32_t>> free_;  // chunk size -> freed units
};

// Bytes rounded up to whole 16-byte units.
inline size_t pool_round(size_t bytes) { return (bytes + 15) / 16 * 16; }

}  // namespace zc::cuda
