// GPU top-r split (cuda/saliency/top_r.h) against two references: the CPU
// saliency::top_r (nth_element) and a full sort written here, on scores with many ties
// (values from a small set, -0 beside +0, infinities), list lengths 1..70000, counts
// 0, 1, n/2, n, 1..9 lists at once; NaN scores and bad arguments are errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "common/error_of.h"
#include "core/error.h"
#include "core/rng.h"
#include "cuda/saliency/top_r.h"
#include "gpu_test.h"
#include "saliency/saliency.h"

namespace {

using zc::cuda::DeviceBuffer;

// Sort-based reference: order by (score descending, index descending: ties go to the
// later token), take the first `count`, both halves ascending. -0 == +0 as floats.
void sort_reference(const float* s, int n, int count, std::vector<int32_t>& sal,
                    std::vector<int32_t>& reg) {
  std::vector<int32_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [s](int a, int b) {
    return s[a] != s[b] ? s[a] > s[b] : a > b;
  });
  sal.assign(idx.begin(), idx.begin() + count);
  reg.assign(idx.begin() + count, idx.end());
  std::sort(sal.begin(), sal.end());
  std::sort(reg.begin(), reg.end());
}

std::vector<float> tied_scores(zc::Rng& rng, size_t n, int style) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> s(n);
  for (auto& v : s) {
    switch (style) {
      case 0: v = float(rng.integer(0, 3)) * 0.25f; break;  // 4 values: huge ties
      case 1: {  // a small mixed set: signs, zeros of both signs, infinities, tiny values
        static const float set[] = {-0.0f, 0.0f, 1.0f, -1.0f, 1e-30f, -1e-30f, inf, -inf, 3.5f, 1e-45f};
        v = set[rng.integer(0, 9)];
        break;
      }
      case 2: v = float(rng.integer(0, 40)) * 1e-3f; break;  // saliency-like, tied
      default: v = float(rng.uniform()); break;              // mostly distinct
    }
  }
  return s;
}

void check_split(zc::Rng& rng, int lists, int n, int count, int style) {
  SCOPED_TRACE(::testing::Message() << lists << " lists x " << n << ", count " << count
                                    << ", style " << style);
  const size_t N = size_t(lists) * size_t(n);
  const std::vector<float> s = tied_scores(rng, N, style);
  DeviceBuffer<float> ds;
  ds.upload(s);
  DeviceBuffer<int32_t> dsal(size_t(lists) * size_t(count)), dreg(size_t(lists) * size_t(n - count));
  dsal.fill_bytes(0xff);
  dreg.fill_bytes(0xff);
  zc::cuda::top_r_split(ds.get(), lists, n, count, dsal.get(), dreg.get());
  const std::vector<int32_t> sal = dsal.download(), reg = dreg.download();
  std::vector<int32_t> want_sal, want_reg;
  for (int l = 0; l < lists; ++l) {
    const float* sl = s.data() + size_t(l) * size_t(n);
    sort_reference(sl, n, count, want_sal, want_reg);
    const std::vector<int32_t> got_sal(sal.begin() + std::ptrdiff_t(size_t(l) * size_t(count)),
                                       sal.begin() + std::ptrdiff_t(size_t(l + 1) * size_t(count)));
    const std::vector<int32_t> got_reg(
        reg.begin() + std::ptrdiff_t(size_t(l) * size_t(n - count)),
        reg.begin() + std::ptrdiff_t(size_t(l + 1) * size_t(n - count)));
    ASSERT_EQ(got_sal, want_sal) << "salient, list " << l;
    ASSERT_EQ(got_reg, want_reg) << "regular, list " << l;
    // The CPU split picks round(ratio * n) tokens; count / n rounds back to count.
    const std::vector<int> cpu = zc::saliency::top_r(sl, n, double(count) / double(n));
    ASSERT_EQ(std::vector<int32_t>(cpu.begin(), cpu.end()), got_sal) << "vs saliency::top_r, list " << l;
  }
}

TEST(CudaTopR, MatchesSortAndCpuSplitWithTies) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(51);
  for (int n : {1, 2, 3, 100, 4097, 70000}) {
    for (int count : {0, 1, n / 2, n}) {
      if (count > n) continue;
      const int lists = n >= 70000 ? int(rng.integer(1, 3)) : int(rng.integer(1, 9));
      check_split(rng, lists, n, count, int(rng.integer(0, 3)));
    }
  }
}

TEST(CudaTopR, EveryStyleAndOddCounts) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(52);
  for (int style = 0; style < 4; ++style) {
    for (int n : {5, 1023, 1024, 1025, 3000}) {
      check_split(rng, 9, n, int(rng.integer(0, n)), style);
      check_split(rng, 2, n, n - 1, style);
    }
  }
}

