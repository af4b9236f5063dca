// The bookkeeping of the GPU KV block pool (kv_pool.h), host only and GPU-free so that
// it can be tested anywhere: chunks of a byte range in 16-byte units (kv_page.h
// addresses the pool so).
//
// A cache asks for a few distinct sizes (an fp16 page, a 2- or 4-bit page, a block's
// parameters), so freed chunks go to a free list per size and are reused first; new
// chunks come from the untouched end. When neither has room, a free chunk of a larger
// size is split: the request takes its front, the rest joins the free list of its own
// size. Without that step a full pool refused chunks while freed chunks of other sizes
// sat idle: ZipCache's streaming chunks free fp16 window pages and ask for quantized
// ones, and 526 sequences with 128 decode steps' room ran out with ~4 GiB of a 60 GiB
// pool stranded (docs/benchmarks.md, session 16). Splitting is the last resort, so a
// pool with room never fragments; nothing is merged back.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace zc::cuda {

class ChunkAllocator {
 public:
  // Chunk offsets are 32-bit counts of 16-byte units.
  static constexpr size_t kMaxBytes = size_t(16) << 32;
  // capacity: bytes (rounded down to 16, at least 16, at most kMaxBytes) to hand out.
  // Throws zc::Error naming the size otherwise.
  explicit ChunkAllocator(size_t capacity);

  // 16-byte unit offset of a chunk of `bytes` (> 0). Throws zc::Error "kv pool: out of
  // memory" with the request and the pool's use when nothing fits.
  uint32_t alloc(size_t bytes);
  // Returns a chunk made by alloc(bytes) (same size).
  void free(uint32_t unit, size_t bytes);

  size_t capacity() const { return capacity_; }
  size_t used() const { return used_; }  // bytes in live chunks
  size_t peak() const { return peak_; }  // most bytes ever live at once
  size_t untouched() const { return capacity_ - top_; }  // never handed out yet
  size_t splits() const { return splits_; }               // larger chunks split so far

 private:
  size_t capacity_ = 0, used_ = 0, peak_ = 0, splits_ = 0;
  size_t top_ = 0;                                // first never-used byte
  std::map<size_t, std::vector<uint32_t>> free_;  // chunk size -> freed units (no empty lists)
};

// Bytes rounded up to whole 16-byte units.
inline size_t pool_round(size_t bytes) { return (bytes + 15) / 16 * 16; }
// Bytes in GiB, for the pool's messages.
inline double pool_gib(size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

}  // namespace zc::cuda
