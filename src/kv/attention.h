// The attention every cache policy shares (internal to src/kv).
//
// A KV head's stored tokens come as a list of "row sources": fp32 rows, fp16 rows, or
// the rows of a quantized block (keys and values as two quant::QuantizedMatrix). One
// query attends over all of them in a single softmax merged source by source
// (flash-decoding style: each source yields a partial max, sum and weighted value sum
// that are rescaled into the running ones). A quantized block is read by the block
// kernels of quant/decode_kernels.h, which compute q.k and p*v straight from the
// packed codes and the block's parameters (converted from fp16 once per block and
// step); fp16 rows are converted a row at a time into a d-float scratch. No copy of a
// cache is ever made (SPEC.md section 4, "Attention over the cache"). Softmax does not
// depend on the order of keys, so sources may be in any order.
//
// Optionally each source receives, per row, the attention probability that row got,
// summed over the query heads of the KV head (the "A[k, i]" of SPEC.md section 3);
// H2O's accumulated scores and ZipCache's streaming saliency are built from it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "kv/cache.h"
#include "quant/quantizer.h"

namespace zc::kv {

struct RowSource {
  enum class Kind { F32, F16, Quant };
  Kind kind = Kind::F32;
  int rows = 0;
  // F32 / F16: row r of keys at k + r * stride (same for v).
  const float* kf = nullptr;
  const float* vf = nullptr;
  const uint16_t* kh = nullptr;
  const uint16_t* vh = nullptr;
  size_t stride = 0;
  // Quant: row r of the two matrices.
  const quant::QuantizedMatrix* kq = nullptr;
  const quant::QuantizedMatrix* vq = nullptr;
  // Position of row 0 when rows are consecutive positions (needed only with a
  // sliding window); -1 when unknown.
  int first_pos = -1;
  // When set, probs[r] += the probability row r received (summed over query heads).
  float* probs = nullptr;

  static RowSource f32(const float* k, const float* v, size_t stride, int rows);
  static RowSource f16(const uint16_t* k, const uint16_t* v, size_t stride, int rows);
  static RowSource quant(const quant::QuantizedMatrix& k, const quant::QuantizedMatrix& v);
};

// Fills `out` with the sources of KV head `kv_head` (out arrives empty).
using SourceFn = std::function<void(int kv_head, std::vector<RowSource>& out)>;

float softmax_scale(const KvShape& shape);

// Decode: one query q [n_heads, d] at position `pos` over the sources of each KV head;
// out [n_heads, d]. With shape.sliding_window W > 0 a row at position p' is seen only
// when p' > pos - W (every source must then have first_pos >= 0). Parallel over KV
// heads when the step has enough work to pay for waking threads (short contexts with
// few KV heads run on the calling thread); each KV head's probs are written by one
// thread only.
void decode_attention(const KvShape& shape, const float* q, int pos, const SourceFn& cached,
                      float* out);

// Prefill: causal attention of T new tokens (q [T, n_heads, d], exact k/v [T, n_kv, d],
// positions pos0 .. pos0+T-1) over the cached sources (positions < pos0, seen by every
// new query) and the new tokens up to their own position. new_probs, when given, is
// [n_kv, T] and receives the probabilities the new tokens got (like RowSource::probs).
void prefill_attention(const KvShape& shape, const float* q, const float* k, const float* v,
                       int T, int pos0, const SourceFn& cached, float* new_probs, float* out);

}  // namespace zc::kv
