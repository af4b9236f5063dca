// Every scheme of SPEC.md section 2 at 2/4/8 bits over many shapes, against a
// double-precision reference of the formulas (reference.h).
#include "common/error_of.h"
#include "quant/quantizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "reference.h"

namespace zq = zc::quant;
using zc_test::half_value;
using zc_test::nearest_half;
using zc_test::RefGroup;

namespace {

// Random data: per-column offsets and scales (keys have outlier channels), one
// constant row and one constant column (zero-range groups), and for CSTQ an
// all-zero column.
std::vector<float> make_data(int rows, int cols, double scale, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<double> col_scale(static_cast<size_t>(cols)), col_mean(static_cast<size_t>(cols));
  for (int c = 0; c < cols; ++c) {
    col_scale[size_t(c)] = scale * std::exp(0.7 * nd(gen));
    col_mean[size_t(c)] = scale * 0.5 * nd(gen);
  }
  std::vector<float> x(size_t(rows) * size_t(cols));
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      x[size_t(r) * size_t(cols) + size_t(c)] =
          float(col_mean[size_t(c)] + col_scale[size_t(c)] * nd(gen));
    }
  }
  if (rows >= 3) {
    for (int c = 0; c < cols; ++c) x[size_t(cols) + size_t(c)] = 0.75f;  // row 1 constant
  }
  if (rows >= 2 && cols >= 3) {
    for (int r = 0; r < rows; ++r)
      x[size_t(r) * size_t(cols) + 2] = 0.75f;  // column 2 constant (row 1 stays so)
  }
  return x;
}

struct Expected {
  std::vector<double> value, alt, bound, tol;
  std::vector<RefGroup> groups;  // in the scheme's group order
  std::vector<double> channel_scale;
};

// The reference of SPEC.md section 2, element by element.
Expected reference(const std::vector<float>& x, int rows, int cols, int bits, zq::Scheme scheme,
                   int group) {
  const size_t R = size_t(rows), C = size_t(cols), n = R * C;
  Expected e;
  e.value.assign(n, 0);
  e.alt.assign(n, NAN);
  e.bound.assign(n, 0);
  e.tol.assign(n, 0);
  std::vector<double> y(x.begin(), x.end());
  std::vector<double> mult(C, 1.0);
  if (scheme == zq::Scheme::Cstq) {
    for (size_t c = 0; c < C; ++c) {
      double m = 0;
      for (size_t r = 0; r < R; ++r) m = std::max(m, std::fabs(double(x[r * C + c])));
      const double s = nearest_half(std::sqrt(m));
      e.channel_scale.push_back(s);
      mult[c] = s;
      // The scaled matrix is an fp32 intermediate of the quantizer.
      for (size_t r = 0; r < R; ++r)
        y[r * C + c] = s > 0 ? double(float(x[r * C + c] / float(s))) : 0.0;
    }
  }
  // Groups as lists of flat indices.
  std::vector<std::vector<size_t>> groups;
  if (scheme == zq::Scheme::Channelwise) {
    for (size_t c = 0; c < C; ++c) {
      groups.emplace_back();
      for (size_t r = 0; r < R; ++r) groups.back().push_back(r * C + c);
    }
  } else {
    const size_t G = scheme == zq::Scheme::Groupwise ? size_t(group) : C;
    for (size_t r = 0; r < R; ++r) {
      for (size_t g0 = 0; g0 < C; g0 += G) {
        groups.emplace_back();
        for (size_t c = g0; c < g0 + G; ++c) groups.back().push_back(r * C + c);
      }
    }
  }
  for (const auto& idx : groups) {
    std::vector<double> v;
    for (size_t i : idx) v.push_back(y[i]);
    const RefGroup g = zc_test::ref_fit(v, bits);
    e.groups.push_back(g);
    for (size_t i : idx) {
      const double m = mult[i % C];
      double alt;
      e.value[i] = zc_test::ref_value(y[i], g, &alt) * m;
      e.alt[i] = alt * m;
      // fp32 arithmetic in the quantizer: a few ulps of the grid's magnitude.
      e.tol[i] = 4e-7 * (std::fabs(g.lo) + g.levels * g.step) * m + 1e-30;
      // Rounding of y to fp32 moves x by at most an ulp of x.
      e.bound[i] = g.error_bound() * m + e.tol[i] + 1.2e-7 * std::fabs(double(x[i]));
    }
  }
  return e;
}

size_t expected_bytes(int rows, int cols, int bits, zq::Scheme scheme, int group) {
  const size_t codes = (size_t(rows) * size_t(cols) * size_t(bits) + 7) / 8;
  switch (scheme) {
    case zq::Scheme::Tokenwise:
      return codes + size_t(rows) * 4;
    case zq::Scheme::Channelwise:
      return codes + size_t(cols) * 4;
    case zq::Scheme::Groupwise:
      return codes + size_t(rows) * size_t(cols / group) * 4;
    case zq::Scheme::Cstq:
      return codes + size_t(rows) * 4 + size_t(cols) * 2;
  }
  return 0;
}

