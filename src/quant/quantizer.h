// The quantizers of SPEC.md sections 1-2 over a rows x cols matrix (rows = tokens,
// cols = channels of one KV head). A QuantizedMatrix holds exactly what is stored:
// packed codes, fp16 (lo, step) per group, fp16 channel scales for CSTQ; bytes()
// counts every stored byte.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace zc::quant {

enum class Scheme {
  Tokenwise,    // one group per row
  Channelwise,  // one group per column over all rows
  Groupwise,    // groups of `group` consecutive columns within each row
  Cstq,         // channel-separable tokenwise: columns scaled by sqrt(max|x|), then tokenwise
};

std::string scheme_name(Scheme s);
// "tokenwise", "channelwise", "groupwise", "cstq"; anything else throws zc::Error.
Scheme parse_scheme(const std::string& name);
// Number of (lo, step) pairs a rows x cols matrix stores (0 when rows == 0).
size_t group_count(Scheme scheme, int rows, int cols, int group = 0);

struct QuantizedMatrix {
  int rows = 0, cols = 0, bits = 0, group = 0;  // group: only for Groupwise
  Scheme scheme = Scheme::Tokenwise;
  std::vector<uint8_t> codes;           // packed row-major, packed_bytes(rows*cols, bits)
  std::vector<uint16_t> lo, step;       // fp16 bits, one per group, in group order
  std::vector<uint16_t> channel_scale;  // fp16 bits, cols entries (Cstq only)

  // Every stored byte: codes + parameters + channel scales.
  size_t bytes() const;
  size_t code_bytes() const { return codes.size(); }
  size_t param_bytes() const;
};

// x is row-major rows x cols. bits in {2, 4, 8}. Groupwise needs cols % group == 0.
QuantizedMatrix quantize(const float* x, int rows, int cols, int bits, Scheme scheme,
                         int group = 0);
// out: rows x cols row-major.
void dequantize(const QuantizedMatrix& q, float* out);
// One row (what streaming attention needs without materializing the block).
void dequantize_row(const QuantizedMatrix& q, int row, float* out);

// The building block (SPEC.md section 1) over n values read with a stride:
// lo = min, step = (max - lo) / (2^b - 1), both rounded to fp16 before use; a zero
// range stores step = 0 and dequantizes to lo exactly.
struct Affine {
  uint16_t lo = 0, step = 0;  // fp16 bits
};
Affine fit_affine(const float* x, size_t n, size_t stride, int bits);
uint8_t encode(float x, Affine a, int bits);
float decode(uint8_t code, Affine a);

}  // namespace zc::quant
