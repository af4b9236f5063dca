// An independent double-precision reading of a QuantizedMatrix from the storage rules
// of SPEC.md sections 1-2 (bit layout, fp16 parameters, group order, CSTQ scales),
// for testing the decode kernels (tests/quant) and the attention over quantized blocks
// (tests/kv). Written from the formulas, not from src/quant.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "quant/quantizer.h"
#include "quant/reference.h"

namespace zc_test {

// Code i of a b-bit array: byte i / (8 / b), bits from the little end first.
inline int ref_code(const std::vector<uint8_t>& packed, size_t i, int bits) {
  const size_t per = size_t(8 / bits);
  return (packed[i / per] >> ((i % per) * size_t(bits))) & ((1 << bits) - 1);
}

// The parts of element (r, c): value = (code * step + lo) * scale.
struct RefElement {
  double code = 0, step = 0, lo = 0, scale = 1;
  double value() const { return (code * step + lo) * scale; }
  // The size of the terms the value is made of (a float computation of any
  // arrangement of them is accurate relative to this, not to |value|).
  double magnitude() const { return (std::fabs(code * step) + std::fabs(lo)) * std::fabs(scale); }
};

inline RefElement ref_element(const zc::quant::QuantizedMatrix& q, int r, int c) {
  using zc::quant::Scheme;
  const size_t C = size_t(q.cols);
  size_t group = 0;
  switch (q.scheme) {
    case Scheme::Tokenwise:
    case Scheme::Cstq:
      group = size_t(r);
      break;
    case Scheme::Channelwise:
      group = size_t(c);
      break;
    case Scheme::Groupwise:
      group = size_t(r) * (C / size_t(q.group)) + size_t(c) / size_t(q.group);
      break;
  }
  RefElement e;
  e.code = ref_code(q.codes, size_t(r) * C + size_t(c), q.bits);
  e.step = half_value(q.step[group]);
  e.lo = half_value(q.lo[group]);
  e.scale = q.scheme == Scheme::Cstq ? half_value(q.channel_scale[size_t(c)]) : 1.0;
  return e;
}

}  // namespace zc_test
