// Decode-attention kernels (decode_kernels.h). Per call: the block's fp16
// parameters are converted to float once (channelwise: cols pairs; tokenwise/CSTQ/
// groupwise: a row's pairs when the row is read), codes are unpacked by whole bytes
// (unpack.h) into a small float scratch that stays in L1, kRows rows at a time, and
// every query head then does plain multiply-adds against those rows: each query (or
// accumulator) element loaded serves kRows rows, and the kRows independent sums keep
// the adders busy. Scratch is per thread, so the kernels allocate nothing in steady
// state.
#include "quant/decode_kernels.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "quant/matrix_check.h"
#include "quant/unpack.h"

namespace zc::quant {
namespace {

constexpr int kRows = 4;

struct Scratch {
  std::vector<float> u;         // kRows rows of codes as floats
  std::vector<float> w;         // g x cols: the query folded with step or channel scales
  std::vector<float> bias;      // per head (and group): the lo terms
  std::vector<float> acc;       // g x cols: block-local sums of p * code
  std::vector<float> lo, step;  // per channel, or per (row of kRows, group)
  std::vector<float> scale;     // CSTQ channel scales
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
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
  for (size_t c = 0; c < C; ++c) {
    s.lo[c] = half_to_float(m.lo[c]), s.step[c] = half_to_float(m.step[c]);
  }
}

// The CSTQ channel scales as floats (all ones for tokenwise).
void channel_scales(const QuantizedMatrix& m, Scratch& s) {
  const size_t C = size_t(m.cols);
  s.scale.resize(C);
  for (size_t c = 0; c < C; ++c) {
    s.scale[c] = m.scheme == Scheme::Cstq ? half_to_float(m.channel_scale[c]) : 1.0f;
  }
}

// The (step, lo) pairs of rows [r, r + n) of a groupwise matrix: [row][group].
void row_group_params(const QuantizedMatrix& m, int r, int n, Scratch& s) {
  const size_t groups = size_t(m.cols / m.group);
  s.lo.resize(size_t(kRows) * groups);
  s.step.resize(size_t(kRows) * groups);
  for (int i = 0; i < n; ++i) {
    const size_t first = size_t(r + i) * groups;
    for (size_t gi = 0; gi < groups; ++gi) {
      s.lo[size_t(i) * groups + gi] = half_to_float(m.lo[first + gi]);
      s.step[size_t(i) * groups + gi] = half_to_float(m.step[first + gi]);
    }
  }
}

// Rows [r, r + n) (n <= kRows) of codes as floats into u (kRows rows of cols); rows
// past n are zero, so the helpers below always work on kRows rows. The n rows are
// consecutive codes, unpacked in one go.
void unpack_rows(const QuantizedMatrix& m, int r, int n, float* u) {
  const size_t C = size_t(m.cols);
  unpack_floats(m.codes.data(), size_t(r) * C, size_t(n) * C, m.bits, u);
  std::fill(u + size_t(n) * C, u + size_t(kRows) * C, 0.0f);
}

// kW floats as one value (GCC/Clang vector extension): one SSE register on baseline
// x86-64, one AVX register when the build enables AVX (e.g. -march=native). The loops
// below use exactly the operations written (no reassociation, no -ffast-math).
#ifdef __AVX__
constexpr size_t kW = 8;
#else
constexpr size_t kW = 4;
#endif
typedef float fv __attribute__((vector_size(kW * sizeof(float))));

inline fv load(const float* p) {
  fv v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, fv v) { std::memcpy(p, &v, sizeof v); }
inline float sum(fv a, fv b) {
  const fv t = a + b;
  float s = 0.0f;
  for (size_t i = 0; i < kW; ++i) s += t[i];
  return s;
}

// out[i] = sum_{c < n} w[c] * u[i * ld + c] for the kRows rows of u; two vector sums
// per row, so eight independent chains keep the adders busy.
inline void dot_4(const float* w, const float* u, size_t ld, size_t n, float* out) {
  const float *u0 = u, *u1 = u + ld, *u2 = u + 2 * ld, *u3 = u + 3 * ld;
  fv a0 = {}, b0 = {}, a1 = {}, b1 = {}, a2 = {}, b2 = {}, a3 = {}, b3 = {};
  size_t c = 0;
  for (; c + 2 * kW <= n; c += 2 * kW) {
    const fv x = load(w + c), y = load(w + c + kW);
    a0 += x * load(u0 + c), b0 += y * load(u0 + c + kW);
    a1 += x * load(u1 + c), b1 += y * load(u1 + c + kW);
    a2 += x * load(u2 + c), b2 += y * load(u2 + c + kW);
    a3 += x * load(u3 + c), b3 += y * load(u3 + c + kW);
  }
  float s0 = sum(a0, b0), s1 = sum(a1, b1), s2 = sum(a2, b2), s3 = sum(a3, b3);
  for (; c < n; ++c) {
    s0 += w[c] * u0[c], s1 += w[c] * u1[c], s2 += w[c] * u2[c], s3 += w[c] * u3[c];
  }
  out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

// y[c] += a[0] u[c] + a[1] u[ld + c] + a[2] u[2 ld + c] + a[3] u[3 ld + c] (+ b when
// WithB), c < n.
template <bool WithB>
inline void axpy_4(const float* a, const float* u, size_t ld, float b, float* y, size_t n) {
  const float *u0 = u, *u1 = u + ld, *u2 = u + 2 * ld, *u3 = u + 3 * ld;
  const float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
  size_t c = 0;
  for (; c + kW <= n; c += kW) {
    fv t = (a0 * load(u0 + c) + a1 * load(u1 + c)) + (a2 * load(u2 + c) + a3 * load(u3 + c));
    if constexpr (WithB) t += b;
    store(y + c, load(y + c) + t);
  }
  for (; c < n; ++c) {
    float t = (a0 * u0[c] + a1 * u1[c]) + (a2 * u2[c] + a3 * u3[c]);
    if constexpr (WithB) t += b;
    y[c] += t;
  }
}

}  // namespace

void dot_rows(const QuantizedMatrix& k, const float* q, int g, int r0, int r1, float* out) {
  check_call(k, q, g, r0, r1, out, "dot_rows");
  if (r0 == r1) return;
  const size_t C = size_t(k.cols), G = size_t(g);
  Scratch& s = scratch();
  s.u.resize(size_t(kRows) * C);
  float* u = s.u.data();
  float d[kRows];

  switch (k.scheme) {
    case Scheme::Channelwise: {
      // w = q * step, bias = q . lo (accumulated in double, once per block).
      channel_params(k, s);
      s.w.resize(G * C);
      s.bias.resize(G);
      for (size_t j = 0; j < G; ++j) {
        double b = 0.0;
        for (size_t c = 0; c < C; ++c) {
          s.w[j * C + c] = q[j * C + c] * s.step[c];
          b += double(q[j * C + c]) * double(s.lo[c]);
        }
        s.bias[j] = float(b);
      }
      for (int r = r0; r < r1; r += kRows) {
        const int n = std::min(kRows, r1 - r);
        unpack_rows(k, r, n, u);
        float* o = out + size_t(r - r0) * G;
        for (size_t j = 0; j < G; ++j) {
          dot_4(&s.w[j * C], u, C, C, d);
          for (int i = 0; i < n; ++i) o[size_t(i) * G + j] = d[i] + s.bias[j];
        }
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
      for (int r = r0; r < r1; r += kRows) {
        const int n = std::min(kRows, r1 - r);
        unpack_rows(k, r, n, u);
        float step[kRows], lo[kRows];
        for (int i = 0; i < n; ++i) {
          step[i] = half_to_float(k.step[size_t(r + i)]);
          lo[i] = half_to_float(k.lo[size_t(r + i)]);
        }
        float* o = out + size_t(r - r0) * G;
        for (size_t j = 0; j < G; ++j) {
          dot_4(&s.w[j * C], u, C, C, d);
          for (int i = 0; i < n; ++i) o[size_t(i) * G + j] = step[i] * d[i] + lo[i] * s.bias[j];
        }
      }
      break;
    }
    case Scheme::Groupwise: {
      // The tokenwise formula per group; bias[j * groups + gi] = sum of head j over group gi.
      const size_t Gs = size_t(k.group), groups = C / Gs;
      std::vector<float>& qsum = s.w;
      qsum.resize(G * groups);
      for (size_t j = 0; j < G; ++j) {
        for (size_t gi = 0; gi < groups; ++gi) {
          double b = 0.0;
          for (size_t c = 0; c < Gs; ++c) b += double(q[j * C + gi * Gs + c]);
          qsum[j * groups + gi] = float(b);
        }
      }
      for (int r = r0; r < r1; r += kRows) {
        const int n = std::min(kRows, r1 - r);
        unpack_rows(k, r, n, u);
        row_group_params(k, r, n, s);
        float* o = out + size_t(r - r0) * G;
        for (size_t j = 0; j < G; ++j) {
          float sum[kRows] = {};
          for (size_t gi = 0; gi < groups; ++gi) {
            dot_4(q + j * C + gi * Gs, u + gi * Gs, C, Gs, d);
            for (int i = 0; i < n; ++i) {
              sum[i] += s.step[size_t(i) * groups + gi] * d[i] +
                        s.lo[size_t(i) * groups + gi] * qsum[j * groups + gi];
            }
          }
          for (int i = 0; i < n; ++i) o[size_t(i) * G + j] = sum[i];
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
  s.u.resize(size_t(kRows) * C);
  float* u = s.u.data();

  switch (v.scheme) {
    case Scheme::Tokenwise:
    case Scheme::Cstq: {
      // Block sums acc' = sum_t (p_t step_t) code_t and bias = sum_t p_t lo_t, then
      // acc += s * (acc' + bias) once per block (s = 1 tokenwise).
      channel_scales(v, s);
      s.acc.assign(G * C, 0.0f);
      s.bias.assign(G, 0.0f);
      for (int r = r0; r < r1; r += kRows) {
        const int n = std::min(kRows, r1 - r);
        unpack_rows(v, r, n, u);
        float step[kRows] = {}, lo[kRows] = {};
        for (int i = 0; i < n; ++i) {
          step[i] = half_to_float(v.step[size_t(r + i)]);
          lo[i] = half_to_float(v.lo[size_t(r + i)]);
        }
        const float* pr = p + size_t(r - r0) * G;
        for (size_t j = 0; j < G; ++j) {
          float a[kRows] = {};
          for (int i = 0; i < n; ++i) {
            a[i] = pr[size_t(i) * G + j] * step[i];
            s.bias[j] += pr[size_t(i) * G + j] * lo[i];
          }
          axpy_4<false>(a, u, C, 0.0f, &s.acc[j * C], C);
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
      // acc += step * sum_t p_t code_t + lo * sum_t p_t, once per block.
      channel_params(v, s);
      s.acc.assign(G * C, 0.0f);
      s.bias.assign(G, 0.0f);
      for (int r = r0; r < r1; r += kRows) {
        const int n = std::min(kRows, r1 - r);
        unpack_rows(v, r, n, u);
        const float* pr = p + size_t(r - r0) * G;
        for (size_t j = 0; j < G; ++j) {
          float a[kRows] = {};
          for (int i = 0; i < n; ++i) a[i] = pr[size_t(i) * G + j], s.bias[j] += a[i];
          axpy_4<false>(a, u, C, 0.0f, &s.acc[j * C], C);
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
      // Per group: acc += sum_t (p_t step_t) code_t + sum_t p_t lo_t.
      const size_t Gs = size_t(v.group), groups = C / Gs;
      for (int r = r0; r < r1; r += kRows) {
        const int n = std::min(kRows, r1 - r);
        unpack_rows(v, r, n, u);
        row_group_params(v, r, n, s);
        const float* pr = p + size_t(r - r0) * G;
        for (size_t j = 0; j < G; ++j) {
          for (size_t gi = 0; gi < groups; ++gi) {
            float a[kRows] = {}, b = 0.0f;
            for (int i = 0; i < n; ++i) {
              a[i] = pr[size_t(i) * G + j] * s.step[size_t(i) * groups + gi];
              b += pr[size_t(i) * G + j] * s.lo[size_t(i) * groups + gi];
            }
            axpy_4<true>(a, u + gi * Gs, C, b, acc + j * C + gi * Gs, Gs);
          }
        }
      }
      break;
    }
  }
}

}  // namespace zc::quant
