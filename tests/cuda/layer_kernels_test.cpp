// GPU layer kernels (cuda/model/layer_kernels.h) against double-precision references
// written here: RMSNorm (full rows and per head), bias, RoPE (rotate_half, fp32 angle,
// double cos/sin), SwiGLU, the bf16/fp16 roundings (bit for bit with core/half.h),
// the QKV split, the embedding lookup and the first-index argmax; many shapes including
// one row, odd sizes and head dims 64/128/256. Argument errors are zc::Errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "cuda/model/layer_kernels.h"
#include "gpu_test.h"

using zc::cuda::DeviceBuffer;

namespace {

std::vector<float> random_vec(zc::Rng& rng, size_t n, float scale = 1.0f) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.normal() * scale;
  return v;
}

using zc_test::dev;
using zc_test::sync_download;

// Double reference of LlamaRMSNorm for one vector.
std::vector<double> rms_ref(const float* x, int dim, const float* w, float eps) {
  double ss = 0;
  for (int i = 0; i < dim; ++i) ss += double(x[i]) * double(x[i]);
  const double inv = 1.0 / std::sqrt(ss / dim + double(eps));
  std::vector<double> y(static_cast<size_t>(dim));
  for (int i = 0; i < dim; ++i) y[size_t(i)] = double(w[i]) * double(x[i]) * inv;
  return y;
}

TEST(CudaLayerKernels, RmsNormF32AndBf16) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(11);
  for (int rows : {1, 3, 17}) {
    // Multiples of 4 up to 16384 take the vector kernel, the rest the strided one.
    for (int dim : {1, 7, 64, 128, 256, 1000, 3584, 4096, 4098, 5120, 16383, 16384}) {
      SCOPED_TRACE(::testing::Message() << rows << " x " << dim);
      const float eps = dim == 7 ? 1e-5f : 1e-6f;
      const auto x = random_vec(rng, size_t(rows) * size_t(dim), float(rng.uniform() * 10 + 0.01));
      const auto w = random_vec(rng, size_t(dim));
      auto dx = dev(x);
      auto dw = dev(w);
      DeviceBuffer<float> yf(x.size());
      DeviceBuffer<uint16_t> yb(x.size());
      yf.fill_bytes(0xff);
      yb.fill_bytes(0xff);
      zc::cuda::rmsnorm_f32(dx.get(), rows, dim, dw.get(), eps, yf.get());
      zc::cuda::rmsnorm_to_bf16(dx.get(), rows, dim, dw.get(), eps, yb.get());
      zc::cuda::rmsnorm_f32(dx.get(), rows, dim, dw.get(), eps, dx.get());  // in place
      const auto gf = sync_download(yf);
      const auto gb = yb.download();
      const auto gi = dx.download();
      for (int r = 0; r < rows; ++r) {
        const auto ref = rms_ref(&x[size_t(r) * size_t(dim)], dim, w.data(), eps);
        for (int i = 0; i < dim; ++i) {
          const size_t e = size_t(r) * size_t(dim) + size_t(i);
          const double want = ref[size_t(i)];
          ASSERT_NEAR(gf[e], want, 3e-6 * std::abs(want) + 1e-30) << "f32 row " << r << " col " << i;
          ASSERT_EQ(gi[e], gf[e]) << "in place row " << r << " col " << i;
          // bf16 keeps 8 significant bits: within half a bf16 ulp plus the fp32 error.
          ASSERT_NEAR(zc::bf16_to_float(gb[e]), want, std::abs(want) * (1.0 / 256.0 + 3e-6) + 1e-30)
              << "bf16 row " << r << " col " << i;
        }
      }
    }
  }
}

// Rows that start off a 16-byte boundary take the strided kernel; same results.
TEST(CudaLayerKernels, RmsNormOnMisalignedRows) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(12);
  const int rows = 3, dim = 4096;
  const auto x = random_vec(rng, size_t(rows) * size_t(dim) + 1, 3.0f);
  const auto w = random_vec(rng, size_t(dim));
  auto dx = dev(x);
  auto dw = dev(w);
  DeviceBuffer<float> yf(x.size());
  yf.fill_bytes(0);  // element 0 lies before the rows: it must stay as it is
  zc::cuda::rmsnorm_f32(dx.get() + 1, rows, dim, dw.get(), 1e-6f, yf.get() + 1);
  const auto gf = sync_download(yf);
  EXPECT_EQ(gf[0], 0.0f) << "wrote before the first row";
  for (int r = 0; r < rows; ++r) {
    const auto ref = rms_ref(&x[size_t(r) * size_t(dim) + 1], dim, w.data(), 1e-6f);
    for (int i = 0; i < dim; ++i) {
      const double want = ref[size_t(i)];
      ASSERT_NEAR(gf[size_t(r) * size_t(dim) + size_t(i) + 1], want, 3e-6 * std::abs(want) + 1e-30) << r << " " << i;
    }
  }
}

