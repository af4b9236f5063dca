// Shared attention over row sources (attention.h): per KV head, the g query heads that
// read it are processed together so every stored row is fetched (and dequantized)
// once per query position, not once per query head.
#include "kv/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/half.h"
#include "core/thread_pool.h"
#include "quant/decode_kernels.h"
#include "quant/half_convert.h"

namespace zc::kv {

RowSource RowSource::f32(const float* k, const float* v, size_t stride, int rows) {
  RowSource s;
  s.kind = Kind::F32;
  s.kf = k, s.vf = v, s.stride = stride, s.rows = rows;
  return s;
}

RowSource RowSource::f16(const uint16_t* k, const uint16_t* v, size_t stride, int rows) {
  RowSource s;
  s.kind = Kind::F16;
  s.kh = k, s.vh = v, s.stride = stride, s.rows = rows;
  return s;
}

RowSource RowSource::quant(const quant::QuantizedMatrix& k, const quant::QuantizedMatrix& v) {
  ZC_CHECK(k.rows == v.rows);
  RowSource s;
  s.kind = Kind::Quant;
  s.kq = &k, s.vq = &v, s.rows = k.rows;
  return s;
}

float softmax_scale(const KvShape& shape) {
  return shape.scale != 0.0f ? shape.scale : 1.0f / std::sqrt(float(shape.head_dim));
}

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Decode work (rows x query heads per KV head x d) below which threads do not pay.
constexpr size_t kMinParallelWork = size_t(1) << 17;

// Eight independent partial sums so that the compiler can vectorize without
// reassociating (no -ffast-math).
inline float dot(const float* a, const float* b, int d) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int c = 0;
  for (; c + 8 <= d; c += 8) {
    for (int i = 0; i < 8; ++i) acc[i] += a[c + i] * b[c + i];
  }
  float s = 0.0f;
  for (; c < d; ++c) s += a[c] * b[c];
  for (int i = 0; i < 8; ++i) s += acc[i];
  return s;
}

struct Scratch {
  std::vector<float> logits;  // [visible rows of all sources][g]
  std::vector<float> p;       // one source's exp(logit - source max), [rows][g]
  std::vector<float> row;     // one converted row (fp16 sources)
  std::vector<float> m, l, acc, ms, ls, accs;
};

// Row r of keys (is_key) or values of an fp32 / fp16 source, as fp32.
const float* fetch(const RowSource& s, bool is_key, int r, int d, float* buf) {
  if (s.kind == RowSource::Kind::F32) return (is_key ? s.kf : s.vf) + size_t(r) * s.stride;
  quant::halves_to_floats((is_key ? s.kh : s.vh) + size_t(r) * s.stride, size_t(d), buf);
  return buf;
}

// First row of a source visible to a query at `pos` (sliding window W: positions > pos - W).
int first_visible(const RowSource& s, int pos, int window) {
  if (window <= 0) return 0;
  ZC_CHECK(s.first_pos >= 0);
  return std::clamp(pos - window + 1 - s.first_pos, 0, s.rows);
}

// lg[(r - r0) * g + j] = scale * q_j . k_r for the rows [r0, rows) of a source. A
// quantized block goes to the block kernel, which reads its codes directly
// (quant/decode_kernels.h); other rows are read one at a time.
void source_logits(const RowSource& src, const float* q, int g, int d, float scale, int r0,
                   float* lg, Scratch& s) {
  if (src.kind == RowSource::Kind::Quant) {
    quant::dot_rows(*src.kq, q, g, r0, src.rows, lg);
    const size_t n = size_t(src.rows - r0) * size_t(g);
    for (size_t i = 0; i < n; ++i) lg[i] *= scale;
    return;
  }
  for (int r = r0; r < src.rows; ++r) {
    const float* kr = fetch(src, true, r, d, s.row.data());
    float* lr = lg + size_t(r - r0) * g;
    for (int j = 0; j < g; ++j) lr[j] = scale * dot(q + size_t(j) * d, kr, d);
  }
}