void check_case(int rows, int cols, int bits, zq::Scheme scheme, int group, double scale,
                uint32_t seed) {
  std::vector<float> x = make_data(rows, cols, scale, seed);
  if (scheme == zq::Scheme::Cstq && cols >= 5) {
    for (int r = 0; r < rows; ++r) x[size_t(r) * size_t(cols) + 4] = 0.0f;
  }
  const std::string what = zq::scheme_name(scheme) + " " + std::to_string(rows) + "x" +
                           std::to_string(cols) + " " + std::to_string(bits) + " bits group " +
                           std::to_string(group) + " scale " + std::to_string(scale);
  const zq::QuantizedMatrix q = zq::quantize(x.data(), rows, cols, bits, scheme, group);
  const Expected e = reference(x, rows, cols, bits, scheme, group);

  ASSERT_EQ(q.bytes(), expected_bytes(rows, cols, bits, scheme, group)) << what;
  ASSERT_EQ(q.lo.size(), e.groups.size()) << what;
  for (size_t g = 0; g < e.groups.size(); ++g) {
    ASSERT_EQ(half_value(q.lo[g]), e.groups[g].lo) << what << " group " << g;
    ASSERT_EQ(half_value(q.step[g]), e.groups[g].step) << what << " group " << g;
  }
  ASSERT_EQ(q.channel_scale.size(), e.channel_scale.size()) << what;
  for (size_t c = 0; c < e.channel_scale.size(); ++c) {
    ASSERT_EQ(half_value(q.channel_scale[c]), e.channel_scale[c]) << what << " col " << c;
  }

  std::vector<float> out(x.size(), NAN), row(size_t(cols), NAN);
  zq::dequantize(q, out.data());
  double worst = 0;
  for (int r = 0; r < rows; ++r) {
    zq::dequantize_row(q, r, row.data());
    for (int c = 0; c < cols; ++c) {
      const size_t i = size_t(r) * size_t(cols) + size_t(c);
      const double got = out[i];
      ASSERT_EQ(got, double(row[size_t(c)])) << what << " row " << r << " col " << c;
      const bool ok = std::fabs(got - e.value[i]) <= e.tol[i] ||
                      (!std::isnan(e.alt[i]) && std::fabs(got - e.alt[i]) <= e.tol[i]);
      ASSERT_TRUE(ok) << what << " row " << r << " col " << c << ": got " << got << ", want "
                      << e.value[i];
      ASSERT_LE(std::fabs(got - double(x[i])), e.bound[i]) << what << " row " << r << " col " << c;
      worst = std::max(worst, std::fabs(got - double(x[i])));
    }
  }
  // Zero-range groups dequantize exactly (the values are fp16-representable).
  if (rows >= 3 && scheme != zq::Scheme::Channelwise && scheme != zq::Scheme::Cstq) {
    for (int c = 0; c < cols; ++c) ASSERT_EQ(out[size_t(cols) + size_t(c)], 0.75f) << what;
  }
  if (rows >= 2 && cols >= 3 && scheme == zq::Scheme::Channelwise) {
    for (int r = 0; r < rows; ++r) ASSERT_EQ(out[size_t(r) * size_t(cols) + 2], 0.75f) << what;
  }
  if (scheme == zq::Scheme::Cstq && cols >= 5) {
    for (int r = 0; r < rows; ++r) ASSERT_EQ(out[size_t(r) * size_t(cols) + 4], 0.0f) << what;
  }
}

TEST(Quantizer, EverySchemeMatchesTheReference) {
  uint32_t seed = 1;
  for (int rows : {1, 3, 17, 128, 257}) {
    for (int cols : {64, 128, 5, 7, 96}) {
      for (int bits : {2, 4, 8}) {
        const double scale = std::vector<double>{1.0, 1e-3, 30.0}[seed % 3];
        check_case(rows, cols, bits, zq::Scheme::Tokenwise, 0, scale, seed++);
        check_case(rows, cols, bits, zq::Scheme::Channelwise, 0, scale, seed++);
        check_case(rows, cols, bits, zq::Scheme::Cstq, 0, scale, seed++);
        for (int group : {1, 32, 16, 5, 7, cols}) {
          if (cols % group == 0 && (group != 1 || cols < 10)) {
            check_case(rows, cols, bits, zq::Scheme::Groupwise, group, scale, seed++);
          }
        }
      }
    }
  }
}

TEST(Quantizer, TinyValuesWithSubnormalSteps) {
  uint32_t seed = 1000;
  for (auto scheme : {zq::Scheme::Tokenwise, zq::Scheme::Channelwise, zq::Scheme::Cstq}) {
    for (int bits : {2, 4, 8}) check_case(17, 7, bits, scheme, 0, 1e-6, seed++);
  }
}