TEST(CudaTopR, TiesGoToTheLaterToken) {
  ZC_REQUIRE_GPU();
  const std::vector<float> s = {1, 5, 5, 2, 5, /* list 1 */ -0.0f, 0.0f, -0.0f, 0.0f, -1};
  DeviceBuffer<float> ds;
  ds.upload(s);
  DeviceBuffer<int32_t> sal(2 * 2), reg(2 * 3);
  zc::cuda::top_r_split(ds.get(), 2, 5, 2, sal.get(), reg.get());
  EXPECT_EQ(sal.download(), (std::vector<int32_t>{2, 4, 2, 3}));
  EXPECT_EQ(reg.download(), (std::vector<int32_t>{0, 1, 3, 0, 1, 4}));
}

TEST(CudaTopR, NaNIsAnErrorNamingTheFirstOne) {
  ZC_REQUIRE_GPU();
  std::vector<float> s(4 * 3000, 1.0f);
  s[2 * 3000 + 2500] = std::nanf("");
  s[3 * 3000 + 7] = -std::nanf("");
  DeviceBuffer<float> ds;
  ds.upload(s);
  DeviceBuffer<int32_t> sal(4 * 300), reg(4 * 2700);
  EXPECT_NE(zc::test::error_of([&] {
              zc::cuda::top_r_split(ds.get(), 4, 3000, 300, sal.get(), reg.get());
            }).find("list 2, token 2500 is NaN"),
            std::string::npos);
  // Count 0 still scans every score.
  DeviceBuffer<int32_t> all(4 * 3000);
  EXPECT_NE(zc::test::error_of([&] {
              zc::cuda::top_r_split(ds.get(), 4, 3000, 0, nullptr, all.get());
            }).find("list 2, token 2500 is NaN"),
            std::string::npos);
}

// The deferred form: the same outputs, no throw, the first NaN's index in the caller's
// flag (kept across calls by atomicMin).
TEST(CudaTopR, DeferredNaNCheckLeavesTheIndexInTheFlag) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(53);
  for (int n : {1, 7, 1025}) {
    std::vector<float> s(3 * size_t(n));
    for (auto& x : s) x = rng.normal();
    DeviceBuffer<float> ds;
    ds.upload(s);
    const int count = n / 3;
    DeviceBuffer<int32_t> sal(3 * size_t(std::max(count, 1))), reg(3 * size_t(n - count));
    DeviceBuffer<int32_t> sal2(sal.size()), reg2(reg.size());
    DeviceBuffer<unsigned long long> flag(1);
    flag.fill_bytes(0xff);
    zc::cuda::top_r_split(ds.get(), 3, n, count, sal.get(), reg.get());
    zc::cuda::top_r_split_deferred(ds.get(), 3, n, count, sal2.get(), reg2.get(), flag.get());
    if (count > 0) {  // count 0 writes no salient list
      EXPECT_EQ(sal2.download(), sal.download()) << n;
    }
    EXPECT_EQ(reg2.download(), reg.download()) << n;
    EXPECT_EQ(flag.download()[0], std::numeric_limits<unsigned long long>::max()) << "no NaN, n " << n;
    s[size_t(2 * n + n - 1)] = std::nanf("");
    s[size_t(n)] = std::nanf("");  // list 1, token 0: the first
    ds.upload(s);
    EXPECT_NO_THROW(zc::cuda::top_r_split_deferred(ds.get(), 3, n, count, sal2.get(), reg2.get(), flag.get()));
    EXPECT_EQ(flag.download()[0], static_cast<unsigned long long>(n)) << n;
  }
  EXPECT_THROW(zc::cuda::top_r_split_deferred(nullptr, 1, 1, 0, nullptr, nullptr, nullptr), zc::Error);
}

TEST(CudaTopR, BadArgumentsAreErrors) {
  ZC_REQUIRE_GPU();
  DeviceBuffer<float> s;
  s.upload(std::vector<float>(10, 0.5f));  // defined scores: the valid calls below run the kernel
  DeviceBuffer<int32_t> a(10), b(10);
  const auto err = [&](const float* sc, int lists, int n, int count, int32_t* x, int32_t* y) {
    return zc::test::error_of([&] { zc::cuda::top_r_split(sc, lists, n, count, x, y); });
  };
  EXPECT_NE(err(s.get(), 1, 10, 11, a.get(), b.get()).find("salient count 11"), std::string::npos);
  EXPECT_NE(err(s.get(), 1, 10, -1, a.get(), b.get()).find("salient count -1"), std::string::npos);
  EXPECT_NE(err(s.get(), -1, 10, 1, a.get(), b.get()).find("-1 lists"), std::string::npos);
  EXPECT_NE(err(nullptr, 1, 10, 1, a.get(), b.get()).find("null scores"), std::string::npos);
  EXPECT_NE(err(s.get(), 1, 10, 1, nullptr, b.get()).find("null salient_idx"), std::string::npos);
  EXPECT_NE(err(s.get(), 1, 10, 1, a.get(), nullptr).find("null regular_idx"), std::string::npos);
  EXPECT_EQ(err(s.get(), 1, 10, 10, a.get(), nullptr), "<no error>");  // no regular tokens
  EXPECT_EQ(err(nullptr, 0, 10, 3, nullptr, nullptr), "<no error>");   // no lists
}

}  // namespace
