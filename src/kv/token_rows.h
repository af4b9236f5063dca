// Tokens of one KV head kept unquantized: keys and values as rows of d elements,
// fp16 bits (uint16_t, 2 bytes a value, what the fp16 policy and every fp16 window
// store) or fp32 (the exact reference policy). Internal to src/kv.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "kv/attention.h"

namespace zc::kv {

template <typename Elem>
class TokenRows {
  static_assert(std::is_same_v<Elem, uint16_t> || std::is_same_v<Elem, float>);

 public:
  explicit TokenRows(int d = 0) : d_(d) {}

  int rows() const { return rows_; }
  int dim() const { return d_; }
  // Bytes of what is held: rows x d x (k and v) x element size.
  size_t bytes() const { return size_t(rows_) * size_t(d_) * 2 * sizeof(Elem); }

  void push(const float* k, const float* v) {
    for (int c = 0; c < d_; ++c) k_.push_back(store(k[c]));
    for (int c = 0; c < d_; ++c) v_.push_back(store(v[c]));
    ++rows_;
  }

  // Row r (0 = oldest held) as fp32.
  void get(int r, float* k, float* v) const {
    ZC_CHECK(r >= 0 && r < rows_);
    const size_t at = (size_t(first_) + size_t(r)) * size_t(d_);
    for (int c = 0; c < d_; ++c) k[c] = load(k_[at + size_t(c)]), v[c] = load(v_[at + size_t(c)]);
  }

  // Drops the n oldest rows. The storage moves only once the dropped rows outnumber
  // the held ones, so dropping one row per step (a sliding window) costs O(d).
  void erase_front(int n) {
    ZC_CHECK(n >= 0 && n <= rows_);
    first_ += n;
    rows_ -= n;
    if (first_ >= rows_) {
      const auto start = std::ptrdiff_t(size_t(first_) * size_t(d_));
      k_.erase(k_.begin(), k_.begin() + start);
      v_.erase(v_.begin(), v_.begin() + start);
      first_ = 0;
    }
  }

  // Keeps the rows whose keep[r] is true, in order.
  void keep_only(const std::vector<bool>& keep) {
    ZC_CHECK(int(keep.size()) == rows_);
    size_t out = 0;
    for (int r = 0; r < rows_; ++r) {
      if (!keep[size_t(r)]) continue;
      const size_t from = (size_t(first_) + size_t(r)) * size_t(d_);
      std::copy_n(k_.begin() + std::ptrdiff_t(from), d_, k_.begin() + std::ptrdiff_t(out));
      std::copy_n(v_.begin() + std::ptrdiff_t(from), d_, v_.begin() + std::ptrdiff_t(out));
      out += size_t(d_);
    }
    k_.resize(out), v_.resize(out);
    first_ = 0;
    rows_ = int(out / size_t(d_));
  }

  void clear() { k_.clear(), v_.clear(), first_ = 0, rows_ = 0; }

  RowSource source() const {
    const size_t at = size_t(first_) * size_t(d_);
    if constexpr (std::is_same_v<Elem, float>) {
      return RowSource::f32(k_.data() + at, v_.data() + at, size_t(d_), rows_);
    } else {
      return RowSource::f16(k_.data() + at, v_.data() + at, size_t(d_), rows_);
    }
  }

 private:
  static Elem store(float x) {
    if constexpr (std::is_same_v<Elem, float>) {
      return x;
    } else {
      return float_to_half(x);
    }
  }
  static float load(Elem x) {
    if constexpr (std::is_same_v<Elem, float>) {
      return x;
    } else {
      return half_to_float(x);
    }
  }

  int d_ = 0, rows_ = 0, first_ = 0;
  std::vector<Elem> k_, v_;
};

}  // namespace zc::kv
