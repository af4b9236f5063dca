// GPU decode attention (cuda/kv/decode_attention.h) against double-precision softmax
// attention over the rows the CPU cache holds (quant::dequantize of every block, fp16
// rows as floats): fp16 caches, ZipCache (4/2-bit blocks, CSTQ values, fp16 window),
// KIVI (32-token blocks, groupwise values) and tokenwise mixed-bit blocks; head_dim 64,
// 128 and 256; 1..8 KV heads; GQA groups 1..8; contexts from 1 token to several
// thousand; forced and automatic context splits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "cuda/kv/decode_attention.h"
#include "gpu_test.h"
#include "kv_fixture.h"

namespace {

using zc::cuda::DeviceBuffer;
using zc_test::Mix;

struct Case {
  int batch, n_heads, n_kv, d;
  std::vector<int> lengths;  // per sequence (cycled)
  Mix mix;
  int splits;                // 0: auto
  int whole = -1;            // >= 0: a plan (SplitPlan) of `whole` whole pairs, the rest `splits` each
};

int call(const zc::cuda::DecodeShape& shape, const zc::cuda::PagedKvView& kv, const float* q, float* out,
         zc::cuda::DecodeWorkspace& ws, const Case& cs, uint16_t* out_bf16 = nullptr) {
  if (cs.whole < 0) return zc::cuda::decode_attention(shape, kv, q, out, ws, cs.splits, nullptr, nullptr, out_bf16);
  return zc::cuda::decode_attention(shape, kv, q, out, ws, zc::cuda::SplitPlan{cs.splits, cs.whole}, nullptr, nullptr,
                                    out_bf16);
}

// out[h][c] for one sequence and one KV head's group, in double.
void reference(const zc_test::RefRows& ref, const float* q, int g, int d, double scale,
               std::vector<double>& out) {
  out.assign(size_t(g) * size_t(d), 0.0);
  std::vector<double> s(size_t(ref.rows));
  for (int j = 0; j < g; ++j) {
    double m = -INFINITY;
    for (int t = 0; t < ref.rows; ++t) {
      double dot = 0.0;
      for (int c = 0; c < d; ++c) {
        dot += double(q[j * d + c]) * double(ref.k[size_t(t) * size_t(d) + size_t(c)]);
      }
      s[size_t(t)] = dot * scale;
      m = std::max(m, s[size_t(t)]);
    }
    double l = 0.0;
    for (int t = 0; t < ref.rows; ++t) l += std::exp(s[size_t(t)] - m);
    for (int t = 0; t < ref.rows; ++t) {
      const double p = std::exp(s[size_t(t)] - m) / l;
      for (int c = 0; c < d; ++c) {
        out[size_t(j) * size_t(d) + size_t(c)] += p * double(ref.v[size_t(t) * size_t(d) + size_t(c)]);
      }
    }
  }
}

void run_case(const Case& cs, zc::Rng& rng) {
  const int g = cs.n_heads / cs.n_kv, d = cs.d;
  SCOPED_TRACE(::testing::Message() << "batch " << cs.batch << ", heads " << cs.n_heads << "/"
                                    << cs.n_kv << ", d " << d << ", mix " << int(cs.mix)
                                    << ", splits " << cs.splits << ", whole pairs " << cs.whole);
  zc::cuda::PagedKvBuilder b(d);
  std::vector<zc_test::RefRows> refs;
  for (int s = 0; s < cs.batch; ++s) {
    const int len = cs.lengths[size_t(s) % cs.lengths.size()];
    for (int h = 0; h < cs.n_kv; ++h) {
      // Mixes vary by head too, so one launch holds pages of every form.
      const Mix mix = h % 2 == 0 ? cs.mix : Mix(int(rng.integer(0, 3)));
      refs.push_back(zc_test::add_random_list(b, mix, len, rng));
    }
  }
  const zc::cuda::DevicePagedKv kv = zc::cuda::upload(b);
  std::vector<float> q(size_t(cs.batch) * size_t(cs.n_heads) * size_t(d));
  for (float& x : q) x = rng.normal();
  DeviceBuffer<float> dq, dout(q.size());
  DeviceBuffer<uint16_t> dout16(q.size());
  dq.upload(q);
  dout.fill_bytes(0xff);  // NaN: every output must be written
  dout16.fill_bytes(0xff);
  zc::cuda::DecodeShape shape;
  shape.batch = cs.batch, shape.n_heads = cs.n_heads, shape.n_kv_heads = cs.n_kv, shape.head_dim = d;
  zc::cuda::DecodeWorkspace ws;
  // Both outputs: fp32 and the bf16 rows the model's output projection reads.
  (void)call(shape, kv.view(), dq.get(), dout.get(), ws, cs, dout16.get());
  zc::cuda::check(cudaDeviceSynchronize(), "decode test");
  const std::vector<float> out = dout.download();
  const std::vector<uint16_t> out16 = dout16.download();
  // Again with the same workspace: the same bits.
  DeviceBuffer<float> dout_again(q.size());
  dout_again.fill_bytes(0xff);
  (void)call(shape, kv.view(), dq.get(), dout_again.get(), ws, cs);
  const std::vector<float> again = zc_test::sync_download(dout_again);
  ASSERT_EQ(std::memcmp(again.data(), out.data(), out.size() * sizeof(float)), 0) << "a second call differs";

  const double scale = 1.0 / std::sqrt(double(d));
  std::vector<double> ref;
  double max_err = 0.0, max_err16 = 0.0, max_ref = 0.0;
  for (int s = 0; s < cs.batch; ++s) {
    for (int h = 0; h < cs.n_kv; ++h) {
      const float* qh = &q[(size_t(s) * size_t(cs.n_heads) + size_t(h * g)) * size_t(d)];
      reference(refs[size_t(s * cs.n_kv + h)], qh, g, d, scale, ref);
      for (int j = 0; j < g; ++j) {
        for (int c = 0; c < d; ++c) {
          const double want = ref[size_t(j) * size_t(d) + size_t(c)];
          const double got = out[(size_t(s) * size_t(cs.n_heads) + size_t(h * g + j)) * size_t(d) + size_t(c)];
          ASSERT_FALSE(std::isnan(got)) << "seq " << s << " head " << h * g + j << " col " << c;
          max_err = std::max(max_err, std::fabs(got - want));
          // bf16 keeps 8 significant bits: half an ulp is at most 2^-8 of the value.
          const uint16_t bits = out16[(size_t(s) * size_t(cs.n_heads) + size_t(h * g + j)) * size_t(d) + size_t(c)];
          uint32_t wide = uint32_t(bits) << 16;
          float got16 = 0.0f;
          std::memcpy(&got16, &wide, 4);
          ASSERT_FALSE(std::isnan(got16)) << "bf16: seq " << s << " head " << h * g + j << " col " << c;
          max_err16 = std::max(max_err16, std::fabs(double(got16) - want) - std::ldexp(std::fabs(want), -8));
          max_ref = std::max(max_ref, std::fabs(want));
        }
      }
    }
  }
  EXPECT_LT(max_err, 1e-4 * std::max(1.0, max_ref)) << "max |ref| " << max_ref;
  EXPECT_LT(max_err16, 1e-4 * std::max(1.0, max_ref)) << "bf16 output beyond its rounding; max |ref| " << max_ref;
}

TEST(CudaDecodeAttention, MatchesDoubleReferenceOverMixesShapesAndSplits) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(99);
  const std::vector<Case> cases = {
      {1, 1, 1, 64, {1}, Mix::Fp16, 0},
      {1, 1, 1, 128, {1}, Mix::ZipCache, 0},
      {2, 2, 1, 128, {31, 33}, Mix::Fp16, 0},
      {3, 8, 8, 64, {5, 100, 257}, Mix::ZipCache, 0},
      {2, 12, 4, 128, {500, 77}, Mix::Kivi, 2},
      {1, 16, 2, 128, {1500}, Mix::ZipCache, 3},
      {2, 28, 4, 128, {129, 1000}, Mix::TokenwiseMixedBits, 0},
      {2, 32, 8, 128, {4096, 700}, Mix::ZipCache, 0},
      {1, 8, 1, 128, {2048}, Mix::Kivi, 1},
      {2, 6, 2, 64, {64, 300}, Mix::Kivi, 1000},
      {1, 5, 5, 256, {333}, Mix::ZipCache, 0},
      {2, 14, 2, 256, {90, 600}, Mix::Fp16, 2},
      {4, 4, 4, 64, {1, 2, 3, 4}, Mix::TokenwiseMixedBits, 0},
  };
  for (const Case& c : cases) run_case(c, rng);
}

