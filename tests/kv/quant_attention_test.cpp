// Decode attention over quantized blocks, which reads codes directly through the
// block kernels (quant/decode_kernels.h): every key scheme x value scheme at several
// bit widths and odd head sizes through a real cache (checked against double
// attention over snapshot()), and kv::decode_attention called directly on mixed
// sources (quantized, fp16, fp32) with a sliding window that cuts into quantized
// blocks, per-row probabilities, GQA and a single row, against double math over a
// dequantization written in the test (quant/decode_reference.h).
#include <gtest/gtest.h>

#include <random>

#include "core/half.h"
#include "kv/attention.h"
#include "policy_check.h"
#include "quant/decode_reference.h"

namespace zc::kv {
namespace {

using quant::Scheme;
using zc_test::Dims;

TEST(QuantAttention, EverySchemePairThroughTheCache) {
  uint64_t seed = 100;
  for (auto ks : {Scheme::Channelwise, Scheme::Tokenwise, Scheme::Groupwise, Scheme::Cstq}) {
    for (auto vs : {Scheme::Cstq, Scheme::Tokenwise, Scheme::Groupwise, Scheme::Channelwise}) {
      for (auto [hi, lo] : {std::pair{4, 2}, std::pair{8, 4}, std::pair{2, 2}}) {
        const bool grouped = ks == Scheme::Groupwise || vs == Scheme::Groupwise;
        const Dims dims = grouped ? Dims{4, 2, 24} : Dims{3, 1, 13};
        MethodConfig c = parse_method("zipcache");
        c.key_scheme = ks, c.value_scheme = vs, c.key_group = 8, c.value_group = 8;
        c.bits_high = hi, c.bits_low = lo;
        c.stream_gap = 5;  // several streamed chunks, some of 1-2 salient rows
        c.record_positions = true;
        SCOPED_TRACE(describe(c) + " d=" + std::to_string(dims.d));
        const auto x = zc_test::random_tokens(21 + 12, dims, seed++, 1.5f);
        zc_test::run_policy(c, x, 21);
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Stored blocks plus the exact rows they hold, for the direct test.
struct Mixed {
  std::vector<quant::QuantizedMatrix> kq, vq;
  std::vector<uint16_t> kh, vh;  // fp16 rows
  std::vector<float> kf, vf;     // fp32 rows
  std::vector<std::vector<float>> probs;
};

TEST(QuantAttention, DirectMixedSourcesWithWindowAndProbs) {
  std::mt19937 gen(77);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int trial = 0; trial < 24; ++trial) {
    const int n_kv = 1 + trial % 3, g = 1 + trial % 4,
              d = std::vector<int>{1, 7, 16, 64}[trial % 4];
    const int block_rows[3] = {1 + int(gen() % 9), 1 + int(gen() % 40), 1};
    const int f16_rows = int(gen() % 5), f32_rows = 1 + int(gen() % 3);
    const int total = block_rows[0] + block_rows[1] + block_rows[2] + f16_rows + f32_rows;
    const int window = (trial / 4) % 2 == 0 ? 0 : 1 + int(gen() % unsigned(total));
    KvShape shape;
    shape.n_heads = n_kv * g, shape.n_kv_heads = n_kv, shape.head_dim = d;
    shape.sliding_window = window;
    SCOPED_TRACE("trial " + std::to_string(trial) + " window " + std::to_string(window));

    const Scheme schemes[4] = {Scheme::Channelwise, Scheme::Cstq, Scheme::Tokenwise,
                               d % 8 == 0 ? Scheme::Groupwise : Scheme::Channelwise};
    std::vector<Mixed> heads(static_cast<size_t>(n_kv));
    // Reference rows [n_kv][total][d] in position order (sources in that order too).
    std::vector<double> K(size_t(n_kv) * total * d), V(K.size());
    for (int h = 0; h < n_kv; ++h) {
      Mixed& m = heads[size_t(h)];
      int pos = 0;
      for (int b = 0; b < 3; ++b) {
        const int rows = block_rows[b];
        std::vector<float> k(size_t(rows) * d), v(k.size());
        for (auto& e : k) e = nd(gen) * 2.0f;
        for (auto& e : v) e = nd(gen);
        const Scheme ks = schemes[size_t(trial + b) % 4], vs = schemes[size_t(trial + b + 1) % 4];
        const int bits = std::vector<int>{2, 4, 8}[size_t(trial + b) % 3];
        m.kq.push_back(
            quant::quantize(k.data(), rows, d, bits, ks, ks == Scheme::Groupwise ? 8 : 0));
        m.vq.push_back(
            quant::quantize(v.data(), rows, d, bits, vs, vs == Scheme::Groupwise ? 8 : 0));
        for (int r = 0; r < rows; ++r, ++pos) {
          for (int c = 0; c < d; ++c) {
            K[(size_t(h) * total + pos) * d + c] = zc_test::ref_element(m.kq.back(), r, c).value();
            V[(size_t(h) * total + pos) * d + c] = zc_test::ref_element(m.vq.back(), r, c).value();
          }
        }
      }
      for (int r = 0; r < f16_rows; ++r, ++pos) {
        for (int c = 0; c < d; ++c) {
          m.kh.push_back(float_to_half(nd(gen))), m.vh.push_back(float_to_half(nd(gen)));
          K[(size_t(h) * total + pos) * d + c] = zc_test::half_value(m.kh.back());
          V[(size_t(h) * total + pos) * d + c] = zc_test::half_value(m.vh.back());
        }
      }
      for (int r = 0; r < f32_rows; ++r, ++pos) {
        for (int c = 0; c < d; ++c) {
          m.kf.push_back(nd(gen)), m.vf.push_back(nd(gen));
          K[(size_t(h) * total + pos) * d + c] = m.kf.back();
          V[(size_t(h) * total + pos) * d + c] = m.vf.back();
        }
      }
      m.probs.assign(5, std::vector<float>(size_t(std::max(total, 1)), 0.0f));
    }
    const SourceFn sources = [&](int h, std::vector<RowSource>& out) {
      Mixed& m = heads[size_t(h)];
      int pos = 0, i = 0;
      for (size_t b = 0; b < m.kq.size(); ++b, ++i) {
        RowSource s = RowSource::quant(m.kq[b], m.vq[b]);
        s.first_pos = pos, s.probs = m.probs[size_t(i)].data();
        pos += s.rows;
        out.push_back(s);
      }
      RowSource s16 = RowSource::f16(m.kh.data(), m.vh.data(), size_t(d), f16_rows);
      s16.first_pos = pos, s16.probs = m.probs[3].data();
      pos += f16_rows;
      RowSource s32 = RowSource::f32(m.kf.data(), m.vf.data(), size_t(d), f32_rows);
      s32.first_pos = pos, s32.probs = m.probs[4].data();
      out.push_back(s16);
      out.push_back(s32);
    };

    std::vector<float> q(size_t(shape.n_heads) * d), out(q.size());
    for (auto& e : q) e = nd(gen);
    const int pos = total - 1;
    decode_attention(shape, q.data(), pos, sources, out.data());

    const double scale = 1.0 / std::sqrt(double(d));
    const int first = window > 0 ? std::max(0, pos - window + 1) : 0;
    for (int h = 0; h < n_kv; ++h) {
      std::vector<double> prob_sum(size_t(total), 0.0);
      for (int j = 0; j < g; ++j) {
        const int hq = h * g + j;
        std::vector<double> logit(size_t(total), -INFINITY);
        double mx = -INFINITY, sum = 0;
        for (int t = first; t < total; ++t) {
          double dot = 0;
          for (int c = 0; c < d; ++c)
            dot += double(q[size_t(hq) * d + c]) * K[(size_t(h) * total + t) * d + c];
          logit[size_t(t)] = dot * scale;
          mx = std::max(mx, logit[size_t(t)]);
        }
        for (int t = first; t < total; ++t) sum += std::exp(logit[size_t(t)] - mx);
        for (int c = 0; c < d; ++c) {
          double want = 0, mag = 0;
          for (int t = first; t < total; ++t) {
            const double p = std::exp(logit[size_t(t)] - mx) / sum;
            want += p * V[(size_t(h) * total + t) * d + c];
            mag += p * std::fabs(V[(size_t(h) * total + t) * d + c]);
          }
          ASSERT_NEAR(out[size_t(hq) * d + c], want, 2e-5 * (1.0 + mag))
              << "head " << hq << " col " << c;
        }
        for (int t = first; t < total; ++t)
          prob_sum[size_t(t)] += std::exp(logit[size_t(t)] - mx) / sum;
      }
      // Probabilities per source row; rows outside the window received nothing.
      const Mixed& m = heads[size_t(h)];
      const int sizes[5] = {block_rows[0], block_rows[1], block_rows[2], f16_rows, f32_rows};
      int t = 0;
      for (int src = 0; src < 5; ++src) {
        for (int r = 0; r < sizes[src]; ++r, ++t) {
          ASSERT_NEAR(m.probs[size_t(src)][size_t(r)], prob_sum[size_t(t)], 2e-5)
              << "KV head " << h << " source " << src << " row " << r;
        }
      }
    }
  }
}

}  // namespace
}  // namespace zc::kv
