// The golden models run through compressed caches: the cache really holds 2- and
// 4-bit codes, and the logits stay close to HF's fp32 logits. The measured errors are
// printed (issue 6 asks for them) and bounded loosely: these are random-weight models.
// Measured on 2026-11-25: see docs/accuracy.md.
#include <algorithm>
#include <cstdio>
#include <set>

#include <gtest/gtest.h>

#include "model/forward.h"
#include "testdata.h"

namespace {

using namespace zc::model::test;

struct Measured {
  double rel_error = 0;
  std::set<int> bits;  // distinct bit widths held by the caches of all layers
  double ratio = 0;
};

// Prefills all but the last prompt token, then decodes the last one through the
// cache, and compares its logits with the reference's last-position logits.
Measured run_case(const zc::model::Model& model, const GoldenCase& c, const std::string& spec) {
  auto method = zc::kv::parse_method(spec);
  method.record_positions = true;  // so snapshot() can show what is stored
  auto seq = model.new_sequence(method);
  std::span<const int32_t> prompt(c.prompt);
  model.forward(seq, prompt.first(prompt.size() - 1));
  const auto logits = model.forward(seq, prompt.last(1));
  Measured m;
  m.rel_error = rel_l2(c.last_logits.data(), logits.data(), logits.size());
  for (const auto& cache : seq.caches) {
    const auto snap = cache->snapshot();
    m.bits.insert(snap.bits.begin(), snap.bits.end());
  }
  m.ratio = seq.memory().ratio();
  return m;
}

TEST(CompressedCache, GoldenModelsRunThroughQuantizedCodes) {
  for (const auto& name : golden_models()) {
    const auto model = zc::model::Model::load(models_dir() + "/" + name);
    const auto cases = golden_cases(name);
    const GoldenCase& longest = cases.back();  // 300 tokens
    ASSERT_GE(longest.prompt.size(), 200u);
    const auto fp16 = run_case(model, longest, "fp16");
    const auto zip = run_case(model, longest, "zipcache");
    const auto kivi = run_case(model, longest, "kivi2");
    const auto zip8 = run_case(model, longest, "zipcache:hi=8,lo=8");
    const auto kivi4 = run_case(model, longest, "kivi4");
    std::printf("%-18s zipcache 8/8 bits %.2e, kivi4 %.2e\n", name.c_str(), zip8.rel_error, kivi4.rel_error);
    std::printf("%-18s last-logit rel. L2 error vs HF fp32: fp16 %.2e, zipcache %.2e (%.2fx), kivi2 %.2e (%.2fx)\n",
                name.c_str(), fp16.rel_error, zip.rel_error, zip.ratio, kivi.rel_error, kivi.ratio);
    // ZipCache after a 299-token prefill: salient 4-bit and regular 2-bit codes, plus the
    // fp16 streaming window holding the decoded token.
    EXPECT_TRUE(zip.bits.count(4) && zip.bits.count(2) && zip.bits.count(16)) << name;
    EXPECT_EQ(zip.bits.count(8), 0u) << name;
    EXPECT_TRUE(kivi.bits.count(2) && kivi.bits.count(16)) << name;
    EXPECT_GT(zip.ratio, 3.0) << name;
    EXPECT_LT(fp16.rel_error, 2e-3) << name;
    // Random-weight models are very sensitive to K/V noise (measured: 8-bit ~1e-2,
    // 4-bit ~1e-1, 2-bit ~0.5 relative error), so the bounds check that error falls
    // with bits and stays finite rather than that 2 bits is harmless.
    EXPECT_LT(zip8.rel_error, 3e-2) << name;
    EXPECT_LT(kivi4.rel_error, 0.2) << name;
    EXPECT_LT(zip8.rel_error, kivi4.rel_error) << name;
    EXPECT_LT(kivi4.rel_error, std::min(zip.rel_error, kivi.rel_error)) << name;
    EXPECT_LT(zip.rel_error, 0.8) << name;
    EXPECT_LT(kivi.rel_error, 0.8) << name;
  }
}

}  // namespace