TEST(CudaLayerKernels, HeadRmsNormTouchesOnlyItsHeads) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(12);
  for (int rows : {1, 5}) {
    for (int heads : {1, 3, 8}) {
      for (int hd : {1, 7, 64, 128, 256}) {
        SCOPED_TRACE(::testing::Message() << rows << " rows, " << heads << " heads x " << hd);
        const int first = int(rng.integer(0, 9));
        const int stride = first + heads * hd + int(rng.integer(0, 5));
        const auto x = random_vec(rng, size_t(rows) * size_t(stride), 3.0f);
        const auto w = random_vec(rng, size_t(hd));
        auto dx = dev(x);
        auto dw = dev(w);
        zc::cuda::head_rmsnorm_inplace(dx.get(), rows, stride, first, heads, hd, dw.get(), 1e-6f);
        const auto g = sync_download(dx);
        for (int r = 0; r < rows; ++r) {
          for (int c = 0; c < stride; ++c) {
            const size_t e = size_t(r) * size_t(stride) + size_t(c);
            if (c < first || c >= first + heads * hd) {
              ASSERT_EQ(g[e], x[e]) << "untouched row " << r << " col " << c;
              continue;
            }
            const int h = (c - first) / hd, i = (c - first) % hd;
            const auto ref = rms_ref(&x[size_t(r) * size_t(stride) + size_t(first + h * hd)], hd,
                                     w.data(), 1e-6f);
            ASSERT_NEAR(g[e], ref[size_t(i)], 3e-6 * std::abs(ref[size_t(i)]) + 1e-30)
                << "row " << r << " head " << h << " i " << i;
          }
        }
      }
    }
  }
}

TEST(CudaLayerKernels, AddBiasIsOneRoundedAdd) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(13);
  for (int rows : {1, 2, 33}) {
    for (int cols : {1, 5, 128, 4099}) {
      const auto y = random_vec(rng, size_t(rows) * size_t(cols));
      const auto b = random_vec(rng, size_t(cols), 0.1f);
      auto dy = dev(y);
      auto db = dev(b);
      zc::cuda::add_bias(dy.get(), rows, cols, db.get());
      const auto g = sync_download(dy);
      for (size_t e = 0; e < g.size(); ++e) {
        // The double sum of two floats rounded once is the IEEE float sum.
        ASSERT_EQ(g[e], float(double(y[e]) + double(b[e % size_t(cols)]))) << rows << "x" << cols << " at " << e;
      }
    }
  }
}

TEST(CudaLayerKernels, RopeRotateHalfAtManyPositions) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(14);
  for (int hd : {2, 6, 64, 128, 256}) {
    for (int heads : {1, 4}) {
      for (int rows : {1, 7, 40}) {
        SCOPED_TRACE(::testing::Message() << rows << " rows, " << heads << " heads x " << hd);
        const int half = hd / 2;
        const double theta = hd == 128 ? 1e6 : 10000.0;
        std::vector<float> inv(static_cast<size_t>(half));
        for (int i = 0; i < half; ++i) inv[size_t(i)] = float(1.0 / std::pow(theta, 2.0 * i / hd));
        std::vector<int32_t> pos(static_cast<size_t>(rows));
        for (auto& p : pos) p = int32_t(rng.integer(0, 1) ? rng.integer(0, 64) : rng.integer(0, 200000));
        pos[0] = 0;
        const int first = int(rng.integer(0, 3)) * 2;
        const int stride = first + heads * hd + int(rng.integer(0, 4));
        const auto x = random_vec(rng, size_t(rows) * size_t(stride), 2.0f);
        auto dx = dev(x);
        auto dp = dev(pos);
        auto di = dev(inv);
        zc::cuda::rope_inplace(dx.get(), rows, stride, first, heads, hd, dp.get(), di.get());
        const auto g = sync_download(dx);
        for (int r = 0; r < rows; ++r) {
          const float* xr = &x[size_t(r) * size_t(stride)];
          const float* gr = &g[size_t(r) * size_t(stride)];
          for (int c = 0; c < stride; ++c) {
            if (c < first || c >= first + heads * hd) {
              ASSERT_EQ(gr[c], xr[c]) << "untouched col " << c;
            }
          }
          for (int h = 0; h < heads; ++h) {
            for (int i = 0; i < half; ++i) {
              // The fp32 angle (a float product rounds once), cos/sin in double then float.
              const float angle = float(double(float(pos[size_t(r)])) * double(inv[size_t(i)]));
              const double c = double(float(std::cos(double(angle))));
              const double s = double(float(std::sin(double(angle))));
              const int lo = first + h * hd + i, hi = lo + half;
              const double a = xr[lo], b = xr[hi];
              const double tol = 1e-6 * (std::abs(a) + std::abs(b)) + 1e-30;
              ASSERT_NEAR(gr[lo], a * c - b * s, tol) << "row " << r << " head " << h << " i " << i;
              ASSERT_NEAR(gr[hi], b * c + a * s, tol) << "row " << r << " head " << h << " i " << i;
            }
          }
        }
      }
    }
  }
}

