// What one layer's cache holds at a given context, per method, built directly from
// the quantizers so that a decode step can be timed at an exact length (a real cache
// would need an O(L^2) prefill first). The layouts follow the policies' defaults
// (SPEC.md sections 2-5, src/kv/method.cpp):
//  - fp16: every token as fp16 rows.
//  - h2o: 20% of the tokens as fp16 rows, with per-row score accumulation (probs).
//  - kivi2: blocks of G = 32 tokens (keys channelwise, values groupwise G = 32, 2 bits)
//    plus the fp16 residual window of R + (L - R) mod G tokens (R = 128).
//  - zipcache: a prompt of L - 50 tokens quantized at prefill: the salient 40% at 4
//    bits, the rest at 2 bits (keys channelwise, values CSTQ), plus 50 streamed tokens
//    in the fp16 window (half a streaming gap), which track their attention (probs).
//  - mikv: as zipcache with keys and values groupwise (G = 32).
#pragma once
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/half.h"
#include "core/rng.h"
#include "kv/attention.h"
#include "quant/quantizer.h"

namespace zc_bench {

constexpr int kHeads = 32, kKvHeads = 8, kDim = 128;

struct Layout {
  struct Head {
    std::vector<zc::quant::QuantizedMatrix> k, v;  // quantized blocks
    std::vector<uint16_t> wk, wv;                  // fp16 rows
    int window = 0;
    std::vector<float> probs;  // per fp16 row, when the policy tracks attention
  };
  zc::kv::KvShape shape;
  std::vector<Head> heads;
  size_t bytes = 0;  // everything a decode step reads

  zc::kv::SourceFn sources() {
    return [this](int h, std::vector<zc::kv::RowSource>& out) {
      Head& head = heads[size_t(h)];
      for (size_t b = 0; b < head.k.size(); ++b) {
        out.push_back(zc::kv::RowSource::quant(head.k[b], head.v[b]));
      }
      if (head.window > 0) {
        auto s = zc::kv::RowSource::f16(head.wk.data(), head.wv.data(), size_t(kDim), head.window);
        s.first_pos = 0;
        if (!head.probs.empty()) s.probs = head.probs.data();
        out.push_back(s);
      }
    };
  }
};

// Keys with a few outlier channels (as real keys after RoPE have), values plainer.
inline void random_rows(zc::Rng& rng, int rows, std::vector<float>& k, std::vector<float>& v) {
  k.resize(size_t(rows) * kDim);
  v.resize(k.size());
  for (size_t i = 0; i < k.size(); ++i) {
    const int c = int(i % kDim);
    k[i] = rng.normal(c % 7 == 3 ? 2.0f : 0.0f, c % 11 == 5 ? 4.0f : 1.0f);
    v[i] = rng.normal(0.0f, c % 13 == 2 ? 3.0f : 1.0f);
  }
}

inline Layout make_layout(const std::string& method, int ctx, int n_heads = kHeads,
                          int n_kv_heads = kKvHeads) {
  using zc::quant::Scheme;
  Layout L;
  L.shape.n_heads = n_heads, L.shape.n_kv_heads = n_kv_heads, L.shape.head_dim = kDim;
  L.heads.resize(size_t(n_kv_heads));
  zc::Rng rng(1234);
  std::vector<float> k, v;
  for (auto& head : L.heads) {
    auto add_block = [&](int rows, int bits, Scheme ks, Scheme vs, int group) {
      random_rows(rng, rows, k, v);
      head.k.push_back(
          zc::quant::quantize(k.data(), rows, kDim, bits, ks, ks == Scheme::Groupwise ? group : 0));
      head.v.push_back(
          zc::quant::quantize(v.data(), rows, kDim, bits, vs, vs == Scheme::Groupwise ? group : 0));
      L.bytes += head.k.back().bytes() + head.v.back().bytes();
    };
    int window = 0;
    bool track = false;
    if (method == "fp16") {
      window = ctx;
    } else if (method == "h2o") {
      window = int(std::lround(0.2 * ctx));
      track = true;
    } else if (method == "kivi2") {
      window = ctx < 128 ? ctx : 128 + (ctx - 128) % 32;
      for (int b = 0; b < (ctx - window) / 32; ++b) {
        add_block(32, 2, Scheme::Channelwise, Scheme::Groupwise, 32);
      }
    } else if (method == "zipcache" || method == "mikv") {
      window = std::min(50, ctx);
      track = true;
      const int prompt = ctx - window, salient = int(std::lround(0.4 * prompt));
      const bool mikv = method == "mikv";
      const Scheme ks = mikv ? Scheme::Groupwise : Scheme::Channelwise;
      const Scheme vs = mikv ? Scheme::Groupwise : Scheme::Cstq;
      if (salient > 0) add_block(salient, 4, ks, vs, 32);
      if (prompt > salient) add_block(prompt - salient, 2, ks, vs, 32);
    } else {
      throw std::runtime_error("decode bench: unknown method " + method);
    }
    random_rows(rng, window, k, v);
    head.window = window;
    for (float x : k) head.wk.push_back(zc::float_to_half(x));
    for (float x : v) head.wv.push_back(zc::float_to_half(x));
    if (track) head.probs.assign(size_t(window), 0.0f);
    L.bytes += size_t(window) * kDim * 2 * sizeof(uint16_t);
  }
  return L;
}

}  // namespace zc_bench
