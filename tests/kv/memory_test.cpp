// memory(): byte counts computed by hand from SPEC.md sections 1-4 (packed codes, two
// fp16 parameters per group, fp16 channel scales for CSTQ), including the acceptance
// figures at 4096 tokens.
#include <gtest/gtest.h>

#include "policy_check.h"

namespace zc::kv {
namespace {

using zc_test::Dims;

MemoryReport prefilled(const std::string& spec, const Dims& dims, int T) {
  const auto x = zc_test::random_tokens(T, dims, 1234);
  auto cache = make_cache(parse_method(spec), zc_test::shape_of(dims));
  std::vector<float> out(size_t(T) * dims.H * dims.d);
  cache->prefill(x.qt(0), x.kt(0), x.vt(0), T, out.data());
  return cache->memory();
}

TEST(Memory, ZipCacheAt4096TokensCompressesAtLeastFiveTimes) {
  // hi 4 / lo 2 / ratio 0.4, d = 128, one KV head: 1638 salient, 2458 regular tokens.
  // Salient: key codes 1638*128/2 = 104832 B, key params 128 channels x 4 B = 512 B,
  //          value codes 104832 B, value params 1638 tokens x 4 B + 128 scales x 2 B.
  // Regular: key codes 2458*128/4 = 78656 B, key params 512 B, value codes 78656 B,
  //          value params 2458 x 4 B + 256 B.
  const auto m = prefilled("zipcache", Dims{1, 1, 128}, 4096);
  EXPECT_EQ(m.code_bytes, 2u * 104832 + 2u * 78656);
  EXPECT_EQ(m.param_bytes, 512u + 1638 * 4 + 256 + 512 + 2458 * 4 + 256);
  EXPECT_EQ(m.window_bytes, 0u);
  EXPECT_EQ(m.metadata_bytes, 0u);
  EXPECT_EQ(m.total(), 384896u);
  EXPECT_EQ(m.fp16_bytes, 2097152u);
  EXPECT_DOUBLE_EQ(m.ratio(), 2097152.0 / 384896.0);  // 5.449
  EXPECT_GE(m.ratio(), 5.0);
  EXPECT_NEAR(m.bits_per_value(), 16.0 * 384896 / 2097152, 1e-12);
}

TEST(Memory, MiKVAt1024Tokens) {
  // Groupwise keys and values, groups of 32 of the 128 channels: 4 groups x 4 B per
  // token and tensor. 410 salient tokens (codes 410*128/2 = 26240 B per tensor), 614
  // regular (614*128/4 = 19648 B per tensor).
  const auto m = prefilled("mikv", Dims{1, 1, 128}, 1024);
  EXPECT_EQ(m.code_bytes, 2u * 26240 + 2u * 19648);
  EXPECT_EQ(m.param_bytes, 2u * 1024 * 16);
  EXPECT_EQ(m.total(), 124544u);
  EXPECT_DOUBLE_EQ(m.ratio(), 524288.0 / 124544.0);  // 4.210
}

TEST(Memory, SmallZipCacheConfigurations) {
  // d = 64, 10 tokens, 4 salient (4 bits) and 6 regular (2 bits).
  // Salient: key codes 128, key params 256, value codes 128, value params 16 + 128.
  // Regular: key codes 96, key params 256, value codes 96, value params 24 + 128.
  auto m = prefilled("zipcache", Dims{1, 1, 64}, 10);
  EXPECT_EQ(m.code_bytes, 448u);
  EXPECT_EQ(m.param_bytes, 808u);
  EXPECT_EQ(m.total(), 1256u);
  EXPECT_EQ(m.fp16_bytes, 2560u);

  // block=3: sets split into blocks of 3, 1 (salient) and 3, 3 (regular), each with its
  // own 64 key ranges and 64 channel scales: codes unchanged, 4 x 256 key params,
  // 10 x 4 token params + 4 x 128 channel scales.
  m = prefilled("zipcache:block=3", Dims{1, 1, 64}, 10);
  EXPECT_EQ(m.code_bytes, 448u);
  EXPECT_EQ(m.param_bytes, 4u * 256 + 40 + 4 * 128);

  // Odd head_dim, packing per matrix: d = 5, 3 tokens, all regular at 2 bits: 15 codes
  // in 4 bytes per tensor; key params 5 x 4, value params 3 x 4 + 5 x 2.
  m = prefilled("zipcache:ratio=0", Dims{1, 1, 5}, 3);
  EXPECT_EQ(m.code_bytes, 8u);
  EXPECT_EQ(m.param_bytes, 20u + 22);
  EXPECT_EQ(m.fp16_bytes, 60u);

  // Several KV heads add up.
  m = prefilled("zipcache", Dims{6, 3, 64}, 10);
  EXPECT_EQ(m.total(), 3u * 1256);
}

TEST(Memory, ReportsAddUp) {
  MemoryReport a, b;
  a.tokens_seen = 3, a.tokens_kept = 2, a.code_bytes = 5, a.param_bytes = 7, a.window_bytes = 11;
  a.metadata_bytes = 13, a.fp16_bytes = 100;
  b = a;
  a += b;
  EXPECT_EQ(a.tokens_seen, 6u);
  EXPECT_EQ(a.tokens_kept, 4u);
  EXPECT_EQ(a.total(), 72u);
  EXPECT_EQ(a.fp16_bytes, 200u);
  EXPECT_DOUBLE_EQ(a.ratio(), 200.0 / 72.0);
  EXPECT_DOUBLE_EQ(MemoryReport{}.ratio(), 0.0);
}

}  // namespace
}  // namespace zc::kv