TEST(CudaLayerKernels, SiluMulToBf16) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(15);
  for (int rows : {1, 3, 16}) {
    for (int inter : {1, 9, 256, 3000}) {
      auto gu = random_vec(rng, size_t(rows) * 2 * size_t(inter), 4.0f);
      gu[0] = -100.0f;  // exp overflow side: silu -> -0
      auto dgu = dev(gu);
      DeviceBuffer<uint16_t> y(size_t(rows) * size_t(inter));
      y.fill_bytes(0xff);
      zc::cuda::silu_mul_to_bf16(dgu.get(), rows, inter, y.get());
      const auto g = sync_download(y);
      for (int r = 0; r < rows; ++r) {
        for (int i = 0; i < inter; ++i) {
          const double gate = gu[size_t(r) * 2 * size_t(inter) + size_t(i)];
          const double up = gu[size_t(r) * 2 * size_t(inter) + size_t(inter + i)];
          const double want = gate / (1.0 + std::exp(-gate)) * up;
          const float got = zc::bf16_to_float(g[size_t(r) * size_t(inter) + size_t(i)]);
          ASSERT_NEAR(got, want, std::abs(want) * (1.0 / 256.0 + 1e-6) + 1e-37)
              << rows << " x " << inter << " row " << r << " i " << i;
        }
      }
    }
  }
}

TEST(CudaLayerKernels, SiluMulFromBf16ToBf16) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(22);
  // inter % 8 == 0 takes the 16-byte vector kernel, the rest (and an output that is not
  // 16-byte aligned: `shift`) the element loop.
  for (int rows : {1, 3, 16}) {
    for (int inter : {1, 8, 9, 256, 3000, 14336}) {
      const int shift = inter == 256 && rows == 3 ? 1 : 0;
      std::vector<uint16_t> gu(size_t(rows) * 2 * size_t(inter));
      for (auto& x : gu) x = zc::float_to_bf16(rng.normal() * 4.0f);
      gu[0] = zc::float_to_bf16(-100.0f);
      auto dgu = dev(gu);
      DeviceBuffer<uint16_t> y_all(size_t(rows) * size_t(inter) + size_t(shift));
      y_all.fill_bytes(0xff);
      zc::cuda::silu_mul_bf16_to_bf16(dgu.get(), rows, inter, y_all.get() + shift);
      std::vector<uint16_t> g = sync_download(y_all);
      g.erase(g.begin(), g.begin() + shift);
      for (int r = 0; r < rows; ++r) {
        for (int i = 0; i < inter; ++i) {
          const double gate = zc::bf16_to_float(gu[size_t(r) * 2 * size_t(inter) + size_t(i)]);
          const double up = zc::bf16_to_float(gu[size_t(r) * 2 * size_t(inter) + size_t(inter + i)]);
          const double want = gate / (1.0 + std::exp(-gate)) * up;
          const float got = zc::bf16_to_float(g[size_t(r) * size_t(inter) + size_t(i)]);
          ASSERT_NEAR(got, want, std::abs(want) * (1.0 / 256.0 + 1e-6) + 1e-37)
              << rows << " x " << inter << " row " << r << " i " << i;
        }
      }
    }
  }
}

