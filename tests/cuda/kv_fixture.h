// Random caches for the decode tests: one (sequence, KV head) list of a given mix of
// storage (fp16 rows, ZipCache blocks, KIVI blocks, ...) added to a PagedKvBuilder,
// together with the rows the CPU reference sees (quant::dequantize of each block,
// fp16 rows as floats). Softmax does not depend on key order, so the reference rows
// may come in any order.
#pragma once
#include <algorithm>
#include <vector>

#include "core/half.h"
#include "core/rng.h"
#include "cuda/kv/kv_pages.h"
#include "quant/quantizer.h"

namespace zc_test {

enum class Mix { Fp16, ZipCache, Kivi, TokenwiseMixedBits };

struct RefRows {
  int d = 0, rows = 0;
  std::vector<float> k, v;  // rows x d

  void append(const std::vector<float>& kr, const std::vector<float>& vr, int n) {
    k.insert(k.end(), kr.begin(), kr.end());
    v.insert(v.end(), vr.begin(), vr.end());
    rows += n;
  }
};

// Keys with outlier channels (what channelwise key quantization is for), values plain.
inline void random_rows(zc::Rng& rng, int n, int d, std::vector<float>& k, std::vector<float>& v) {
  k.resize(size_t(n) * size_t(d));
  v.resize(size_t(n) * size_t(d));
  for (int r = 0; r < n; ++r) {
    for (int c = 0; c < d; ++c) {
      const float outlier = c % 11 == 3 ? 4.0f : 1.0f;
      k[size_t(r) * size_t(d) + size_t(c)] = rng.normal() * outlier;
      v[size_t(r) * size_t(d) + size_t(c)] = rng.normal();
    }
  }
}

inline void add_fp16(zc::cuda::PagedKvBuilder& b, RefRows& ref, zc::Rng& rng, int n) {
  if (n <= 0) return;
  const int d = b.head_dim();
  std::vector<float> k, v;
  random_rows(rng, n, d, k, v);
  std::vector<uint16_t> kh(k.size()), vh(v.size());
  for (size_t i = 0; i < k.size(); ++i) {
    kh[i] = zc::float_to_half(k[i]);
    vh[i] = zc::float_to_half(v[i]);
    k[i] = zc::half_to_float(kh[i]);
    v[i] = zc::half_to_float(vh[i]);
  }
  b.add_fp16(kh.data(), vh.data(), size_t(d), n);
  ref.append(k, v, n);
}

inline void add_quant(zc::cuda::PagedKvBuilder& b, RefRows& ref, zc::Rng& rng, int n, int kbits,
                      int vbits, zc::quant::Scheme vscheme, int vgroup = 0) {
  if (n <= 0) return;
  const int d = b.head_dim();
  std::vector<float> k, v;
  random_rows(rng, n, d, k, v);
  const auto kq = zc::quant::quantize(k.data(), n, d, kbits, zc::quant::Scheme::Channelwise);
  const auto vq = zc::quant::quantize(v.data(), n, d, vbits, vscheme, vgroup);
  b.add_block(kq, vq);
  zc::quant::dequantize(kq, k.data());
  zc::quant::dequantize(vq, v.data());
  ref.append(k, v, n);
}

// Adds one list of about `tokens` tokens (at least 1) of the given mix.
inline RefRows add_random_list(zc::cuda::PagedKvBuilder& b, Mix mix, int tokens, zc::Rng& rng) {
  using zc::quant::Scheme;
  RefRows ref;
  ref.d = b.head_dim();
  b.begin_list();
  tokens = std::max(tokens, 1);
  switch (mix) {
    case Mix::Fp16:
      add_fp16(b, ref, rng, tokens);
      break;
    case Mix::ZipCache: {
      // SPEC.md section 4: salient (4-bit) and regular (2-bit) prompt blocks, keys
      // channelwise, values CSTQ; a streamed chunk split the same way; an fp16 window.
      const int window = std::min(tokens, int(rng.integer(0, 40)));
      const int quant = tokens - window;
      const int chunk = quant > 150 ? int(rng.integer(20, 100)) : 0;
      const int prompt = quant - chunk;
      const int salient = int(0.4 * prompt + 0.5);
      add_quant(b, ref, rng, salient, 4, 4, Scheme::Cstq);
      add_quant(b, ref, rng, prompt - salient, 2, 2, Scheme::Cstq);
      add_quant(b, ref, rng, int(0.4 * chunk), 4, 4, Scheme::Cstq);
      add_quant(b, ref, rng, chunk - int(0.4 * chunk), 2, 2, Scheme::Cstq);
      add_fp16(b, ref, rng, window);
      break;
    }
    case Mix::Kivi: {
      // SPEC.md section 2: blocks of G = 32 tokens, keys channelwise, values groupwise
      // with groups of 32 channels, then the fp16 residual window.
      const int blocks = tokens / 32 > 0 ? int(rng.integer(0, tokens / 32)) : 0;
      for (int i = 0; i < blocks; ++i) add_quant(b, ref, rng, 32, 2, 2, Scheme::Groupwise, 32);
      add_fp16(b, ref, rng, tokens - 32 * blocks);
      break;
    }
    case Mix::TokenwiseMixedBits: {
      const int a = int(rng.integer(0, tokens));
      add_quant(b, ref, rng, a, 4, 2, Scheme::Tokenwise);
      add_quant(b, ref, rng, tokens - a, 2, 4, Scheme::Tokenwise);
      break;
    }
  }
  return ref;
}

}  // namespace zc_test
