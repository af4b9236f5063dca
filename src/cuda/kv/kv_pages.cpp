// Host conversion of CPU cache blocks into the paged GPU layout (kv_page.h).
#include "cuda/kv/kv_pages.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "quant/pack.h"

namespace zc::cuda {

namespace {

// Sets bits [bit, bit + bits) of a 16-byte vector (little-endian words) to code.
void put_code(uint8_t* vec, int bit, int bits, unsigned code) {
  // Codes of 2 and 4 bits never straddle a byte.
  vec[bit / 8] = static_cast<uint8_t>(vec[bit / 8] | (code << (bit % 8)));
  (void)bits;
}

void put_half(uint8_t* base, size_t index, uint16_t h) { std::memcpy(base + 2 * index, &h, 2); }

}  // namespace

PagedKvBuilder::PagedKvBuilder(int head_dim) : d_(head_dim) {
  if (d_ != 64 && d_ != 128 && d_ != 256) {
    fail("cuda paged kv: head_dim {} is not supported (64, 128 or 256)", d_);
  }
}

void PagedKvBuilder::begin_list() { offsets_.push_back(offsets_.back()); }

void PagedKvBuilder::check_list(const char* where) const {
  if (lists() < 1) fail("cuda paged kv: {} before begin_list()", where);
}

uint32_t PagedKvBuilder::alloc(size_t bytes) {
  const size_t at = pool_.size();
  const size_t padded = (bytes + 15) / 16 * 16;
  if ((at + padded) / 16 > 0xffffffffull) fail("cuda paged kv: pool exceeds 64 GiB");
  pool_.resize(at + padded, 0);
  return static_cast<uint32_t>(at / 16);
}

int PagedKvBuilder::max_pages() const {
  int m = 0;
  for (size_t i = 0; i + 1 < offsets_.size(); ++i) m = std::max(m, offsets_[i + 1] - offsets_[i]);
  return m;
}

int PagedKvBuilder::min_pages() const {
  int m = lists() > 0 ? offsets_[1] - offsets_[0] : 0;
  for (size_t i = 0; i + 1 < offsets_.size(); ++i) m = std::min(m, offsets_[i + 1] - offsets_[i]);
  return m;
}

size_t PagedKvBuilder::tokens(int list) const {
  size_t n = 0;
  for (int p = offsets_[size_t(list)]; p < offsets_[size_t(list) + 1]; ++p) n += pages_[size_t(p)].ntok;
  return n;
}

void PagedKvBuilder::add_block(const quant::QuantizedMatrix& k, const quant::QuantizedMatrix& v) {
  check_list("add_block");
  const int d = d_;
  if (k.scheme != quant::Scheme::Channelwise) {
    fail("cuda paged kv: keys must be channelwise (got {})", quant::scheme_name(k.scheme));
  }
  if (k.bits != 2 && k.bits != 4) fail("cuda paged kv: key bits {} (supported: 2, 4)", k.bits);
  if (v.bits != 2 && v.bits != 4) fail("cuda paged kv: value bits {} (supported: 2, 4)", v.bits);
  if (k.cols != d || v.cols != d) {
    fail("cuda paged kv: block has {} key / {} value columns, head_dim is {}", k.cols, v.cols, d);
  }
  if (k.rows != v.rows || k.rows < 1) {
    fail("cuda paged kv: block has {} key rows and {} value rows (need equal, >= 1)", k.rows, v.rows);
  }
  PageValues kind = PageValues::Tokenwise;
  int vg = d;
  switch (v.scheme) {
    case quant::Scheme::Tokenwise: kind = PageValues::Tokenwise; break;
    case quant::Scheme::Cstq: kind = PageValues::Cstq; break;
    case quant::Scheme::Groupwise:
      kind = PageValues::Groupwise;
      vg = v.group;
      if (vg < 2 || vg % 2 != 0 || d % vg != 0 || d / vg > 8) {
        fail("cuda paged kv: value group {} unsupported (even, divides head_dim {}, at most 8 "
             "groups)", vg, d);
      }
      break;
    case quant::Scheme::Channelwise:
      fail("cuda paged kv: channelwise values are not supported");
  }
  const size_t need_k = quant::packed_bytes(size_t(k.rows) * size_t(d), k.bits);
  const size_t need_v = quant::packed_bytes(size_t(v.rows) * size_t(d), v.bits);
  const size_t groups = size_t(d / vg);
  if (k.codes.size() != need_k || k.lo.size() != size_t(d) || k.step.size() != size_t(d) ||
      v.codes.size() != need_v || v.lo.size() != size_t(v.rows) * groups ||
      v.step.size() != v.lo.size() ||
      v.channel_scale.size() != (kind == PageValues::Cstq ? size_t(d) : 0)) {
    fail("cuda paged kv: malformed block ({} rows): code or parameter counts do not match", k.rows);
  }
  max_groups_ = std::max(max_groups_, static_cast<int>(groups));
  ++blocks_;
  multi_page_block_ = multi_page_block_ || k.rows > kPageTokens;

  // Per-block arrays: key lo/step, channel scales.
  const uint32_t kp = alloc(4 * size_t(d));
  for (int c = 0; c < d; ++c) {
    put_half(&pool_[size_t(kp) * 16], size_t(c), k.lo[size_t(c)]);
    put_half(&pool_[size_t(kp) * 16], size_t(d + c), k.step[size_t(c)]);
  }
  uint32_t vs = 0;
  if (kind == PageValues::Cstq) {
    vs = alloc(2 * size_t(d));
    for (int c = 0; c < d; ++c) put_half(&pool_[size_t(vs) * 16], size_t(c), v.channel_scale[size_t(c)]);
  }

  const int kvecs = d * k.bits / 128;
  const int kcpv = 128 / k.bits;
  for (int r0 = 0; r0 < k.rows; r0 += kPageTokens) {
    const int n = std::min(kPageTokens, k.rows - r0);
    KvPage pg;
    pg.kbits = static_cast<uint8_t>(k.bits);
    pg.vbits = static_cast<uint8_t>(v.bits);
    pg.values = kind;
    pg.ntok = static_cast<uint8_t>(n);
    pg.vgroup = static_cast<uint16_t>(vg);
    pg.kp = kp;
    pg.vs = vs;
    pg.k = alloc(size_t(kvecs) * kPageTokens * 16);
    pg.v = alloc(size_t(d) * size_t(v.bits) * 4);  // d * bits words (kv_page.h)
    pg.vp = alloc(2 * groups * kPageTokens * 2);
    for (int t = 0; t < n; ++t) {
      const size_t row = size_t(r0 + t);
      for (int c = 0; c < d; ++c) {
        const unsigned kc = quant::packed_code(k.codes.data(), row * size_t(d) + size_t(c), k.bits);
        const int cc = c / kcpv, i = c % kcpv;
        put_code(&pool_[(size_t(pg.k) + size_t(cc) * kPageTokens + size_t(t)) * 16], i * k.bits,
                 k.bits, kc);
        const unsigned vc = quant::packed_code(v.codes.data(), row * size_t(d) + size_t(c), v.bits);
        put_code(&pool_[size_t(pg.v) * 16 + size_t(value_code_word(v.bits, t, c)) * 4], value_code_bit(v.bits, t, c),
                 v.bits, vc);
      }
      uint8_t* vp = &pool_[size_t(pg.vp) * 16];
      for (size_t g = 0; g < groups; ++g) {
        put_half(vp, g * kPageTokens + size_t(t), v.lo[row * groups + g]);
        put_half(vp, (groups + g) * kPageTokens + size_t(t), v.step[row * groups + g]);
      }
    }
    pages_.push_back(pg);
    ++offsets_.back();
  }
}

void PagedKvBuilder::add_fp16(const uint16_t* k, const uint16_t* v, size_t stride, int rows) {
  check_list("add_fp16");
  if (rows < 0) fail("cuda paged kv: add_fp16 with {} rows", rows);
  if (rows > 0 && (k == nullptr || v == nullptr)) fail("cuda paged kv: add_fp16 with null rows");
  const int d = d_;
  for (int r0 = 0; r0 < rows; r0 += kPageTokens) {
    const int n = std::min(kPageTokens, rows - r0);
    KvPage pg;
    pg.ntok = static_cast<uint8_t>(n);
    pg.vgroup = static_cast<uint16_t>(d);
    pg.k = alloc(size_t(d / 8) * kPageTokens * 16);
    pg.v = alloc(8 * size_t(d / 2) * 16);
    for (int t = 0; t < n; ++t) {
      const uint16_t* kr = k + size_t(r0 + t) * stride;
      const uint16_t* vr = v + size_t(r0 + t) * stride;
      for (int c = 0; c < d; ++c) {
        put_half(&pool_[(size_t(pg.k) + size_t(c / 8) * kPageTokens + size_t(t)) * 16], size_t(c % 8),
                 kr[c]);
        const int chunk = t / 4, u = t % 4;
        put_half(&pool_[(size_t(pg.v) + size_t(chunk) * size_t(d / 2) + size_t(c / 2)) * 16],
                 size_t((c % 2) * 4 + u), vr[c]);
      }
    }
    pages_.push_back(pg);
    ++offsets_.back();
  }
}

void PagedKvBuilder::replicate(int copies) {
  if (copies < 1) fail("cuda paged kv: replicate({})", copies);
  const size_t units = pool_.size() / 16;
  const std::vector<uint8_t> pool0 = pool_;
  const std::vector<KvPage> pages0 = pages_;
  const std::vector<int32_t> off0 = offsets_;
  if ((units * size_t(copies)) > 0xffffffffull) fail("cuda paged kv: replicated pool exceeds 64 GiB");
  for (int c = 1; c < copies; ++c) {
    const auto shift = static_cast<uint32_t>(units * size_t(c));
    pool_.insert(pool_.end(), pool0.begin(), pool0.end());
    const auto page_base = static_cast<int32_t>(pages_.size());
    for (KvPage p : pages0) {
      p.k += shift, p.v += shift, p.vp += shift;
      if (p.kbits != 16) p.kp += shift;
      if (p.values == PageValues::Cstq) p.vs += shift;
      pages_.push_back(p);
    }
    for (size_t i = 1; i < off0.size(); ++i) offsets_.push_back(page_base + off0[i]);
  }
}

DevicePagedKv upload(const PagedKvBuilder& b) {
  DevicePagedKv kv;
  kv.head_dim = b.head_dim();
  kv.lists = b.lists();
  kv.max_pages = b.max_pages();
  kv.min_pages = b.min_pages();
  kv.max_value_groups = b.max_value_groups();
  kv.quantized = b.quantized();
  kv.page_key_blocks = b.page_key_blocks();
  kv.pool.upload(b.pool());
  kv.pages.upload(b.pages());
  kv.offsets.upload(b.offsets());
  return kv;
}

}  // namespace zc::cuda