TEST(CudaLayerKernels, Bf16AndF16RoundingBitForBit) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(16);
  std::vector<float> x = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.0f, 65520.0f, 1e9f, -1e9f,
                          5.96e-8f, 2.98e-8f, 2.99e-8f, 6.1e-5f, 1e-45f,
                          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                          zc::bits_float(0x3f808000u), zc::bits_float(0x3f818000u),  // bf16 ties
                          zc::bits_float(0x3f801000u), zc::bits_float(0x3f803000u),  // fp16 ties
                          zc::bits_float(0x7f7fffffu)};
  for (int i = 0; i < 100000; ++i) {
    // Random bit patterns (all exponents) and random normals.
    x.push_back(i % 2 ? zc::bits_float(uint32_t(rng.integer(0, 0xffffffffLL))) : rng.normal() * 100.0f);
  }
  for (size_t n : {size_t(1), size_t(7), x.size()}) {
    auto dx = dev(std::vector<float>(x.begin(), x.begin() + long(n)));
    DeviceBuffer<uint16_t> b(n), h(n);
    zc::cuda::to_bf16(dx.get(), n, b.get());
    zc::cuda::to_f16(dx.get(), n, h.get());
    const auto gb = sync_download(b);
    const auto gh = h.download();
    for (size_t e = 0; e < n; ++e) {
      ASSERT_EQ(gb[e], zc::float_to_bf16(x[e])) << "bf16 of bits 0x" << std::hex << zc::float_bits(x[e]);
      ASSERT_EQ(gh[e], zc::float_to_half(x[e])) << "fp16 of bits 0x" << std::hex << zc::float_bits(x[e]);
    }
  }
}

TEST(CudaLayerKernels, SplitQkvToBf16) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(17);
  struct Shape { int rows, heads, kv, hd; };
  for (const Shape s : {Shape{1, 1, 1, 64}, Shape{3, 8, 2, 128}, Shape{5, 4, 4, 256}, Shape{2, 6, 3, 7},
                        Shape{17, 14, 2, 64}}) {
    SCOPED_TRACE(::testing::Message() << s.rows << " rows " << s.heads << "/" << s.kv << " x " << s.hd);
    const int qc = s.heads * s.hd, kc = s.kv * s.hd, width = qc + 2 * kc;
    const auto x = random_vec(rng, size_t(s.rows) * size_t(width));
    auto dx = dev(x);
    DeviceBuffer<uint16_t> q(size_t(s.rows) * size_t(qc)), k(size_t(s.rows) * size_t(kc)),
        v(size_t(s.rows) * size_t(kc));
    zc::cuda::split_qkv_to_bf16(dx.get(), s.rows, s.heads, s.kv, s.hd, q.get(), k.get(), v.get());
    const auto gq = sync_download(q);
    const auto gk = k.download();
    const auto gv = v.download();
    for (int r = 0; r < s.rows; ++r) {
      const float* row = &x[size_t(r) * size_t(width)];
      for (int c = 0; c < qc; ++c) ASSERT_EQ(gq[size_t(r * qc + c)], zc::float_to_bf16(row[c]));
      for (int c = 0; c < kc; ++c) {
        ASSERT_EQ(gk[size_t(r * kc + c)], zc::float_to_bf16(row[qc + c]));
        ASSERT_EQ(gv[size_t(r * kc + c)], zc::float_to_bf16(row[qc + kc + c]));
      }
    }
  }
}

