// GPU flash prefill attention (cuda/kv/prefill_attention.h) against causal softmax
// attention in double precision over the same fp16/bf16-rounded inputs: many lengths
// (1, odd, tile edges), head_dim 64 and 128, GQA groups 1..8, batches.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "cuda/kv/prefill_attention.h"
#include "gpu_test.h"

namespace {

using zc::cuda::DeviceBuffer;
using zc::cuda::Dtype;

uint16_t to_bits(float x, Dtype t) { return t == Dtype::F16 ? zc::float_to_half(x) : zc::float_to_bf16(x); }
double from_bits(uint16_t b, Dtype t) {
  return t == Dtype::F16 ? double(zc::half_to_float(b)) : double(zc::bf16_to_float(b));
}

struct Shape {
  int batch, tokens, n_heads, n_kv, d;
};

// Relative L2 error of the GPU output against the double reference.
double run_case(const Shape& s, Dtype type, zc::Rng& rng) {
  const size_t qn = size_t(s.batch) * size_t(s.tokens) * size_t(s.n_heads) * size_t(s.d);
  const size_t kn = size_t(s.batch) * size_t(s.tokens) * size_t(s.n_kv) * size_t(s.d);
  std::vector<uint16_t> q(qn), k(kn), v(kn);
  for (auto& x : q) x = to_bits(rng.normal(), type);
  for (auto& x : k) x = to_bits(rng.normal(), type);
  for (auto& x : v) x = to_bits(rng.normal(), type);
  DeviceBuffer<uint16_t> dq, dk, dv, dout(qn);
  dq.upload(q);
  dk.upload(k);
  dv.upload(v);
  dout.fill_bytes(0xff);  // NaN in both types: every output must be written
  zc::cuda::PrefillShape shape;
  shape.batch = s.batch, shape.tokens = s.tokens, shape.n_heads = s.n_heads;
  shape.n_kv_heads = s.n_kv, shape.head_dim = s.d;
  zc::cuda::prefill_attention(shape, type, dq.get(), dk.get(), dv.get(), dout.get());
  zc::cuda::check(cudaDeviceSynchronize(), "prefill test");
  const std::vector<uint16_t> out = dout.download();

  const int g = s.n_heads / s.n_kv, d = s.d;
  std::vector<double> qd(qn), kd(kn), vd(kn);
  for (size_t i = 0; i < qn; ++i) qd[i] = from_bits(q[i], type);
  for (size_t i = 0; i < kn; ++i) kd[i] = from_bits(k[i], type), vd[i] = from_bits(v[i], type);
  const double scale = 1.0 / std::sqrt(double(d));
  double err2 = 0.0, ref2 = 0.0;
  std::vector<double> sc(static_cast<size_t>(s.tokens)), acc(static_cast<size_t>(d));
  for (int b = 0; b < s.batch; ++b) {
    for (int h = 0; h < s.n_heads; ++h) {
      const int kh = h / g;
      for (int i = 0; i < s.tokens; ++i) {
        const size_t qo = ((size_t(b) * size_t(s.tokens) + size_t(i)) * size_t(s.n_heads) + size_t(h)) * size_t(d);
        double m = -INFINITY;
        for (int j = 0; j <= i; ++j) {
          const size_t ko = ((size_t(b) * size_t(s.tokens) + size_t(j)) * size_t(s.n_kv) + size_t(kh)) * size_t(d);
          double dot = 0.0;
          for (int c = 0; c < d; ++c) dot += qd[qo + size_t(c)] * kd[ko + size_t(c)];
          sc[size_t(j)] = dot * scale;
          m = std::max(m, sc[size_t(j)]);
        }
        double l = 0.0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int j = 0; j <= i; ++j) {
          const double p = std::exp(sc[size_t(j)] - m);
          l += p;
          const size_t vo = ((size_t(b) * size_t(s.tokens) + size_t(j)) * size_t(s.n_kv) + size_t(kh)) * size_t(d);
          for (int c = 0; c < d; ++c) acc[size_t(c)] += p * vd[vo + size_t(c)];
        }
        for (int c = 0; c < d; ++c) {
          const double want = acc[size_t(c)] / l;
          const double got = from_bits(out[qo + size_t(c)], type);
          EXPECT_FALSE(std::isnan(got)) << "batch " << b << " head " << h << " token " << i;
          if (std::isnan(got)) return 1.0;
          err2 += (got - want) * (got - want);
          ref2 += want * want;
        }
      }
    }
  }
  return std::sqrt(err2 / ref2);
}

TEST(CudaPrefillAttention, MatchesDoubleCausalReference) {
  ZC_REQUIRE_GPU();
  zc::Rng rng(5);
  const std::vector<Shape> shapes = {
      {1, 1, 1, 1, 64},    {1, 2, 2, 1, 128},  {2, 17, 4, 1, 64},   {1, 64, 8, 8, 128},
      {1, 65, 6, 2, 128},  {2, 130, 8, 1, 64}, {1, 257, 16, 2, 128}, {1, 200, 7, 7, 64},
      {1, 333, 32, 8, 128},
  };
  for (const Shape& s : shapes) {
    for (Dtype t : {Dtype::F16, Dtype::BF16}) {
      SCOPED_TRACE(::testing::Message() << "batch " << s.batch << ", " << s.tokens << " tokens, heads "
                                        << s.n_heads << "/" << s.n_kv << ", d " << s.d << ", "
                                        << (t == Dtype::F16 ? "fp16" : "bf16"));
      const double rel = run_case(s, t, rng);
      // Inputs are exact in both; P and the output are rounded to the type.
      EXPECT_LT(rel, t == Dtype::F16 ? 2e-3 : 1.5e-2);
    }
  }
}

TEST(CudaPrefillAttention, BadShapesThrow) {
  zc::cuda::PrefillShape s;
  s.batch = 1, s.tokens = 4, s.n_heads = 4, s.n_kv_heads = 3, s.head_dim = 64;
  int dummy = 0;
  EXPECT_THROW(zc::cuda::prefill_attention(s, Dtype::F16, &dummy, &dummy, &dummy, &dummy), zc::Error);
  s.n_kv_heads = 2, s.head_dim = 96;
  EXPECT_THROW(zc::cuda::prefill_attention(s, Dtype::F16, &dummy, &dummy, &dummy, &dummy), zc::Error);
  s.head_dim = 64, s.tokens = 0;
  EXPECT_THROW(zc::cuda::prefill_attention(s, Dtype::F16, &dummy, &dummy, &dummy, &dummy), zc::Error);
}

}  // namespace
