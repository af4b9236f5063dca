// Table-driven unpacking (unpack.h): one table row per byte value holds the byte's
// codes as floats, so a whole byte costs one 8- or 16-byte copy instead of shifts,
// masks and int->float conversions per code.
#include "quant/unpack.h"

#include <cstring>

#include "quant/pack.h"

namespace zc::quant {
namespace {

template <int Bits>
struct Table {
  static constexpr int kPerByte = 8 / Bits;
  float v[256][kPerByte];
};

template <int Bits>
constexpr Table<Bits> make_table() {
  Table<Bits> t{};
  for (int b = 0; b < 256; ++b) {
    for (int i = 0; i < Table<Bits>::kPerByte; ++i) {
      t.v[b][i] = static_cast<float>((b >> (i * Bits)) & ((1 << Bits) - 1));
    }
  }
  return t;
}

constexpr Table<2> kTable2 = make_table<2>();
constexpr Table<4> kTable4 = make_table<4>();

template <int Bits>
const Table<Bits>& table_for() {
  if constexpr (Bits == 2) {
    return kTable2;
  } else {
    return kTable4;
  }
}

template <int Bits>
void unpack_sub_byte(const uint8_t* packed, size_t first, size_t n, float* out) {
  constexpr size_t per = 8 / Bits;
  const Table<Bits>& table = table_for<Bits>();
  size_t i = 0;
  // Leading codes until the index reaches a byte boundary.
  for (; i < n && (first + i) % per != 0; ++i) out[i] = float(packed_code(packed, first + i, Bits));
  const uint8_t* bytes = packed + (first + i) / per;
  const size_t whole = (n - i) / per;
  for (size_t b = 0; b < whole; ++b) {
    std::memcpy(out + i + b * per, table.v[bytes[b]], sizeof(float) * per);
  }
  i += whole * per;
  for (; i < n; ++i) out[i] = float(packed_code(packed, first + i, Bits));
}

}  // namespace

void unpack_floats(const uint8_t* packed, size_t first, size_t n, int bits, float* out) {
  switch (bits) {
    case 2:
      unpack_sub_byte<2>(packed, first, n, out);
      break;
    case 4:
      unpack_sub_byte<4>(packed, first, n, out);
      break;
    default:
      for (size_t i = 0; i < n; ++i) out[i] = float(packed[first + i]);
      break;
  }
}

}  // namespace zc::quant
