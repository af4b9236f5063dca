// The granularities of SPEC.md section 2 on top of the affine group quantizer
// (affine.cpp). Group order of lo/step: Tokenwise by row, Channelwise by column,
// Groupwise row-major (row, group), Cstq by row (after column scaling).
// A matrix with 0 rows stores nothing (no groups, no channel scales).
#include "quant/quantizer.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "quant/half_round.h"
#include "quant/matrix_check.h"
#include "quant/pack.h"
#include "quant/unpack.h"

namespace zc::quant {

std::string scheme_name(Scheme s) {
  switch (s) {
    case Scheme::Tokenwise:
      return "tokenwise";
    case Scheme::Channelwise:
      return "channelwise";
    case Scheme::Groupwise:
      return "groupwise";
    case Scheme::Cstq:
      return "cstq";
  }
  return "unknown";
}

Scheme parse_scheme(const std::string& name) {
  for (Scheme s : {Scheme::Tokenwise, Scheme::Channelwise, Scheme::Groupwise, Scheme::Cstq}) {
    if (scheme_name(s) == name) return s;
  }
  fail("unknown quantization scheme '{}' (expected tokenwise, channelwise, groupwise or cstq)",
       name);
}

size_t QuantizedMatrix::param_bytes() const {
  return 2 * (lo.size() + step.size() + channel_scale.size());
}

size_t QuantizedMatrix::bytes() const { return code_bytes() + param_bytes(); }

size_t group_count(Scheme scheme, int rows, int cols, int group) {
  if (rows == 0) return 0;
  switch (scheme) {
    case Scheme::Tokenwise:
    case Scheme::Cstq:
      return static_cast<size_t>(rows);
    case Scheme::Channelwise:
      return static_cast<size_t>(cols);
    case Scheme::Groupwise:
      return static_cast<size_t>(rows) * static_cast<size_t>(cols / group);
  }
  return 0;
}

namespace {

void check_args(const float* x, int rows, int cols, int bits, Scheme scheme, int group) {
  if (bits != 2 && bits != 4 && bits != 8) {
    fail("quantize: unsupported bit width {} (supported: 2, 4, 8)", bits);
  }
  if (rows < 0 || cols < 1) fail("quantize: bad shape {} x {} (rows >= 0, cols >= 1)", rows, cols);
  if (scheme == Scheme::Groupwise && (group < 1 || cols % group != 0)) {
    fail("quantize: groupwise group size {} does not divide the {} columns", group, cols);
  }
  if (rows > 0 && x == nullptr) fail("quantize: null input for a {} x {} matrix", rows, cols);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const float v =
          x[static_cast<size_t>(r) * static_cast<size_t>(cols) + static_cast<size_t>(c)];
      if (!std::isfinite(v)) fail("quantize: non-finite value {} at row {}, col {}", v, r, c);
    }
  }
}

// Fits and encodes one group of n values (stride apart) into codes (same stride).
void quantize_group(const float* x, size_t n, size_t stride, int bits, QuantizedMatrix& q,
                    uint8_t* codes) {
  const Affine a = fit_affine(x, n, stride, bits);
  q.lo.push_back(a.lo);
  q.step.push_back(a.step);
  for (size_t i = 0; i < n; ++i) codes[i * stride] = encode(x[i * stride], a, bits);
}

}  // namespace

void check_matrix(const QuantizedMatrix& q, const char* where) {
  const bool shape_ok = q.rows >= 0 && q.cols >= 1 && (q.bits == 2 || q.bits == 4 || q.bits == 8) &&
                        (q.scheme != Scheme::Groupwise || (q.group >= 1 && q.cols % q.group == 0));
  if (!shape_ok) {
    fail("{}: malformed QuantizedMatrix ({} x {}, {} bits, group {})", where, q.rows, q.cols,
         q.bits, q.group);
  }
  const size_t n = static_cast<size_t>(q.rows) * static_cast<size_t>(q.cols);
  const size_t groups = group_count(q.scheme, q.rows, q.cols, q.group);
  const size_t scales = q.scheme == Scheme::Cstq && q.rows > 0 ? static_cast<size_t>(q.cols) : 0;
  if (q.codes.size() != packed_bytes(n, q.bits) || q.lo.size() != groups ||
      q.step.size() != groups || q.channel_scale.size() != scales) {
    fail(
        "{}: malformed QuantizedMatrix ({} code bytes, {} lo, {} step, {} scales; expected {}, "
        "{}, {}, {})",
        where, q.codes.size(), q.lo.size(), q.step.size(), q.channel_scale.size(),
        packed_bytes(n, q.bits), groups, groups, scales);
  }
}