// accs[j * d + c] += sum_r p[(r - r0) * g + j] * v_r[c] over the rows [r0, rows).
void source_values(const RowSource& src, const float* p, int g, int d, int r0, float* accs,
                   Scratch& s) {
  if (src.kind == RowSource::Kind::Quant) {
    quant::accumulate_rows(*src.vq, p, g, r0, src.rows, accs);
    return;
  }
  for (int r = r0; r < src.rows; ++r) {
    const float* vr = fetch(src, false, r, d, s.row.data());
    const float* pr = p + size_t(r - r0) * g;
    for (int j = 0; j < g; ++j) {
      float* a = accs + size_t(j) * d;
      for (int c = 0; c < d; ++c) a[c] += pr[j] * vr[c];
    }
  }
}

// Attention of g query heads (q: g rows of d) over the sources; out: g rows of d.
void attend(const float* q, int g, int d, float scale, const std::vector<RowSource>& sources,
            int pos, int window, float* out, Scratch& s) {
  size_t total = 0;
  for (const auto& src : sources) {
    total += size_t(src.rows - first_visible(src, pos, window));
    if (src.kind == RowSource::Kind::Quant) ZC_CHECK(src.kq->cols == d && src.vq->cols == d);
  }
  ZC_CHECK(total > 0);
  s.logits.resize(total * size_t(g));
  s.row.resize(size_t(d));
  s.m.assign(size_t(g), kNegInf);
  s.l.assign(size_t(g), 0.0f);
  s.acc.assign(size_t(g) * d, 0.0f);
  s.ms.resize(size_t(g));
  s.ls.resize(size_t(g));
  s.accs.resize(size_t(g) * d);

  size_t offset = 0;
  for (const auto& src : sources) {
    const int r0 = first_visible(src, pos, window);
    if (r0 >= src.rows) continue;
    const size_t n = size_t(src.rows - r0);
    float* lg = &s.logits[offset * size_t(g)];
    // Pass 1: logits of this source and its own maximum per query head.
    source_logits(src, q, g, d, scale, r0, lg, s);
    std::fill(s.ms.begin(), s.ms.end(), kNegInf);
    for (size_t r = 0; r < n; ++r) {
      for (int j = 0; j < g; ++j) s.ms[size_t(j)] = std::max(s.ms[size_t(j)], lg[r * g + j]);
    }
    // Pass 2: partial softmax sums and weighted values relative to that maximum.
    s.p.resize(n * size_t(g));
    std::fill(s.ls.begin(), s.ls.end(), 0.0f);
    for (size_t r = 0; r < n; ++r) {
      for (int j = 0; j < g; ++j) {
        const float p = std::exp(lg[r * g + j] - s.ms[size_t(j)]);
        s.p[r * g + j] = p;
        s.ls[size_t(j)] += p;
      }
    }
    std::fill(s.accs.begin(), s.accs.end(), 0.0f);
    source_values(src, s.p.data(), g, d, r0, s.accs.data(), s);
    // Merge the partial result into the running one (rescale both to the larger max).
    for (int j = 0; j < g; ++j) {
      const float mn = std::max(s.m[size_t(j)], s.ms[size_t(j)]);
      const float a = s.m[size_t(j)] == kNegInf ? 0.0f : std::exp(s.m[size_t(j)] - mn);
      const float b = std::exp(s.ms[size_t(j)] - mn);
      float* acc = &s.acc[size_t(j) * d];
      const float* accs = &s.accs[size_t(j) * d];
      for (int c = 0; c < d; ++c) acc[c] = acc[c] * a + accs[c] * b;
      s.l[size_t(j)] = s.l[size_t(j)] * a + s.ls[size_t(j)] * b;
      s.m[size_t(j)] = mn;
    }
    offset += n;
  }

  for (int j = 0; j < g; ++j) {
    const float inv = 1.0f / s.l[size_t(j)];
    for (int c = 0; c < d; ++c) out[size_t(j) * d + c] = s.acc[size_t(j) * d + c] * inv;
  }

  // Probabilities each row received, summed over the g query heads.
  offset = 0;
  for (const auto& src : sources) {
    const int r0 = first_visible(src, pos, window);
    if (r0 >= src.rows) continue;
    if (src.probs) {
      const float* lg = &s.logits[offset * size_t(g)];
      for (int r = r0; r < src.rows; ++r) {
        float p = 0.0f;
        for (int j = 0; j < g; ++j) {
          p += std::exp(lg[size_t(r - r0) * g + j] - s.m[size_t(j)]) / s.l[size_t(j)];
        }
        src.probs[r] += p;
      }
    }
    offset += size_t(src.rows - r0);
  }
}

