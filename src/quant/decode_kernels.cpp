// Decode-attention kernels (decode_kernels.h). Per call: the block's fp16
// parameters are converted to float once (channelwise: cols pairs; tokenwise/CSTQ/
// groupwise: a row's pairs when the row is read), each row's codes are unpacked by
// whole bytes into a cols-float scratch (unpack.h) that stays in L1, and every query
// head then does plain multiply-adds against it. Scratch is per thread, so the
// kernels allocate nothing in steady state.
#include "quant/decode_kernels.h"

#include <cstddef>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "quant/matrix_check.h"
#include "quant/unpack.h"

namespace zc::quant {
namespace {

struct Scratch {
  std::vector<float> u;     // one row of codes as floats
  std::vector<float> w;     // g x cols: the query folded with step or channel scales
  std::vector<float> bias;  // per head (and group): the lo terms
  std::vector<float> acc;   // g x cols: block-local sums of p * code
  std::vector<float> lo, step;
  std::vector<float> scale;  // CSTQ channel scales
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// Eight independent partial sums: vectorizes without reassociation (no -ffast-math).
inline float dot(const float* a, const float* b, size_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float s = 0.0f;
  for (; i < n; ++i) s += a[i] * b[i];
  for (size_t k = 0; k < 8; ++k) s += acc[k];
  return s;
}

// y += a * x
inline void axpy(float a, const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void check_call(const QuantizedMatrix& m, const void* in, int g, int r0, int r1, const void* out,
                const char* where) {
  check_matrix(m, where);
  if (g < 1) fail("{}: {} query heads (at least 1)", where, g);
  if (r0 < 0 || r1 < r0 || r1 > m.rows) {
    fail("{}: row range [{}, {}) outside the block's {} rows", where, r0, r1, m.rows);
  }
  if (r1 > r0 && (in == nullptr || out == nullptr)) fail("{}: null input or output buffer", where);
}

// The block's per-channel parameters (channelwise) as floats.
void channel_params(const QuantizedMatrix& m, Scratch& s) {
  const size_t C = size_t(m.cols);
  s.lo.resize(C);
  s.step.resize(C);
  for (size_t c = 0; c < C; ++c)
    s.lo[c] = half_to_float(m.lo[c]), s.step[c] = half_to_float(m.step[c]);
}

// The CSTQ channel scales as floats (all ones for tokenwise).
void channel_scales(const QuantizedMatrix& m, Scratch& s) {
  const size_t C = size_t(m.cols);
  s.scale.resize(C);
  for (size_t c = 0; c < C; ++c) {
    s.scale[c] = m.scheme == Scheme::Cstq ? half_to_float(m.channel_scale[c]) : 1.0f;
  }
}

}  // namespace

void dot_rows(const QuantizedMatrix& k, const float* q, int g, int r0, int r1, float* out) {
  check_call(k, q, g, r0, r1, out, "dot_rows");
  if (r0 == r1) return;
  const size_t C = size_t(k.cols), G = size_t(g);
  Scratch& s = scratch();
  s.u.resize(C);
  float* u = s.u.data();
  const uint8_t* codes = k.codes.data();
  auto unpack = [&](int r) { unpack_floats(codes, size_t(r) * C, C, k.bits, u); };

  switch (k.scheme) {
    case Scheme::Channelwise: {
      channel_params(k, s);
      s.w.resize(G * C);
      s.bias.resize(G);
      for (size_t j = 0; j < G; ++j) {
        double b = 0.0;  // q.lo once per block: accumulate it in double
        for (size_t c = 0; c < C; ++c) {
          s.w[j * C + c] = q[j * C + c] * s.step[c];
          b += double(q[j * C + c]) * double(s.lo[c]);
        }
        s.bias[j] = float(b);
      }
      for (int r = r0; r < r1; ++r) {
        unpack(r);
        float* o = out + size_t(r - r0) * G;
        for (size_t j = 0; j < G; ++j) o[j] = dot(&s.w[j * C], u, C) + s.bias[j];
      }
      break;
    }
    case Scheme::Tokenwise:
    case Scheme::Cstq: {
      // w = q * s (s = 1 tokenwise), bias = sum_c w_c.
      channel_scales(k, s);
      s.w.resize(G * C);
      s.bias.resize(G);
      for (size_t j = 0; j < G; ++j) {
        double b = 0.0;
        for (size_t c = 0; c < C; ++c) {
          s.w[j * C + c] = q[j * C + c] * s.scale[c];
          b += double(s.w[j * C + c]);
        }
        s.bias[j] = float(b);
      }
      for (int r = r0; r < r1; ++r) {
        unpack(r);
        const float step = half_to_float(k.step[size_t(r)]), lo = half_to_float(k.lo[size_t(r)]);
        float* o = out + size_t(r - r0) * G;
        for (size_t j = 0; j < G; ++j) o[j] = step * dot(&s.w[j * C], u, C) + lo * s.bias[j];
      }
      break;
    }
    case Scheme::Groupwise: {
      // bias[j * groups + i] = sum of query head j over group i.
      const size_t Gs = size_t(k.group), groups = C / Gs;
      s.bias.resize(G * groups);
      for (size_t j = 0; j < G; ++j) {
        for (size_t i = 0; i < groups; ++i) {
          double b = 0.0;
          for (size_t c = 0; c < Gs; ++c) b += double(q[j * C + i * Gs + c]);
          s.bias[j * groups + i] = float(b);
        }
      }
      s.lo.resize(groups);
      s.step.resize(groups);
      for (int r = r0; r < r1; ++r) {
        unpack(r);
        const size_t first = size_t(r) * groups;
        for (size_t i = 0; i < groups; ++i) {
          s.lo[i] = half_to_float(k.lo[first + i]), s.step[i] = half_to_float(k.step[first + i]);
        }
        float* o = out + size_t(r - r0) * G;
        for (size_t j = 0; j < G; ++j) {
          float sum = 0.0f;
          for (size_t i = 0; i < groups; ++i) {
            sum += s.step[i] * dot(q + j * C + i * Gs, u + i * Gs, Gs) +
                   s.lo[i] * s.bias[j * groups + i];
          }
          o[j] = sum;
        }
      }
      break;
    }
  }
}

void accumulate_rows(const QuantizedMatrix& v, const float* p, int g, int r0, int r1, float* acc) {
  check_call(v, p, g, r0, r1, acc, "accumulate_rows");
  if (r0 == r1) return;
  const size_t C = size_t(v.cols), G = size_t(g);
  Scratch& s = scratch();
  s.u.resize(C);
  float* u = s.u.data();
  const uint8_t* codes = v.codes.data();
  auto unpack = [&](int r) { unpack_floats(codes, size_t(r) * C, C, v.bits, u); };

  switch (v.scheme) {
    case Scheme::Tokenwise:
    case Scheme::Cstq: {
      // Block sums: acc' = sum_t (p_t step_t) code_t, bias = sum_t p_t lo_t; then
      // acc += s * (acc' + bias) with s = 1 for tokenwise.
      channel_scales(v, s);
      s.acc.assign(G * C, 0.0f);
      s.bias.assign(G, 0.0f);
      for (int r = r0; r < r1; ++r) {
        unpack(r);
        const float step = half_to_float(v.step[size_t(r)]), lo = half_to_float(v.lo[size_t(r)]);
        const float* pr = p + size_t(r - r0) * G;
        for (size_t j = 0; j < G; ++j) {
          axpy(pr[j] * step, u, &s.acc[j * C], C);
          s.bias[j] += pr[j] * lo;
        }
      }
      for (size_t j = 0; j < G; ++j) {
        float* a = acc + j * C;
        const float* b = &s.acc[j * C];
        for (size_t c = 0; c < C; ++c) a[c] += s.scale[c] * (b[c] + s.bias[j]);
      }
      break;
    }
    case Scheme::Channelwise: {
      // acc += step * sum_t p_t code_t + lo * sum_t p_t.
      channel_params(v, s);
      s.acc.assign(G * C, 0.0f);
      s.bias.assign(G, 0.0f);
      for (int r = r0; r < r1; ++r) {
        unpack(r);
        const float* pr = p + size_t(r - r0) * G;
        for (size_t j = 0; j < G; ++j) {
          axpy(pr[j], u, &s.acc[j * C], C);
          s.bias[j] += pr[j];
        }
      }
      for (size_t j = 0; j < G; ++j) {
        float* a = acc + j * C;
        const float* b = &s.acc[j * C];
        for (size_t c = 0; c < C; ++c) a[c] += s.step[c] * b[c] + s.lo[c] * s.bias[j];
      }
      break;
    }
    case Scheme::Groupwise: {
      // Per row and group: acc += (p step) * code + p lo.
      const size_t Gs = size_t(v.group), groups = C / Gs;
      s.lo.resize(groups);
      s.step.resize(groups);
      for (int r = r0; r < r1; ++r) {
        unpack(r);
        const size_t first = size_t(r) * groups;
        for (size_t i = 0; i < groups; ++i) {
          s.lo[i] = half_to_float(v.lo[first + i]), s.step[i] = half_to_float(v.step[first + i]);
        }
        const float* pr = p + size_t(r - r0) * G;
        for (size_t j = 0; j < G; ++j) {
          for (size_t i = 0; i < groups; ++i) {
            const float a = pr[j] * s.step[i], b = pr[j] * s.lo[i];
            float* y = acc + j * C + i * Gs;
            const float* x = u + i * Gs;
            for (size_t c = 0; c < Gs; ++c) y[c] += a * x[c] + b;
          }
        }
      }
      break;
    }
  }
}

}  // namespace zc::quant
