// Bit packing (SPEC.md section 1): exact byte layout for hand-made codes, round
// trips, and bad bit widths.
#include "quant/pack.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "core/error.h"

namespace zq = zc::quant;

namespace {

std::vector<uint8_t> pack(const std::vector<uint8_t>& codes, int bits) {
  std::vector<uint8_t> out(zq::packed_bytes(codes.size(), bits), 0xEE);
  zq::pack_codes(codes.data(), codes.size(), bits, out.data());
  return out;
}

TEST(Pack, PackedBytes) {
  EXPECT_EQ(zq::packed_bytes(0, 2), 0u);
  EXPECT_EQ(zq::packed_bytes(1, 2), 1u);
  EXPECT_EQ(zq::packed_bytes(4, 2), 1u);
  EXPECT_EQ(zq::packed_bytes(5, 2), 2u);
  EXPECT_EQ(zq::packed_bytes(1, 4), 1u);
  EXPECT_EQ(zq::packed_bytes(3, 4), 2u);
  EXPECT_EQ(zq::packed_bytes(7, 8), 7u);
  EXPECT_EQ(zq::packed_bytes(4096 * 128, 2), 4096u * 128 / 4);
}

TEST(Pack, TwoBitLayoutIsLittleEndFirst) {
  // 1 | 2<<2 | 3<<4 | 0<<6 = 0x39; the tail byte keeps unused bits zero.
  EXPECT_EQ(pack({1, 2, 3, 0, 3}, 2), (std::vector<uint8_t>{0x39, 0x03}));
  EXPECT_EQ(pack({3, 3, 3, 3}, 2), (std::vector<uint8_t>{0xFF}));
  EXPECT_EQ(pack({0, 0, 0, 2, 1, 0}, 2), (std::vector<uint8_t>{0x80, 0x01}));
}

TEST(Pack, FourAndEightBitLayout) {
  EXPECT_EQ(pack({0xA, 0x5, 0xF}, 4), (std::vector<uint8_t>{0x5A, 0x0F}));
  EXPECT_EQ(pack({0x1, 0x2, 0x3, 0x4}, 4), (std::vector<uint8_t>{0x21, 0x43}));
  EXPECT_EQ(pack({7, 255, 0, 128}, 8), (std::vector<uint8_t>{7, 255, 0, 128}));
}

TEST(Pack, RoundTripsAndPackedCodeAgree) {
  std::mt19937 gen(7);
  for (int bits : {2, 4, 8}) {
    for (size_t n : {0u, 1u, 2u, 3u, 4u, 5u, 7u, 8u, 9u, 31u, 33u, 1000u, 4099u}) {
      std::vector<uint8_t> codes(n);
      for (auto& c : codes) c = uint8_t(gen() % (1u << bits));
      const auto packed = pack(codes, bits);
      std::vector<uint8_t> back(n, 0xEE);
      zq::unpack_codes(packed.data(), n, bits, back.data());
      EXPECT_EQ(back, codes) << bits << " bits, n=" << n;
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(zq::packed_code(packed.data(), i, bits), codes[i]);
      // Reference layout: bit j*bits.. of the stream holds code j.
      for (size_t i = 0; i < n; ++i) {
        const size_t bit = i * size_t(bits);
        ASSERT_EQ((packed[bit / 8] >> (bit % 8)) & ((1u << bits) - 1), codes[i]);
      }
    }
  }
}

TEST(Pack, RejectsBadBitWidthsAndCodes) {
  uint8_t codes[4] = {0, 1, 2, 3}, out[4] = {};
  for (int bits : {0, 1, 3, 5, 16, -2}) {
    EXPECT_THROW(zq::packed_bytes(4, bits), zc::Error) << bits;
    EXPECT_THROW(zq::pack_codes(codes, 4, bits, out), zc::Error) << bits;
    EXPECT_THROW(zq::unpack_codes(out, 4, bits, codes), zc::Error) << bits;
  }
  const uint8_t big[2] = {1, 4};
  EXPECT_THROW(zq::pack_codes(big, 2, 2, out), zc::Error);
  const uint8_t big4[1] = {16};
  EXPECT_THROW(zq::pack_codes(big4, 1, 4, out), zc::Error);
}

}  // namespace