void check_shape(const KvShape& shape) {
  ZC_CHECK(shape.n_kv_heads > 0 && shape.head_dim > 0 && shape.n_heads % shape.n_kv_heads == 0);
}

}  // namespace

void decode_attention(const KvShape& shape, const float* q, int pos, const SourceFn& cached,
                      float* out) {
  check_shape(shape);
  const int d = shape.head_dim, g = shape.n_heads / shape.n_kv_heads;
  const float scale = softmax_scale(shape);
  std::vector<std::vector<RowSource>> per_head(size_t(shape.n_kv_heads));
  size_t rows = 0;
  for (int h = 0; h < shape.n_kv_heads; ++h) {
    cached(h, per_head[size_t(h)]);
    for (const auto& src : per_head[size_t(h)]) rows += size_t(src.rows);
  }
  auto run = [&](size_t h) {
    thread_local Scratch s;  // reused across steps: no allocation in steady state
    attend(q + h * size_t(g) * d, g, d, scale, per_head[h], pos, shape.sliding_window,
           out + h * size_t(g) * d, s);
  };
  // Waking the pool costs a few microseconds; below ~2^17 multiply-adds (tens of
  // microseconds of work, e.g. a short context with 1-2 KV heads) one thread is faster.
  if (rows * size_t(g) * size_t(d) < kMinParallelWork) {
    for (size_t h = 0; h < per_head.size(); ++h) run(h);
  } else {
    parallel_for(per_head.size(), run);
  }
}

void prefill_attention(const KvShape& shape, const float* q, const float* k, const float* v,
                       int T, int pos0, const SourceFn& cached, float* new_probs, float* out) {
  check_shape(shape);
  ZC_CHECK(T >= 1);
  const int d = shape.head_dim, H = shape.n_heads, n_kv = shape.n_kv_heads, g = H / n_kv;
  const float scale = softmax_scale(shape);
  const size_t kv_stride = size_t(n_kv) * d;

  std::vector<std::vector<RowSource>> per_head{size_t(n_kv)};
  bool any_probs = new_probs != nullptr;
  for (int h = 0; h < n_kv; ++h) {
    cached(h, per_head[size_t(h)]);
    for (const auto& src : per_head[size_t(h)]) any_probs = any_probs || src.probs;
    RowSource fresh = RowSource::f32(k + size_t(h) * d, v + size_t(h) * d, kv_stride, 0);
    fresh.first_pos = pos0;
    fresh.probs = new_probs ? new_probs + size_t(h) * T : nullptr;
    per_head[size_t(h)].push_back(fresh);
  }

  // Probabilities are accumulated per KV head, so then a KV head is one task; without
  // them the query positions of a head are split into blocks as well.
  const int block = any_probs ? T : 32;
  const int blocks = (T + block - 1) / block;
  parallel_for(size_t(n_kv) * blocks, [&](size_t task) {
    const int h = int(task / size_t(blocks)), b = int(task % size_t(blocks));
    std::vector<RowSource> sources = per_head[size_t(h)];
    thread_local Scratch s;
    for (int t = b * block; t < std::min(T, (b + 1) * block); ++t) {
      sources.back().rows = t + 1;  // causal: the new tokens up to this one
      const size_t at = (size_t(t) * H + size_t(h) * g) * d;
      attend(q + at, g, d, scale, sources, pos0 + t, shape.sliding_window, out + at, s);
    }
  });
}

}  // namespace zc::kv
