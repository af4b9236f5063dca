// The KV pool's bookkeeping (cuda/kv/chunk_allocator.h), no GPU needed: exact-size
// reuse first, then the untouched end, then a larger free chunk split; and over random
// alloc / free sequences, chunks that never overlap and byte counts that match a tally
// kept here.
#include "cuda/kv/chunk_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace {

using zc::cuda::ChunkAllocator;

std::string oom_message(ChunkAllocator& a, size_t bytes) {
  try {
    (void)a.alloc(bytes);
  } catch (const zc::Error& e) {
    return e.what();
  }
  return "";
}

TEST(ChunkAllocator, ReusesTheSameSizeThenTheUntouchedEnd) {
  ChunkAllocator a(4096);
  const uint32_t x = a.alloc(100), y = a.alloc(100);  // 112 B each
  EXPECT_EQ(x, 0u);
  EXPECT_EQ(y, 7u);
  a.free(x, 100);
  EXPECT_EQ(a.alloc(112), x) << "a freed chunk of the size is reused first";
  EXPECT_EQ(a.alloc(48), 14u) << "another size comes from the untouched end, not from a split";
  EXPECT_EQ(a.splits(), 0u);
  EXPECT_EQ(a.used(), 112u + 112u + 48u);
  EXPECT_EQ(a.untouched(), 4096u - 272u);
}

TEST(ChunkAllocator, AFullPoolSplitsTheSmallestLargerFreeChunk) {
  ChunkAllocator a(1024);
  std::vector<uint32_t> big;
  for (int i = 0; i < 2; ++i) big.push_back(a.alloc(256));
  const uint32_t mid = a.alloc(192);
  big.push_back(a.alloc(256));
  const uint32_t last = a.alloc(64);
  EXPECT_EQ(a.untouched(), 0u);
  EXPECT_EQ(a.used(), 1024u);
  a.free(big[1], 256);
  a.free(mid, 192);
  // 100 B (112): no free chunk of 112 and no untouched bytes: the 192 B chunk (the
  // smallest larger one) is split, its front handed out, the 80 B rest kept.
  const uint32_t small = a.alloc(100);
  EXPECT_EQ(small, mid);
  EXPECT_EQ(a.splits(), 1u);
  EXPECT_EQ(a.alloc(80), mid + 7) << "the rest of the split chunk";
  // 208 B: only the 256 B chunk is larger; its 48 B rest serves a 48 B request.
  EXPECT_EQ(a.alloc(208), big[1]);
  EXPECT_EQ(a.alloc(33), big[1] + 13);
  EXPECT_EQ(a.used(), 1024u);
  const std::string msg = oom_message(a, 16);
  EXPECT_NE(msg.find("kv pool: out of memory: a 16 B chunk does not fit"), std::string::npos) << msg;
  (void)last;
}

TEST(ChunkAllocator, OutOfMemoryNamesWhatIsLeft) {
  ChunkAllocator a(512);
  const uint32_t x = a.alloc(256);
  (void)a.alloc(256);
  a.free(x, 256);
  // 300 B fits nowhere: 256 B free (in a smaller chunk), nothing untouched.
  const std::string msg = oom_message(a, 300);
  EXPECT_NE(msg.find("a 304 B chunk does not fit"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0.000 GiB never used"), std::string::npos) << msg;
  EXPECT_EQ(a.used(), 256u) << "a refused request changes nothing";
  // A server tells running out (it may wait for memory) from other errors by its type.
  EXPECT_THROW((void)a.alloc(300), zc::OutOfMemory);
  EXPECT_THROW(ChunkAllocator(8), zc::Error);
  EXPECT_THROW(ChunkAllocator((size_t(16) << 32) + 16), zc::Error);
  EXPECT_THROW((void)a.alloc(0), zc::Error);
}

// Random sizes from a cache's few (fp16 page, quantized pages, parameters) and odd ones,
// random frees, a pool kept near full. The test keeps its own map of the free spans
// (what was freed, less what was handed out of it) and the untouched end: every chunk
// must come from the front of a free span or from the end, never overlap a live one,
// and a request is refused only when no free span could hold it and the end had no
// room; used() is the sum of the live sizes.
TEST(ChunkAllocator, RandomTrafficKeepsChunksApartAndCountsRight) {
  const std::vector<size_t> sizes = {16384, 4224, 2176, 128, 48, 16, 1000, 3};
  for (uint64_t seed : {1u, 2u, 3u}) {
    zc::Rng rng(seed);
    const size_t capacity = 1u << 20;
    ChunkAllocator a(capacity);
    std::map<uint32_t, size_t> live, spans;  // unit -> rounded bytes
    size_t end = 0, refused = 0, from_spans = 0;
    for (int step = 0; step < 20000; ++step) {
      if (!live.empty() && rng.uniform() < 0.45) {
        auto it = live.begin();
        std::advance(it, rng.integer(0, int64_t(live.size()) - 1));
        a.free(it->first, it->second);
        spans[it->first] = it->second;
        live.erase(it);
        continue;
      }
      const size_t bytes = sizes[size_t(rng.integer(0, int64_t(sizes.size()) - 1))];
      const size_t rounded = zc::cuda::pool_round(bytes);
      uint32_t unit = 0;
      try {
        unit = a.alloc(bytes);
      } catch (const zc::Error& e) {
        ++refused;
        ASSERT_NE(std::string(e.what()).find("kv pool: out of memory"), std::string::npos) << e.what();
        ASSERT_GT(rounded, capacity - end) << "refused although the untouched end had room";
        for (const auto& [u, s] : spans) ASSERT_LT(s, rounded) << "refused although a free span of " << s << " B could hold it";
        continue;
      }
      const size_t lo = size_t(unit) * 16, hi = lo + rounded;
      if (auto span = spans.find(unit); span != spans.end()) {
        ASSERT_GE(span->second, rounded) << "handed out past its free span";
        if (span->second > rounded) spans[uint32_t(unit + rounded / 16)] = span->second - rounded;
        spans.erase(span);
        ++from_spans;
      } else {
        ASSERT_EQ(lo, end) << "neither a free span's front nor the untouched end";
        end = hi;
      }
      ASSERT_LE(hi, capacity);
      auto next = live.lower_bound(unit);
      if (next != live.end()) {
        ASSERT_LE(hi, size_t(next->first) * 16) << "overlaps the next chunk";
      }
      if (next != live.begin()) {
        auto prev = std::prev(next);
        ASSERT_LE(size_t(prev->first) * 16 + prev->second, lo) << "overlaps the previous chunk";
      }
      live[unit] = rounded;
      size_t sum = 0;
      for (const auto& [u, s] : live) sum += s;
      ASSERT_EQ(a.used(), sum);
      ASSERT_GE(a.peak(), a.used());
    }
    EXPECT_GT(refused, 0u) << "the pool never filled: the test did not reach splitting";
    EXPECT_GT(a.splits(), 0u);
    EXPECT_GT(from_spans, 0u);
  }
}

}  // namespace