// The fused prefill step: RoPE on q and k (double reference with the fp32 angle and
// float-rounded cos/sin, as RopeRotateHalfAtManyPositions), bf16 of every part, and the
// rotated k (not q, not v) written back to qkv in fp32.
TEST(CudaLayerKernels, RopeSplitQkvToBf16) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(21);
  struct Shape { int rows, heads, kv, hd; };
  for (const Shape sh : {Shape{1, 1, 1, 2}, Shape{3, 8, 2, 128}, Shape{5, 4, 4, 256}, Shape{2, 6, 3, 6},
                         Shape{17, 14, 2, 64}}) {
    SCOPED_TRACE(::testing::Message() << sh.rows << " rows " << sh.heads << "/" << sh.kv << " x " << sh.hd);
    const int half = sh.hd / 2, qc = sh.heads * sh.hd, kc = sh.kv * sh.hd, width = qc + 2 * kc;
    std::vector<float> inv(static_cast<size_t>(half));
    for (int i = 0; i < half; ++i) inv[size_t(i)] = float(1.0 / std::pow(10000.0, 2.0 * i / sh.hd));
    std::vector<int32_t> pos(static_cast<size_t>(sh.rows));
    for (auto& p : pos) p = int32_t(rng.integer(0, 100000));
    const auto x = random_vec(rng, size_t(sh.rows) * size_t(width), 2.0f);
    auto dx = dev(x);
    auto dp = dev(pos);
    auto di = dev(inv);
    DeviceBuffer<uint16_t> q(size_t(sh.rows) * size_t(qc)), k(size_t(sh.rows) * size_t(kc)),
        v(size_t(sh.rows) * size_t(kc));
    zc::cuda::rope_split_qkv_to_bf16(dx.get(), sh.rows, sh.heads, sh.kv, sh.hd, dp.get(), di.get(), q.get(),
                                     k.get(), v.get());
    const auto gx = sync_download(dx);
    const auto gq = q.download();
    const auto gk = k.download();
    const auto gv = v.download();
    for (int r = 0; r < sh.rows; ++r) {
      const float* row = &x[size_t(r) * size_t(width)];
      const float* grow = &gx[size_t(r) * size_t(width)];
      for (int h = 0; h < sh.heads + sh.kv; ++h) {
        for (int i = 0; i < half; ++i) {
          const float angle = float(double(float(pos[size_t(r)])) * double(inv[size_t(i)]));
          const double c = double(float(std::cos(double(angle))));
          const double s = double(float(std::sin(double(angle))));
          const int lo = h * sh.hd + i, hi = lo + half;
          const double a = row[lo], b = row[hi];
          const double want[2] = {a * c - b * s, b * c + a * s};
          const double tol = 1e-6 * (std::abs(a) + std::abs(b)) + 1e-30;
          for (int j = 0; j < 2; ++j) {
            const int col = j == 0 ? lo : hi;
            const uint16_t got = h < sh.heads ? gq[size_t(r * qc + col)] : gk[size_t(r * kc + col - qc)];
            // bf16 of a value within tol of the reference: the bf16 of one of its neighbours.
            const float lo_ref = float(want[j] - tol), hi_ref = float(want[j] + tol);
            const uint16_t b0 = zc::float_to_bf16(lo_ref), b1 = zc::float_to_bf16(hi_ref);
            ASSERT_TRUE(got == b0 || got == b1 || (got > std::min(b0, b1) && got < std::max(b0, b1)))
                << "row " << r << " head " << h << " col " << col;
            if (h < sh.heads) {
              ASSERT_EQ(grow[col], row[col]) << "q stays unrotated in qkv, col " << col;
            } else {
              ASSERT_NEAR(grow[col], want[j], tol) << "rotated k in qkv, row " << r << " col " << col;
            }
          }
        }
      }
      for (int c = 0; c < kc; ++c) {
        ASSERT_EQ(gv[size_t(r * kc + c)], zc::float_to_bf16(row[qc + kc + c]));
        ASSERT_EQ(grow[qc + kc + c], row[qc + kc + c]) << "v untouched";
      }
    }
  }
}

TEST(CudaLayerKernels, EmbedRowsAndOutOfRangeIds) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(18);
  for (int hidden : {1, 7, 64, 128, 2048}) {
    const int vocab = 50;
    std::vector<uint16_t> table(size_t(vocab) * size_t(hidden));
    for (auto& t : table) t = zc::float_to_bf16(rng.normal());
    std::vector<int32_t> ids = {0, 49, 7, 7, -1, 50, 3};
    auto dt = dev(table);
    auto di = dev(ids);
    DeviceBuffer<float> x(ids.size() * size_t(hidden));
    zc::cuda::embed_rows(dt.get(), vocab, hidden, di.get(), int(ids.size()), x.get());
    const auto g = sync_download(x);
    for (size_t r = 0; r < ids.size(); ++r) {
      for (int c = 0; c < hidden; ++c) {
        const float got = g[r * size_t(hidden) + size_t(c)];
        if (ids[r] < 0 || ids[r] >= vocab) {
          ASSERT_TRUE(std::isnan(got)) << "id " << ids[r] << " col " << c;
        } else {
          ASSERT_EQ(got, zc::bf16_to_float(table[size_t(ids[r]) * size_t(hidden) + size_t(c)]));
        }
      }
    }
  }
}

