// The decode kernels (dot_rows, accumulate_rows), whole-byte unpacking and the bulk
// fp16 conversion against double-precision math written here from SPEC.md sections
// 1-2 (decode_reference.h): every scheme at 2/4/8 bits, odd and tiny shapes, length 1,
// sub-ranges of rows, several query heads.
#include "quant/decode_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "quant/decode_reference.h"
#include "quant/half_convert.h"
#include "quant/pack.h"
#include "quant/unpack.h"

namespace zq = zc::quant;

namespace {

// Float arithmetic in any arrangement of the terms: a relative error of a few float
// ulps per term, summed (the tests' sums have at most a few hundred terms).
constexpr double kRel = 2e-6;

std::vector<float> random_matrix(int rows, int cols, std::mt19937& gen) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(size_t(rows) * size_t(cols));
  for (size_t i = 0; i < x.size(); ++i) {
    const int c = int(i % size_t(cols));
    x[i] = nd(gen) * (c % 5 == 1 ? 6.0f : 1.0f) + (c % 3 == 0 ? 2.0f : 0.0f);
  }
  if (rows >= 2) {
    for (int c = 0; c < cols; ++c) x[size_t(cols) + size_t(c)] = 0.5f;  // a zero-range row
  }
  return x;
}

std::string describe(const zq::QuantizedMatrix& q, int g, int r0, int r1) {
  return zq::scheme_name(q.scheme) + " " + std::to_string(q.rows) + "x" + std::to_string(q.cols) +
         " " + std::to_string(q.bits) + " bits group " + std::to_string(q.group) + " g " +
         std::to_string(g) + " rows [" + std::to_string(r0) + ", " + std::to_string(r1) + ")";
}

void check_kernels(const zq::QuantizedMatrix& q, int g, int r0, int r1, std::mt19937& gen) {
  const std::string what = describe(q, g, r0, r1);
  const int C = q.cols, n = r1 - r0;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  std::vector<float> query(size_t(g) * C), p(size_t(n) * g), acc(size_t(g) * C);
  for (auto& e : query) e = nd(gen);
  for (auto& e : p) e = ud(gen);
  for (auto& e : acc) e = nd(gen);
  const std::vector<float> acc0 = acc;

  std::vector<float> logits(size_t(n) * g + 1, NAN);
  zq::dot_rows(q, query.data(), g, r0, r1, logits.data());
  zq::accumulate_rows(q, p.data(), g, r0, r1, acc.data());
  EXPECT_TRUE(std::isnan(logits[size_t(n) * g])) << what << ": wrote past its rows";

  for (int r = r0; r < r1; ++r) {
    for (int j = 0; j < g; ++j) {
      double want = 0, mag = 0;
      for (int c = 0; c < C; ++c) {
        const auto e = zc_test::ref_element(q, r, c);
        want += double(query[size_t(j) * C + c]) * e.value();
        mag += std::fabs(double(query[size_t(j) * C + c])) * e.magnitude();
      }
      const double got = logits[size_t(r - r0) * g + j];
      ASSERT_NEAR(got, want, kRel * mag + 1e-30) << what << " logit row " << r << " head " << j;
    }
  }
  for (int j = 0; j < g; ++j) {
    for (int c = 0; c < C; ++c) {
      double want = acc0[size_t(j) * C + c], mag = std::fabs(want);
      for (int r = r0; r < r1; ++r) {
        const auto e = zc_test::ref_element(q, r, c);
        const double pr = p[size_t(r - r0) * g + j];
        want += pr * e.value();
        mag += pr * e.magnitude();
      }
      ASSERT_NEAR(acc[size_t(j) * C + c], want, kRel * mag + 1e-30)
          << what << " value sum head " << j << " col " << c;
    }
  }
}

