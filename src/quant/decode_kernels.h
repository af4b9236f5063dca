// Decode-attention kernels over one quantized block (SPEC.md section 4, "Attention
// over the cache": decode reads the packed codes and parameters directly and
// dequantizes in registers; it never writes a dequantized copy of the cache).
//
// Both kernels serve the g query heads that share a KV head at once, so each row's
// codes are unpacked once per step. Parameters are converted from fp16 once per
// block and call, and folded into the query or the probabilities where the algebra
// allows (K' and V' below are the dequantized matrices, as dequantize() gives them):
//  - channelwise keys, k'_c = code_c * step_c + lo_c:
//      q.k' = sum_c (q_c step_c) code_c + sum_c q_c lo_c   (q*step and q.lo once per block)
//  - tokenwise / CSTQ keys, k'_c = (code_c * step_t + lo_t) * s_c (s = 1 tokenwise):
//      q.k' = step_t * sum_c (q_c s_c) code_c + lo_t * sum_c q_c s_c
//  - groupwise keys: the tokenwise formula per group of G channels.
//  - tokenwise / CSTQ values: sum_t p_t v'_t = s * (sum_t (p_t step_t) code_t + sum_t p_t lo_t)
//    (the channel scales s applied once per block)
//  - channelwise values: step * (sum_t p_t code_t) + lo * sum_t p_t
//  - groupwise values: per row and group, (p step) * code + p lo.
// quant::dequantize_row stays the plain reference these are tested against (with
// double-precision math in the tests).
#pragma once

#include "quant/quantizer.h"

namespace zc::quant {

// out[(r - r0) * g + j] = sum_c q[j * cols + c] * K'[r, c] for r in [r0, r1), j < g.
// q holds g rows of k.cols floats. Throws zc::Error on a malformed matrix or range.
void dot_rows(const QuantizedMatrix& k, const float* q, int g, int r0, int r1, float* out);

// acc[j * cols + c] += sum_{r in [r0, r1)} p[(r - r0) * g + j] * V'[r, c] for j < g.
// acc holds g rows of v.cols floats. Throws zc::Error on a malformed matrix or range.
void accumulate_rows(const QuantizedMatrix& v, const float* p, int g, int r0, int r1, float* acc);

}  // namespace zc::quant