TEST(CudaLayerKernels, ArgmaxFirstIndexAndNan) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(19);
  for (int vocab : {1, 7, 1000, 50000, 262144}) {
    const int rows = vocab > 100000 ? 3 : 9;
    std::vector<float> x(size_t(rows) * size_t(vocab));
    for (auto& v : x) v = float(rng.integer(-20, 20)) * 0.5f;  // many ties
    const float inf = std::numeric_limits<float>::infinity();
    for (int c = 0; c < vocab; ++c) x[size_t(c)] = -inf;  // row 0 all -inf: index 0
    if (rows > 3) {
      x[size_t(vocab) + size_t(vocab - 1)] = 100.0f;  // row 1: the max is the last element
      x[2 * size_t(vocab) + size_t(vocab / 2)] = std::numeric_limits<float>::quiet_NaN();  // row 2
    }
    auto dx = dev(x);
    DeviceBuffer<int32_t> out(static_cast<size_t>(rows));
    zc::cuda::argmax_rows(dx.get(), rows, vocab, out.get());
    const auto g = sync_download(out);
    for (int r = 0; r < rows; ++r) {
      int32_t want = 0;
      for (int c = 0; c < vocab; ++c) {
        const float v = x[size_t(r) * size_t(vocab) + size_t(c)];
        if (std::isnan(v)) {
          want = -1;
          break;
        }
        if (v > x[size_t(r) * size_t(vocab) + size_t(want)]) want = c;
      }
      EXPECT_EQ(g[size_t(r)], want) << "vocab " << vocab << " row " << r;
    }
  }
}

// Shape checks run before any CUDA call: these need no GPU.
TEST(CudaLayerKernels, BadArgumentsAreErrors) {
  float* f = reinterpret_cast<float*>(16);
  uint16_t* b = reinterpret_cast<uint16_t*>(16);
  int32_t* i = reinterpret_cast<int32_t*>(16);
  EXPECT_THROW(zc::cuda::rmsnorm_f32(f, 2, 0, f, 1e-6f, f), zc::Error);
  EXPECT_THROW(zc::cuda::rmsnorm_f32(f, -1, 8, f, 1e-6f, f), zc::Error);
  EXPECT_THROW(zc::cuda::rmsnorm_to_bf16(f, 2, 16385, f, 1e-6f, b), zc::Error);
  EXPECT_THROW(zc::cuda::rmsnorm_to_bf16(f, 2, 8, f, -1.0f, b), zc::Error);
  EXPECT_THROW(zc::cuda::rmsnorm_to_bf16(f, 2, 8, nullptr, 1e-6f, b), zc::Error);
  EXPECT_THROW(zc::cuda::head_rmsnorm_inplace(f, 2, 100, 4, 2, 64, f, 1e-6f), zc::Error);  // past stride
  EXPECT_THROW(zc::cuda::head_rmsnorm_inplace(f, 2, 100, -1, 1, 64, f, 1e-6f), zc::Error);
  EXPECT_THROW(zc::cuda::rope_inplace(f, 2, 128, 0, 2, 63, i, f), zc::Error);  // odd head_dim
  EXPECT_THROW(zc::cuda::rope_inplace(f, 2, 128, 0, 3, 64, i, f), zc::Error);
  EXPECT_THROW(zc::cuda::rope_inplace(f, 2, 128, 0, 2, 64, nullptr, f), zc::Error);
  EXPECT_THROW(zc::cuda::add_bias(f, 2, 0, f), zc::Error);
  EXPECT_THROW(zc::cuda::add_bias(f, 2, 3, nullptr), zc::Error);
  EXPECT_THROW(zc::cuda::silu_mul_to_bf16(f, 1, 0, b), zc::Error);
  EXPECT_THROW(zc::cuda::to_bf16(nullptr, 3, b), zc::Error);
  EXPECT_THROW(zc::cuda::to_f16(f, 3, nullptr), zc::Error);
  EXPECT_THROW(zc::cuda::split_qkv_to_bf16(f, 1, 0, 1, 64, b, b, b), zc::Error);
  EXPECT_THROW(zc::cuda::split_qkv_to_bf16(f, 1, 2, 1, 64, b, nullptr, b), zc::Error);
  EXPECT_THROW(zc::cuda::embed_rows(b, 0, 8, i, 1, f), zc::Error);
  EXPECT_THROW(zc::cuda::embed_rows(b, 10, 0, i, 1, f), zc::Error);
  EXPECT_THROW(zc::cuda::argmax_rows(f, 1, 0, i), zc::Error);
  EXPECT_THROW(zc::cuda::argmax_rows(f, 1, 10, nullptr), zc::Error);
  // Zero rows are a no-op, even with null pointers.
  EXPECT_NO_THROW(zc::cuda::rmsnorm_f32(nullptr, 0, 8, nullptr, 1e-6f, nullptr));
  EXPECT_NO_THROW(zc::cuda::argmax_rows(nullptr, 0, 8, nullptr));
}

}  // namespace
