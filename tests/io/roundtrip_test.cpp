// write_safetensors then read back, for random shapes and dtypes. Expectations are
// computed here, independently: fp16/bf16 rounding by searching the exact value grid
// (decoded in double from the bit definitions), and the file's bytes are checked by
// parsing the raw file in the test, not through SafetensorsFile.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "io/safetensors.h"
#include "io_test_util.h"

namespace zc::io {
namespace {

using testing::bf16_value;
using testing::expect_error;
using testing::half_value;
using testing::read_bytes;
using testing::TempDir;

// All finite non-negative values of a 16-bit format, sorted, with their bits.
struct Grid {
  std::vector<double> value;
  std::vector<uint16_t> bits;
  // Round-to-nearest-even: the bits of the grid value nearest |x|, sign of x.
  uint16_t nearest(double x) const {
    const double a = std::fabs(x);
    const size_t hi = size_t(std::lower_bound(value.begin(), value.end(), a) - value.begin());
    size_t pick = hi;
    if (hi == value.size()) {
      pick = hi - 1;
    } else if (hi > 0) {
      const double dlo = a - value[hi - 1], dhi = value[hi] - a;
      pick = dlo < dhi ? hi - 1 : dhi < dlo ? hi : ((bits[hi] & 1) == 0 ? hi : hi - 1);
    }
    return uint16_t(bits[pick] | (std::signbit(x) ? 0x8000 : 0));
  }
};
Grid make_grid(double (*decode)(uint16_t), int exp_shift, int exp_max) {
  Grid g;
  for (uint32_t b = 0; b < 0x8000; ++b) {
    if (int(b >> exp_shift) == exp_max) break;  // Inf/NaN and above: not finite
    g.value.push_back(decode(uint16_t(b)));
    g.bits.push_back(uint16_t(b));
  }
  return g;
}
const Grid& half_grid() {
  static const Grid g = make_grid(half_value, 10, 31);
  return g;
}
const Grid& bf16_grid() {
  static const Grid g = make_grid(bf16_value, 7, 255);
  return g;
}

// A value mix that reaches subnormals, exact grid points and exact ties.
float random_value(Rng& rng, DType dt) {
  const int kind = int(rng.integer(0, 9));
  if (kind == 0) return rng.integer(0, 1) ? 0.0f : -0.0f;
  if (kind == 1 && dt == DType::F16) {  // a tie halfway between two fp16 neighbours
    const uint16_t h = uint16_t(rng.integer(0, 0x7bfe));
    return float((half_value(h) + half_value(uint16_t(h + 1))) / 2);
  }
  if (kind == 1 && dt == DType::BF16) {
    const uint16_t b = uint16_t(rng.integer(0, 0x7f7e));
    return float((bf16_value(b) + bf16_value(uint16_t(b + 1))) / 2);
  }
  if (kind == 2 && dt != DType::F16) {  // float and bf16 subnormals
    return float(std::ldexp(rng.uniform() * 2 - 1, int(rng.integer(-140, -120))));
  }
  const int max_exp = dt == DType::F16 ? 14 : 100;
  const float v = float(std::ldexp(rng.uniform() * 2 - 1, int(rng.integer(-30, max_exp))));
  return v;
}

std::vector<int64_t> random_shape(Rng& rng) {
  std::vector<int64_t> shape(size_t(rng.integer(0, 4)));
  for (auto& d : shape) d = rng.integer(0, 9) == 0 ? 0 : rng.integer(1, 7);
  return shape;
}

uint32_t float_bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

struct Expected {
  std::vector<uint8_t> bytes;  // exact bytes on disk
  std::vector<float> floats;   // value after reading, for float dtypes
};

Expected expect_for(const TensorToWrite& t) {
  Expected e;
  auto push = [&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    e.bytes.insert(e.bytes.end(), b, b + n);
  };
  for (float v : t.values) {
    if (t.dtype == DType::F32) {
      push(&v, 4);
      e.floats.push_back(v);
    } else {
      const bool half = t.dtype == DType::F16;
      const uint16_t b = (half ? half_grid() : bf16_grid()).nearest(double(v));
      push(&b, 2);
      e.floats.push_back(float(half ? half_value(b) : bf16_value(b)));
    }
  }
  for (int64_t v : t.ints) {
    if (t.dtype == DType::I64) push(&v, 8);
    if (t.dtype == DType::I32) {
      const int32_t w = int32_t(v);
      push(&w, 4);
    }
    if (t.dtype == DType::U8) e.bytes.push_back(uint8_t(v));
  }
  return e;
}

TEST(RoundTrip, GridReferenceSanity) {
  // The independent reference itself: a few values known by hand.
  EXPECT_EQ(half_grid().nearest(1.0), 0x3c00);
  EXPECT_EQ(half_grid().nearest(1.0 + std::ldexp(1, -11)), 0x3c00);      // tie -> even
  EXPECT_EQ(half_grid().nearest(1.0 + 3 * std::ldexp(1, -11)), 0x3c02);  // tie -> even
  EXPECT_EQ(half_grid().nearest(-65504.0), 0xfbff);
  EXPECT_EQ(half_grid().nearest(std::ldexp(1, -25) * 1.01), 0x0001);  // subnormal
  EXPECT_EQ(bf16_grid().nearest(1.0), 0x3f80);
  EXPECT_EQ(bf16_grid().nearest(-2.0), 0xc000);
}

TEST(RoundTrip, RandomTensors) {
  Rng rng(20240611);
  const DType dtypes[] = {DType::F32, DType::F16, DType::BF16, DType::I32, DType::I64, DType::U8};
  for (int trial = 0; trial < 40; ++trial) {
    TempDir dir;
    const std::string path = dir.file("t.safetensors");
    std::vector<TensorToWrite> tensors(size_t(rng.integer(1, 6)));
    for (size_t k = 0; k < tensors.size(); ++k) {
      TensorToWrite& t = tensors[k];
      t.name = "layer." + std::to_string(rng.integer(0, 99)) + ".w" + std::to_string(k);
      t.dtype = dtypes[rng.integer(0, 5)];
      t.shape = random_shape(rng);
      size_t n = 1;
      for (int64_t d : t.shape) n *= size_t(d);
      for (size_t i = 0; i < n; ++i) {
        switch (t.dtype) {
          case DType::I32: t.ints.push_back(rng.integer(INT32_MIN, INT32_MAX)); break;
          case DType::I64: t.ints.push_back(rng.integer(INT64_MIN, INT64_MAX)); break;
          case DType::U8: t.ints.push_back(rng.integer(0, 255)); break;
          default: t.values.push_back(random_value(rng, t.dtype));
        }
      }
    }
    const std::map<std::string, std::string> meta = {{"format", "pt"}, {"trial", std::to_string(trial)}};
    write_safetensors(path, tensors, meta);
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

    // The raw file, parsed here: length, padding, header fields, bytes.
    const std::vector<uint8_t> raw = read_bytes(path);
    ASSERT_GE(raw.size(), 8u);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | raw[size_t(i)];
    ASSERT_EQ(n % 8, 0u) << "header not padded to 8 bytes";
    ASSERT_LE(8 + n, raw.size());
    const std::string text(raw.begin() + 8, raw.begin() + 8 + long(n));
    const size_t close = text.find_last_of('}');
    EXPECT_EQ(text.find_first_not_of(' ', close + 1), std::string::npos) << "padding must be spaces";
    const auto header = nlohmann::json::parse(text);
    EXPECT_EQ(header.size(), tensors.size() + 1);
    EXPECT_EQ(header["__metadata__"]["trial"], std::to_string(trial));
    uint64_t data_end = 0;
    for (const TensorToWrite& t : tensors) {
      SCOPED_TRACE(t.name + " " + dtype_name(t.dtype));
      const auto& h = header.at(t.name);
      EXPECT_EQ(h["dtype"], dtype_name(t.dtype));
      EXPECT_EQ(h["shape"].get<std::vector<int64_t>>(), t.shape);
      const uint64_t b = h["data_offsets"][0], e = h["data_offsets"][1];
      const Expected want = expect_for(t);
      ASSERT_EQ(e - b, want.bytes.size());
      EXPECT_EQ(b % dtype_size(t.dtype), 0u) << "tensor not aligned to its element size";
      EXPECT_TRUE(std::equal(want.bytes.begin(), want.bytes.end(), raw.begin() + long(8 + n + b)));
      data_end = std::max(data_end, e);
    }
    EXPECT_EQ(8 + n + data_end, raw.size());

    // And through the reader.
    SafetensorsFile f(path);
    EXPECT_EQ(f.metadata(), meta);
    EXPECT_EQ(f.names().size(), tensors.size());
    for (const TensorToWrite& t : tensors) {
      SCOPED_TRACE(t.name + " " + dtype_name(t.dtype));
      const TensorInfo& info = f.info(t.name);
      EXPECT_EQ(info.dtype, t.dtype);
      EXPECT_EQ(info.shape, t.shape);
      EXPECT_EQ(info.numel(), std::max(t.values.size(), t.ints.size()));
      if (t.ints.empty() && (t.dtype == DType::I32 || t.dtype == DType::I64 || t.dtype == DType::U8)) {
        EXPECT_TRUE(f.to_int(t.name).empty());
      } else if (!t.ints.empty()) {
        EXPECT_EQ(f.to_int(t.name), t.ints);
      } else {
        const std::vector<float> got = f.to_float(t.name);
        const std::vector<float> want = expect_for(t).floats;
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < got.size(); ++i) {
          EXPECT_EQ(float_bits_of(got[i]), float_bits_of(want[i])) << "element " << i << " from " << t.values[i];
        }
      }
    }
  }
}

TEST(RoundTrip, EmptyFileAndOverwrite) {
  TempDir dir;
  const std::string path = dir.file("e.safetensors");
  write_safetensors(path, {});
  const std::vector<uint8_t> raw = read_bytes(path);
  ASSERT_EQ(raw.size(), 16u);  // 8-byte length, then "{}" padded to 8
  EXPECT_EQ(std::string(raw.begin() + 8, raw.end()), "{}      ");
  EXPECT_TRUE(SafetensorsFile(path).names().empty());
  write_safetensors(path, {{"x", DType::F32, {1}, {2.5f}, {}}});  // replaces the old file
  EXPECT_EQ(SafetensorsFile(path).to_float("x"), std::vector<float>{2.5f});
}

TEST(RoundTrip, WriterRejectsBadInput) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  write_safetensors(path, {{"keep", DType::F32, {1}, {1.0f}, {}}});
  const std::vector<uint8_t> before = read_bytes(path);
  auto bad = [&](TensorToWrite t, const std::vector<std::string>& parts) {
    expect_error([&] { write_safetensors(path, {t}); }, parts);
    EXPECT_EQ(read_bytes(path), before) << "a failed write changed the file";
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  };
  bad({"a", DType::F32, {2, 3}, {1, 2, 3}, {}}, {path, "'a'", "needs 6 elements", "got 3 values"});
  bad({"a", DType::I64, {2}, {}, {1}}, {"'a'", "needs 2 elements", "got 1 ints"});
  bad({"a", DType::F16, {1}, {1}, {1}}, {"'a'", "and 1 ints"});
  bad({"a", DType::F32, {-1}, {}, {}}, {"'a'", "negative dimension"});
  bad({"a", DType::F16, {2}, {1.0f, 70000.0f}, {}}, {"'a'", "element 1", "not finite as F16"});
  bad({"a", DType::F32, {1}, {std::numeric_limits<float>::quiet_NaN()}, {}}, {"'a'", "element 0"});
  bad({"a", DType::I32, {1}, {}, {int64_t(1) << 31}}, {"'a'", "does not fit in I32"});
  bad({"a", DType::U8, {2}, {}, {3, -1}}, {"'a'", "element 1", "does not fit in U8"});
  bad({"__metadata__", DType::F32, {0}, {}, {}}, {"reserved"});
  bad({"", DType::F32, {0}, {}, {}}, {"empty name"});
  expect_error([&] {
    write_safetensors(path, {{"d", DType::F32, {0}, {}, {}}, {"d", DType::F32, {0}, {}, {}}});
  }, {"'d'", "twice"});
  const std::string nowhere = dir.file("no/such/dir/x.safetensors");
  expect_error([&] { write_safetensors(nowhere, {}); }, {nowhere, "cannot create"});
}

}  // namespace
}  // namespace zc::io