QuantizedMatrix quantize(const float* x, int rows, int cols, int bits, Scheme scheme, int group) {
  check_args(x, rows, cols, bits, scheme, group);
  QuantizedMatrix q;
  q.rows = rows;
  q.cols = cols;
  q.bits = bits;
  q.scheme = scheme;
  q.group = scheme == Scheme::Groupwise ? group : 0;
  const size_t R = static_cast<size_t>(rows), C = static_cast<size_t>(cols);
  std::vector<uint8_t> codes(R * C);
  const size_t groups = group_count(scheme, rows, cols, group);
  q.lo.reserve(groups);
  q.step.reserve(groups);

  switch (scheme) {
    case Scheme::Tokenwise:
      for (size_t r = 0; r < R; ++r) quantize_group(x + r * C, C, 1, bits, q, &codes[r * C]);
      break;
    case Scheme::Channelwise:
      if (R > 0) {
        for (size_t c = 0; c < C; ++c) quantize_group(x + c, R, C, bits, q, &codes[c]);
      }
      break;
    case Scheme::Groupwise: {
      const size_t G = static_cast<size_t>(group);
      for (size_t r = 0; r < R; ++r) {
        for (size_t g = 0; g < C / G; ++g) {
          quantize_group(x + r * C + g * G, G, 1, bits, q, &codes[r * C + g * G]);
        }
      }
      break;
    }
    case Scheme::Cstq: {
      if (R == 0) break;
      // c_j = sqrt(max_t |x[t, j]|), stored as the nearest fp16 (double sqrt, one
      // rounding); the columns are divided by the stored (rounded) scale so that dequantization
      // inverts exactly what was done.
      std::vector<float> scale(C, 0.0f);
      q.channel_scale.resize(C);
      for (size_t c = 0; c < C; ++c) {
        float m = 0.0f;
        for (size_t r = 0; r < R; ++r) m = std::max(m, std::fabs(x[r * C + c]));
        q.channel_scale[c] = double_to_half_nonneg(std::sqrt(static_cast<double>(m)));
        scale[c] = half_to_float(q.channel_scale[c]);
      }
      // A column whose scale is 0 (all zeros, or below fp16's smallest subnormal
      // squared) is stored as 0 and dequantizes to exactly 0.
      std::vector<float> y(R * C);
      for (size_t r = 0; r < R; ++r) {
        for (size_t c = 0; c < C; ++c)
          y[r * C + c] = scale[c] > 0.0f ? x[r * C + c] / scale[c] : 0.0f;
      }
      for (size_t r = 0; r < R; ++r) quantize_group(&y[r * C], C, 1, bits, q, &codes[r * C]);
      break;
    }
  }
  q.codes.resize(packed_bytes(R * C, bits));
  pack_codes(codes.data(), codes.size(), bits, q.codes.data());
  return q;
}

namespace {

// Rows [r0, r1) of a validated matrix into out (row-major): codes unpacked by whole
// bytes, then x' = code * step + lo (times c_j for CSTQ) with each parameter converted
// from fp16 once per call, not once per element.
void dequantize_rows(const QuantizedMatrix& q, int r0, int r1, float* out) {
  const size_t C = static_cast<size_t>(q.cols);
  std::vector<float> col_a, col_b;  // channelwise: step, lo; CSTQ: channel scales
  if (q.scheme == Scheme::Channelwise || q.scheme == Scheme::Cstq) {
    col_a.resize(C);
    col_b.resize(C);
    for (size_t c = 0; c < C; ++c) {
      if (q.scheme == Scheme::Channelwise) {
        col_a[c] = half_to_float(q.step[c]), col_b[c] = half_to_float(q.lo[c]);
      } else {
        col_a[c] = half_to_float(q.channel_scale[c]);
      }
    }
  }
  for (int r = r0; r < r1; ++r) {
    const size_t row = static_cast<size_t>(r);
    float* o = out + (row - static_cast<size_t>(r0)) * C;
    unpack_floats(q.codes.data(), row * C, C, q.bits, o);
    switch (q.scheme) {
      case Scheme::Tokenwise:
      case Scheme::Cstq: {
        const float step = half_to_float(q.step[row]), lo = half_to_float(q.lo[row]);
        for (size_t c = 0; c < C; ++c) o[c] = o[c] * step + lo;
        if (q.scheme == Scheme::Cstq) {
          for (size_t c = 0; c < C; ++c) o[c] *= col_a[c];
        }
        break;
      }
      case Scheme::Channelwise:
        for (size_t c = 0; c < C; ++c) o[c] = o[c] * col_a[c] + col_b[c];
        break;
      case Scheme::Groupwise: {
        const size_t G = static_cast<size_t>(q.group), first = row * (C / G);
        for (size_t g = 0; g < C / G; ++g) {
          const float step = half_to_float(q.step[first + g]), lo = half_to_float(q.lo[first + g]);
          for (size_t c = g * G; c < (g + 1) * G; ++c) o[c] = o[c] * step + lo;
        }
        break;
      }
    }
  }
}

}  // namespace

void dequantize_row(const QuantizedMatrix& q, int row, float* out) {
  check_matrix(q, "dequantize_row");
  if (row < 0 || row >= q.rows) fail("dequantize_row: row {} out of range [0, {})", row, q.rows);
  dequantize_rows(q, row, row + 1, out);
}

void dequantize(const QuantizedMatrix& q, float* out) {
  check_matrix(q, "dequantize");
  dequantize_rows(q, 0, q.rows, out);
}

}  // namespace zc::quant