// Plans with whole pairs (one CTA finishing each) before split ones (partials, merged),
// in one launch (SplitPlan; the auto plan takes such ones past whole waves of CTAs):
// every mix, lists of 1 page to longer than the splits, all pairs whole or none.
TEST(CudaDecodeAttention, WholeAndSplitPairsInOneLaunch) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(1234);
  const std::vector<Case> cases = {
      {5, 8, 2, 128, {300, 1000, 37, 2000, 513}, Mix::ZipCache, 4, 3},
      {3, 32, 8, 128, {4096, 1, 700}, Mix::Fp16, 16, 20},
      {4, 12, 4, 128, {500, 77, 1200, 33}, Mix::Kivi, 3, 1},
      {2, 28, 4, 128, {129, 1000}, Mix::TokenwiseMixedBits, 2, 7},
      {3, 8, 8, 64, {5, 100, 257}, Mix::ZipCache, 5, 0},
      {2, 14, 2, 256, {90, 600}, Mix::Fp16, 2, 4},
      {2, 16, 2, 128, {1500, 64}, Mix::ZipCache, 1, 2},  // one split: every pair whole
      {2, 16, 2, 128, {1500, 64}, Mix::ZipCache, 3, 4},  // every pair whole: no merge
  };
  for (const Case& c : cases) run_case(c, rng);
}

