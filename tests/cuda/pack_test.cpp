// GPU quantize-and-pack (cuda/quant/pack.h) against the CPU quantizer, bit for bit:
// packed codes, fp16 lo/step and CSTQ channel scales over many shapes, bit widths,
// schemes and value ranges (zero ranges, subnormal steps, rounding ties).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "cuda/quant/pack.h"
#include "gpu_test.h"
#include "quant/quantizer.h"

namespace zq = zc::quant;
using zc::cuda::DeviceBuffer;

namespace {

void expect_same(const std::vector<float>& x, int rows, int cols, int bits, zq::Scheme scheme,
                 int group) {
  SCOPED_TRACE(::testing::Message() << rows << " x " << cols << ", " << bits << " bits, "
                                    << zq::scheme_name(scheme) << ", group " << group);
  const zq::QuantizedMatrix cpu = zq::quantize(x.data(), rows, cols, bits, scheme, group);
  DeviceBuffer<float> dx;
  dx.upload(x);
  const zq::QuantizedMatrix gpu =
      zc::cuda::quantize(dx.get(), rows, cols, bits, scheme, group).download();
  EXPECT_EQ(gpu.rows, cpu.rows);
  EXPECT_EQ(gpu.cols, cpu.cols);
  EXPECT_EQ(gpu.group, cpu.group);
  EXPECT_EQ(gpu.codes, cpu.codes);
  EXPECT_EQ(gpu.lo, cpu.lo);
  EXPECT_EQ(gpu.step, cpu.step);
  EXPECT_EQ(gpu.channel_scale, cpu.channel_scale);
}

std::vector<float> random_matrix(zc::Rng& rng, int rows, int cols) {
  std::vector<float> x(size_t(rows) * size_t(cols));
  const int style = int(rng.integer(0, 3));
  const float scale = float(std::pow(10.0, rng.uniform() * 4.0 - 2.0));  // 1e-2 .. 1e2
  for (int r = 0; r < rows; ++r) {
    const bool constant_row = style == 1 && rng.uniform() < 0.2;
    for (int c = 0; c < cols; ++c) {
      float v = rng.normal() * scale;
      if (style == 2 && c % 7 == 3) v *= 20.0f;        // outlier channels
      if (style == 3) v = 1e-6f * float(rng.integer(-3, 3));  // tiny ranges: subnormal steps
      if (constant_row) v = 0.75f;
      x[size_t(r) * size_t(cols) + size_t(c)] = v;
    }
  }
  return x;
}

TEST(CudaPack, MatchesCpuQuantizerBitForBit) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(2024);
  for (int rows : {1, 2, 7, 32, 33, 100, 257}) {
    for (int cols : {1, 3, 64, 127, 128}) {
      const std::vector<float> x = random_matrix(rng, rows, cols);
      for (int bits : {2, 4, 8}) {
        for (zq::Scheme s : {zq::Scheme::Tokenwise, zq::Scheme::Channelwise, zq::Scheme::Cstq}) {
          expect_same(x, rows, cols, bits, s, 0);
        }
        const int group = cols % 32 == 0 ? 32 : cols;
        expect_same(x, rows, cols, bits, zq::Scheme::Groupwise, group);
      }
    }
  }
}

TEST(CudaPack, TiesZeroRangesAndLargeBlocks) {
  ZC_REQUIRE_GPU();
  // Ties at lo + (k + 1/2) step round up, as quant::encode does.
  const std::vector<float> ties = {0.0f, 3.0f, 0.5f, 1.5f, 2.5f, 1.0f, 2.0f, 0.25f};
  for (zq::Scheme s : {zq::Scheme::Tokenwise, zq::Scheme::Channelwise, zq::Scheme::Cstq}) {
    expect_same(ties, 1, 8, 2, s, 0);
    expect_same(ties, 8, 1, 2, s, 0);
  }
  const std::vector<float> zeros(6 * 5, 0.0f);
  for (zq::Scheme s : {zq::Scheme::Tokenwise, zq::Scheme::Channelwise, zq::Scheme::Cstq}) {
    expect_same(zeros, 6, 5, 4, s, 0);
  }
  // A ZipCache-sized block: 1638 salient tokens x 128 channels.
  zc::Rng rng(7);
  const std::vector<float> big = random_matrix(rng, 1638, 128);
  expect_same(big, 1638, 128, 4, zq::Scheme::Channelwise, 0);
  expect_same(big, 1638, 128, 2, zq::Scheme::Cstq, 0);
}

TEST(CudaPack, BadInputThrowsNamingWhere) {
  ZC_REQUIRE_GPU();
  std::vector<float> x(4 * 3, 1.0f);
  x[2 * 3 + 1] = std::nanf("");
  DeviceBuffer<float> dx;
  dx.upload(x);
  for (zq::Scheme s : {zq::Scheme::Tokenwise, zq::Scheme::Channelwise, zq::Scheme::Cstq}) {
    try {
      (void)zc::cuda::quantize(dx.get(), 4, 3, 2, s);
      ADD_FAILURE() << "no error for a NaN";
    } catch (const zc::Error& e) {
      EXPECT_NE(std::string(e.what()).find("row 2, col 1"), std::string::npos) << e.what();
    }
  }
  std::vector<float> wide = {0.0f, 1e6f};  // step 333333 overflows fp16
  dx.upload(wide);
  EXPECT_THROW((void)zc::cuda::quantize(dx.get(), 1, 2, 2, zq::Scheme::Tokenwise), zc::Error);
  EXPECT_THROW((void)zc::cuda::quantize(dx.get(), 1, 2, 3, zq::Scheme::Tokenwise), zc::Error);
  EXPECT_THROW((void)zc::cuda::quantize(dx.get(), 1, 2, 2, zq::Scheme::Groupwise, 3), zc::Error);
}

}  // namespace