TEST(DecodeKernels, EverySchemeAndShapeMatchesDoubleMath) {
  std::mt19937 gen(5);
  for (int rows : {1, 2, 3, 7, 33, 100}) {
    for (int cols : {1, 3, 4, 5, 13, 24, 128, 130}) {
      for (int bits : {2, 4, 8}) {
        const auto x = random_matrix(rows, cols, gen);
        std::vector<zq::QuantizedMatrix> blocks;
        for (auto s : {zq::Scheme::Tokenwise, zq::Scheme::Channelwise, zq::Scheme::Cstq}) {
          blocks.push_back(zq::quantize(x.data(), rows, cols, bits, s));
        }
        for (int group : {1, 4, 8, 32, 5, 13}) {
          if (cols % group == 0 && (group > 1 || cols <= 13)) {
            blocks.push_back(
                zq::quantize(x.data(), rows, cols, bits, zq::Scheme::Groupwise, group));
          }
        }
        for (const auto& q : blocks) {
          const int g = 1 + int(gen() % 5);
          check_kernels(q, g, 0, rows, gen);  // the whole block
          if (rows > 1) {
            const int r0 = int(gen() % unsigned(rows)),
                      r1 = r0 + 1 + int(gen() % unsigned(rows - r0));
            check_kernels(q, g, r0, r1, gen);          // a sub-range (a sliding window's cut)
            check_kernels(q, 1, rows - 1, rows, gen);  // the last row alone
          }
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST(DecodeKernels, EmptyRangeTouchesNothing) {
  std::mt19937 gen(9);
  const auto x = random_matrix(4, 8, gen);
  const auto q = zq::quantize(x.data(), 4, 8, 2, zq::Scheme::Channelwise);
  std::vector<float> query(8, 1.0f), acc(8, 3.0f), out(1, 7.0f);
  zq::dot_rows(q, query.data(), 1, 2, 2, out.data());
  zq::accumulate_rows(q, query.data(), 1, 4, 4, acc.data());
  EXPECT_EQ(out[0], 7.0f);
  for (float a : acc) EXPECT_EQ(a, 3.0f);
}

TEST(DecodeKernels, RejectsBadCalls) {
  std::mt19937 gen(3);
  const auto x = random_matrix(6, 8, gen);
  auto q = zq::quantize(x.data(), 6, 8, 4, zq::Scheme::Tokenwise);
  std::vector<float> buf(64, 0.0f);
  EXPECT_THROW(zq::dot_rows(q, buf.data(), 1, 0, 7, buf.data()), zc::Error);
  EXPECT_THROW(zq::dot_rows(q, buf.data(), 1, -1, 2, buf.data()), zc::Error);
  EXPECT_THROW(zq::dot_rows(q, buf.data(), 1, 3, 2, buf.data()), zc::Error);
  EXPECT_THROW(zq::dot_rows(q, buf.data(), 0, 0, 2, buf.data()), zc::Error);
  EXPECT_THROW(zq::accumulate_rows(q, nullptr, 1, 0, 2, buf.data()), zc::Error);
  q.step.pop_back();
  try {
    zq::accumulate_rows(q, buf.data(), 1, 0, 2, buf.data());
    FAIL() << "no error for a matrix with a missing step";
  } catch (const zc::Error& e) {
    EXPECT_NE(std::string(e.what()).find("accumulate_rows: malformed"), std::string::npos)
        << e.what();
  }
}

TEST(Unpack, WholeBytesAndPartialEndsMatchTheBitLayout) {
  std::mt19937 gen(11);
  for (int bits : {2, 4, 8}) {
    std::vector<uint8_t> codes(301);
    for (auto& c : codes) c = uint8_t(gen() % (1u << bits));
    std::vector<uint8_t> packed(zq::packed_bytes(codes.size(), bits));
    zq::pack_codes(codes.data(), codes.size(), bits, packed.data());
    for (int trial = 0; trial < 200; ++trial) {
      const size_t first = gen() % codes.size();
      const size_t n = gen() % (codes.size() - first + 1);
      std::vector<float> out(n + 1, -1.0f);
      zq::unpack_floats(packed.data(), first, n, bits, out.data());
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(out[i], float(zc_test::ref_code(packed, first + i, bits)))
            << bits << " bits, first " << first << ", i " << i;
      }
      ASSERT_EQ(out[n], -1.0f) << "wrote past n";
    }
  }
}

TEST(HalfConvert, EveryBitPatternMatchesItsExactValue) {
  std::vector<uint16_t> all(65536);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint16_t(i);
  std::vector<float> out(all.size());
  zq::halves_to_floats(all.data(), all.size(), out.data());
  for (size_t i = 0; i < all.size(); ++i) {
    const bool nan = ((i >> 10) & 31) == 31 && (i & 1023) != 0;
    if (nan) {
      ASSERT_TRUE(std::isnan(out[i])) << std::hex << i;
    } else {
      ASSERT_EQ(double(out[i]), zc_test::half_value(uint16_t(i))) << std::hex << i;
      ASSERT_EQ(std::signbit(out[i]), (i & 0x8000) != 0) << std::hex << i;  // -0 too
    }
  }
}

}  // namespace