TEST(CudaDecodeAttention, BadShapesThrowBeforeTouchingTheGpu) {
  const zc::cuda::DevicePagedKv empty;  // no lists
  zc::cuda::DecodeWorkspace ws;
  zc::cuda::DecodeShape shape;
  shape.batch = 1, shape.n_heads = 18, shape.n_kv_heads = 2, shape.head_dim = 128;
  float dummy = 0.0f;
  auto expect_error = [&](const std::string& word) {
    try {
      (void)zc::cuda::decode_attention(shape, empty, &dummy, &dummy, ws);
      ADD_FAILURE() << "no error; expected one about " << word;
    } catch (const zc::Error& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  };
  expect_error("group of 9");
  shape.n_heads = 7;
  expect_error("bad shape");
  shape.n_heads = 8;
  expect_error("head_dim 128");
  try {
    (void)zc::cuda::decode_attention(shape, empty.view(), &dummy, nullptr, ws, 0, nullptr, nullptr, nullptr);
    ADD_FAILURE() << "no error for a call without any output";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("null q or output"), std::string::npos) << e.what();
  }
}

// The automatic split count (no GPU needed): the H100's 396 slots (132 SMs x 3 CTAs of
// the d = 128 tensor-core kernel) and Llama-3-8B's 8 KV heads, against the splits that
// measured fastest there (docs/benchmarks.md, session 15) and the rules' bounds.
TEST(CudaDecodeSplits, AutoSplitsFillWavesAndBoundSplitWork) {
  using zc::cuda::splits_for_slots;
  constexpr int kSlots = 396;
  // One wave: as many splits as fit it, at least eight pages each.
  EXPECT_EQ(splits_for_slots(64, 128, kSlots, true), 6);     // batch 8 x 4096
  EXPECT_EQ(splits_for_slots(64, 8, kSlots, true), 1);       // 256 tokens: one split's worth
  EXPECT_EQ(splits_for_slots(1, 1000, kSlots, true), 125);   // one pair: 8 pages a split
  EXPECT_EQ(splits_for_slots(256, 128, kSlots, true), 1);    // batch 32: 256 of 396 slots
  // Batch 64 x 4096: one split leaves a last wave of 116 CTAs; two measured faster.
  EXPECT_EQ(splits_for_slots(512, 128, kSlots, true), 2);
  // fp16's largest batch in 60 GiB, 117 x 4136 tokens (936 pairs, 2.4 waves): two
  // splits, 1.2% faster decode steps in the whole model.
  EXPECT_EQ(splits_for_slots(936, 130, kSlots, true), 2);
  // Batch 128 and 574 x 4096 (2.6 and 11.6 waves): one split measured fastest.
  EXPECT_EQ(splits_for_slots(1024, 128, kSlots, true), 1);
  EXPECT_EQ(splits_for_slots(4592, 128, kSlots, true), 1);
  // Odd shapes: always 1..4 splits past a wave, never fewer than eight pages a split.
  for (int pairs : {397, 401, 555, 793, 1189, 5000}) {
    for (int pages : {1, 7, 8, 9, 17, 31, 128, 513, 4096}) {
      const int s = splits_for_slots(pairs, pages, kSlots, true);
      EXPECT_GE(s, 1) << pairs << " pairs, " << pages << " pages";
      EXPECT_LE(s, 4) << pairs << " pairs, " << pages << " pages";
      EXPECT_LE(s, std::max(1, (pages + 7) / 8)) << pairs << " pairs, " << pages << " pages";
    }
  }
  // The SIMT kernel: at least one wave where the pages allow it.
  EXPECT_EQ(splits_for_slots(64, 1000, 1056, false), 17);
  EXPECT_EQ(splits_for_slots(2000, 1000, 1056, false), 1);
  EXPECT_EQ(splits_for_slots(64, 16, 1056, false), 2);
  // Degenerate inputs do not divide by zero.
  EXPECT_EQ(splits_for_slots(0, 0, 0, true), 1);
}