TEST(Quantizer, BytesCountEveryStoredByte) {
  std::vector<float> x(size_t(4096) * 128, 1.0f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 13) - 6.0f;
  const auto tok = zq::quantize(x.data(), 4096, 128, 2, zq::Scheme::Tokenwise);
  EXPECT_EQ(tok.bytes(), 4096u * 128 / 4 + 4096u * 4);
  EXPECT_EQ(tok.code_bytes(), 4096u * 128 / 4);
  EXPECT_EQ(tok.param_bytes(), 4096u * 4);
  const auto ch = zq::quantize(x.data(), 4096, 128, 4, zq::Scheme::Channelwise);
  EXPECT_EQ(ch.bytes(), 4096u * 128 / 2 + 128u * 4);
  const auto gw = zq::quantize(x.data(), 4096, 128, 2, zq::Scheme::Groupwise, 32);
  EXPECT_EQ(gw.bytes(), 4096u * 128 / 4 + 4096u * 4 * 4);
  const auto cs = zq::quantize(x.data(), 4096, 128, 8, zq::Scheme::Cstq);
  EXPECT_EQ(cs.bytes(), 4096u * 128 + 4096u * 4 + 128u * 2);
  const auto odd = zq::quantize(x.data(), 3, 5, 2, zq::Scheme::Tokenwise);
  EXPECT_EQ(odd.bytes(), 4u + 3u * 4);  // 15 codes -> 4 bytes
  const auto empty = zq::quantize(x.data(), 0, 128, 2, zq::Scheme::Cstq);
  EXPECT_EQ(empty.bytes(), 0u);
}

TEST(Quantizer, NamesAndGroupCounts) {
  EXPECT_EQ(zq::scheme_name(zq::Scheme::Tokenwise), "tokenwise");
  EXPECT_EQ(zq::scheme_name(zq::Scheme::Channelwise), "channelwise");
  EXPECT_EQ(zq::scheme_name(zq::Scheme::Groupwise), "groupwise");
  EXPECT_EQ(zq::scheme_name(zq::Scheme::Cstq), "cstq");
  for (auto s :
       {zq::Scheme::Tokenwise, zq::Scheme::Channelwise, zq::Scheme::Groupwise, zq::Scheme::Cstq}) {
    EXPECT_EQ(zq::parse_scheme(zq::scheme_name(s)), s);
  }
  EXPECT_THROW(zq::parse_scheme("kivi"), zc::Error);
  EXPECT_EQ(zq::group_count(zq::Scheme::Groupwise, 10, 64, 16), 40u);
  EXPECT_EQ(zq::group_count(zq::Scheme::Channelwise, 10, 64), 64u);
  EXPECT_EQ(zq::group_count(zq::Scheme::Channelwise, 0, 64), 0u);
}

using zc::test::error_of;

TEST(Quantizer, RejectsBadInput) {
  std::vector<float> x(6 * 8, 0.5f);
  x[2 * 8 + 3] = std::numeric_limits<float>::quiet_NaN();
  for (auto s :
       {zq::Scheme::Tokenwise, zq::Scheme::Channelwise, zq::Scheme::Groupwise, zq::Scheme::Cstq}) {
    const std::string msg = error_of([&] { zq::quantize(x.data(), 6, 8, 2, s, 4); });
    EXPECT_NE(msg.find("row 2, col 3"), std::string::npos) << msg;
  }
  x[2 * 8 + 3] = -std::numeric_limits<float>::infinity();
  EXPECT_THROW(zq::quantize(x.data(), 6, 8, 4, zq::Scheme::Cstq), zc::Error);
  x[2 * 8 + 3] = 0;
  EXPECT_THROW(zq::quantize(x.data(), 6, 8, 3, zq::Scheme::Tokenwise), zc::Error);
  EXPECT_THROW(zq::quantize(x.data(), 6, 8, 2, zq::Scheme::Groupwise, 3), zc::Error);
  EXPECT_THROW(zq::quantize(x.data(), 6, 8, 2, zq::Scheme::Groupwise, 0), zc::Error);
  EXPECT_THROW(zq::quantize(x.data(), -1, 8, 2, zq::Scheme::Tokenwise), zc::Error);
  EXPECT_THROW(zq::quantize(x.data(), 6, 0, 2, zq::Scheme::Tokenwise), zc::Error);
  auto q = zq::quantize(x.data(), 6, 8, 2, zq::Scheme::Tokenwise);
  std::vector<float> row(8);
  EXPECT_THROW(zq::dequantize_row(q, 6, row.data()), zc::Error);
  EXPECT_THROW(zq::dequantize_row(q, -1, row.data()), zc::Error);
  q.lo.pop_back();
  EXPECT_THROW(zq::dequantize(q, x.data()), zc::Error);
}

}  // namespace
