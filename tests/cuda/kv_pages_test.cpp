// The paged GPU layout (cuda/kv/kv_page.h) built on the host: every key and value read
// back from the pool by a reader written here from the layout's documentation must
// equal what quant::dequantize gives for the block (and the fp16 rows as given).
// Runs without a GPU: it checks the layout the kernels rely on.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "core/error.h"
#include "core/half.h"
#include "kv_fixture.h"

namespace {

using zc::cuda::KvPage;
using zc::cuda::PageValues;

float half_at(const std::vector<uint8_t>& pool, size_t unit, size_t index) {
  uint16_t h;
  std::memcpy(&h, &pool[unit * 16 + 2 * index], 2);
  return zc::half_to_float(h);
}

unsigned code_at(const std::vector<uint8_t>& pool, size_t unit, int bit, int bits) {
  return (pool[unit * 16 + size_t(bit / 8)] >> (bit % 8)) & ((1u << bits) - 1u);
}

// Row t of page pg: d keys and d values, as the layout documents them.
void read_row(const std::vector<uint8_t>& pool, const KvPage& pg, int d, int t, float* k, float* v) {
  for (int c = 0; c < d; ++c) {
    if (pg.kbits == 16) {
      k[c] = half_at(pool, pg.k + size_t(c / 8) * 32 + size_t(t), size_t(c % 8));
    } else {
      const int cpv = 128 / pg.kbits;
      const unsigned code = code_at(pool, pg.k + size_t(c / cpv) * 32 + size_t(t), (c % cpv) * pg.kbits, pg.kbits);
      k[c] = float(code) * half_at(pool, pg.kp, size_t(d + c)) + half_at(pool, pg.kp, size_t(c));
    }
    if (pg.vbits == 16) {
      v[c] = half_at(pool, pg.v + size_t(t / 4) * size_t(d / 2) + size_t(c / 2), size_t((c % 2) * 4 + t % 4));
    } else {
      // Lane 4 (pair % 8) + t / 8 owns M-tile m = pair / 8's codes of tokens 8 (t / 8) ..
      // + 7; its words lie in vector (row) x 32 + lane. 2 bits: one word per M-tile,
      // four M-tiles a vector; the code of token u = t % 8 (a = u % 4) is at bit
      // 6 + 2 (a % 2) + 16 (u / 4) once the word is rotated left by 8 (c % 2) + 4 (a / 2).
      // 4 bits: two words per M-tile (channel 2 pair, 2 pair + 1), two M-tiles a vector,
      // token u at bit 4u.
      const int ng = d / pg.vgroup, gi = c / pg.vgroup;
      const int pair = c / 2, m = pair / 8, lane = 4 * (pair % 8) + t / 8, u = t % 8;
      size_t unit;
      int bit;
      if (pg.vbits == 2) {
        unit = pg.v + size_t(m / 4) * 32 + size_t(lane);
        const int a = u % 4, rot = 8 * (c % 2) + 4 * (a / 2);
        bit = 32 * (m % 4) + ((6 + 2 * (a % 2) + 16 * (u / 4) - rot) % 32 + 32) % 32;
      } else {
        unit = pg.v + size_t(m / 2) * 32 + size_t(lane);
        bit = 32 * (2 * (m % 2) + c % 2) + 4 * u;
      }
      const unsigned code = code_at(pool, unit, bit, pg.vbits);
      float x = float(code) * half_at(pool, pg.vp, size_t((ng + gi) * 32 + t)) +
                half_at(pool, pg.vp, size_t(gi * 32 + t));
      if (pg.values == PageValues::Cstq) x *= half_at(pool, pg.vs, size_t(c));
      v[c] = x;
    }
  }
}

TEST(CudaKvPages, PoolReadsBackAsTheCpuDequantizes) {
  zc::Rng rng(11);
  for (int d : {64, 128, 256}) {
    for (zc_test::Mix mix : {zc_test::Mix::Fp16, zc_test::Mix::ZipCache, zc_test::Mix::Kivi,
                             zc_test::Mix::TokenwiseMixedBits}) {
      for (int tokens : {1, 31, 33, 300}) {
        SCOPED_TRACE(::testing::Message() << "d " << d << ", mix " << int(mix) << ", " << tokens);
        zc::cuda::PagedKvBuilder b(d);
        const zc_test::RefRows ref = zc_test::add_random_list(b, mix, tokens, rng);
        ASSERT_EQ(b.lists(), 1);
        ASSERT_EQ(int(b.tokens(0)), ref.rows);
        ASSERT_EQ(ref.rows, tokens);
        std::vector<float> k(static_cast<size_t>(d)), v(static_cast<size_t>(d));
        int row = 0;
        for (int p = b.offsets()[0]; p < b.offsets()[1]; ++p) {
          const KvPage& pg = b.pages()[size_t(p)];
          ASSERT_GE(pg.ntok, 1);
          ASSERT_LE(pg.ntok, 32);
          for (int t = 0; t < pg.ntok; ++t, ++row) {
            read_row(b.pool(), pg, d, t, k.data(), v.data());
            for (int c = 0; c < d; ++c) {
              ASSERT_FLOAT_EQ(k[size_t(c)], ref.k[size_t(row) * size_t(d) + size_t(c)]) << "key row " << row << " col " << c;
              ASSERT_FLOAT_EQ(v[size_t(c)], ref.v[size_t(row) * size_t(d) + size_t(c)]) << "value row " << row << " col " << c;
            }
          }
          // Padding tokens are zero, so an fp16 page never feeds garbage to p * v.
          for (int t = pg.ntok; t < 32; ++t) {
            read_row(b.pool(), pg, d, t, k.data(), v.data());
            for (int c = 0; c < d; ++c) {
              if (pg.vbits == 16) {
                ASSERT_EQ(v[size_t(c)], 0.0f);
              }
              if (pg.kbits == 16) {
                ASSERT_EQ(k[size_t(c)], 0.0f);
              }
            }
          }
        }
        EXPECT_EQ(row, ref.rows);
      }
    }
  }
}

TEST(CudaKvPages, ReplicateCopiesListsIntoDistinctMemory) {
  zc::Rng rng(3);
  zc::cuda::PagedKvBuilder b(64);
  const auto r0 = zc_test::add_random_list(b, zc_test::Mix::ZipCache, 200, rng);
  const auto r1 = zc_test::add_random_list(b, zc_test::Mix::Kivi, 100, rng);
  const size_t pool = b.pool().size();
  b.replicate(3);
  ASSERT_EQ(b.lists(), 6);
  EXPECT_EQ(b.pool().size(), 3 * pool);
  std::vector<float> k0(64), v0(64), k1(64), v1(64);
  for (int list = 0; list < 6; ++list) {
    EXPECT_EQ(int(b.tokens(list)), list % 2 == 0 ? r0.rows : r1.rows);
    const int base = list % 2;  // the original of this copy
    for (int i = 0; i < b.offsets()[size_t(base) + 1] - b.offsets()[size_t(base)]; ++i) {
      const KvPage& a = b.pages()[size_t(b.offsets()[size_t(base)] + i)];
      const KvPage& c = b.pages()[size_t(b.offsets()[size_t(list)] + i)];
      if (list >= 2) {
        EXPECT_NE(a.k, c.k);
      }
      read_row(b.pool(), a, 64, 0, k0.data(), v0.data());
      read_row(b.pool(), c, 64, 0, k1.data(), v1.data());
      EXPECT_EQ(k0, k1);
      EXPECT_EQ(v0, v1);
    }
  }
}

TEST(CudaKvPages, UnsupportedBlocksThrowNamingTheField) {
  EXPECT_THROW(zc::cuda::PagedKvBuilder(96), zc::Error);
  zc::cuda::PagedKvBuilder b(64);
  std::vector<float> x(40 * 64, 0.5f);
  const auto kc = zc::quant::quantize(x.data(), 40, 64, 2, zc::quant::Scheme::Channelwise);
  const auto vt = zc::quant::quantize(x.data(), 40, 64, 2, zc::quant::Scheme::Tokenwise);
  EXPECT_THROW(b.add_block(kc, vt), zc::Error);  // before begin_list
  b.begin_list();
  auto expect_error = [&](const zc::quant::QuantizedMatrix& k, const zc::quant::QuantizedMatrix& v,
                          const std::string& word) {
    try {
      b.add_block(k, v);
      ADD_FAILURE() << "no error; expected one about " << word;
    } catch (const zc::Error& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  };
  expect_error(vt, vt, "keys must be channelwise");
  expect_error(zc::quant::quantize(x.data(), 40, 64, 8, zc::quant::Scheme::Channelwise), vt, "key bits 8");
  expect_error(kc, zc::quant::quantize(x.data(), 40, 64, 2, zc::quant::Scheme::Groupwise, 4), "value group 4");
  expect_error(kc, zc::quant::quantize(x.data(), 39, 64, 2, zc::quant::Scheme::Tokenwise), "39 value rows");
  b.add_block(kc, vt);
  EXPECT_EQ(b.pages().size(), 2u);
  EXPECT_EQ(b.pages()[1].ntok, 8);
}

// page_key_blocks (which tells the decode kernel to stage every page's key parameters)
// holds only while every quantized block fits one page: KIVI's 32-token blocks, not a
// ZipCache block of 33 tokens or more, and not a cache without codes.
TEST(CudaKvPages, PageKeyBlocksOnlyWhileEveryBlockIsOnePage) {
  std::vector<float> x(64 * 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 17) * 0.25f - 2.0f;
  const auto block = [&](int rows) {
    return std::make_pair(zc::quant::quantize(x.data(), rows, 64, 2, zc::quant::Scheme::Channelwise),
                          zc::quant::quantize(x.data(), rows, 64, 2, zc::quant::Scheme::Tokenwise));
  };
  zc::cuda::PagedKvBuilder b(64);
  b.begin_list();
  std::vector<uint16_t> fp16(64 * 3, 0);
  b.add_fp16(fp16.data(), fp16.data(), 64, 3);
  EXPECT_FALSE(b.page_key_blocks());  // no codes at all
  for (const int rows : {32, 1, 17}) {
    const auto [k, v] = block(rows);
    b.add_block(k, v);
    EXPECT_TRUE(b.page_key_blocks()) << rows << " rows";
  }
  b.begin_list();
  const auto [k, v] = block(33);
  b.add_block(k, v);
  EXPECT_FALSE(b.page_key_blocks());
}

}  // namespace