// The auto plan (no GPU needed), with 396 slots: between one and two waves of pairs, a
// wave of whole pairs and the rest split finely where that ends sooner than a second
// wave of whole ones (measured 2-15% faster at batch 56 and 64 x 4096; session 16).
TEST(CudaDecodeSplits, PlansSplitThePairsPastWholeWaves) {
  using zc::cuda::plan_for_slots;
  constexpr int kSlots = 396;
  const auto expect_plan = [](zc::cuda::SplitPlan got, int splits, int whole, const char* what) {
    EXPECT_EQ(got.splits, splits) << what;
    EXPECT_EQ(got.whole_pairs, whole) << what;
  };
  // Within one wave: uniform splits (whole pairs only when that is one split).
  expect_plan(plan_for_slots(64, 128, kSlots, true), 6, 0, "batch 8 x 4096");
  expect_plan(plan_for_slots(256, 128, kSlots, true), 1, 256, "batch 32 x 4096");
  // Batch 56 x 4096 (448 pairs): a wave of whole pairs, the other 52 split 7 ways (one
  // short wave of 364 CTAs); batch 64: 116 pairs split 3 ways.
  expect_plan(plan_for_slots(448, 128, kSlots, true), 7, 396, "batch 56 x 4096");
  expect_plan(plan_for_slots(512, 128, kSlots, true), 3, 396, "batch 64 x 4096");
  // Two waves exactly: nothing left to split; past two waves: the uniform choice.
  expect_plan(plan_for_slots(792, 128, kSlots, true), 1, 792, "batch 99 x 4096");
  expect_plan(plan_for_slots(1024, 128, kSlots, true), 1, 1024, "batch 128 x 4096");
  expect_plan(plan_for_slots(936, 131, kSlots, true), 2, 0, "batch 117 x 4177");
  expect_plan(plan_for_slots(4592, 131, kSlots, true), 1, 4592, "574 x 4177");
  // The SIMT kernel, or tail plans off: uniform.
  expect_plan(plan_for_slots(448, 128, 1056, false), 3, 0, "SIMT");
  expect_plan(plan_for_slots(448, 128, kSlots, true, false), 2, 0, "tail plans off");
  // Any plan: at least eight pages a split; whole pairs are all pairs, none, or (a tail
  // plan) the whole waves, the rest split 2..16 ways.
  for (int pairs : {1, 395, 396, 397, 401, 555, 793, 936, 1189, 4592, 5000}) {
    for (int pages : {1, 7, 8, 9, 17, 31, 128, 130, 513, 4096}) {
      const zc::cuda::SplitPlan p = plan_for_slots(pairs, pages, kSlots, true);
      SCOPED_TRACE(::testing::Message() << pairs << " pairs, " << pages << " pages");
      EXPECT_GE(p.splits, 1);
      EXPECT_LE(p.splits, std::max(1, (pages + 7) / 8));
      EXPECT_TRUE(p.whole_pairs == pairs || p.whole_pairs % kSlots == 0) << p.whole_pairs;
      if (p.whole_pairs > 0 && p.whole_pairs < pairs) {  // a tail plan
        EXPECT_GT(p.splits, 1);
        EXPECT_LE(p.splits, 16);
        EXPECT_EQ(p.whole_pairs, kSlots);
      }
    }
  }
}

}  // namespace
