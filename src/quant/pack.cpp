// Bit packing (SPEC.md section 1): code i of a b-bit array lives in byte
// i / (8 / b) at bit offset (i % (8 / b)) * b, i.e. the first code takes the low
// (little) end of a byte. Unused high bits of the last byte are zero.
#include "quant/pack.h"

#include "core/error.h"

namespace zc::quant {

namespace {
void check_bits(int bits, const char* where) {
  if (bits != 2 && bits != 4 && bits != 8) {
    fail("{}: unsupported bit width {} (supported: 2, 4, 8)", where, bits);
  }
}
}  // namespace

size_t packed_bytes(size_t count, int bits) {
  check_bits(bits, "packed_bytes");
  const size_t per_byte = 8 / static_cast<size_t>(bits);
  return (count + per_byte - 1) / per_byte;
}

void pack_codes(const uint8_t* codes, size_t count, int bits, uint8_t* out) {
  check_bits(bits, "pack_codes");
  const unsigned limit = 1u << bits;
  const size_t per_byte = 8 / static_cast<size_t>(bits);
  const size_t full = count / per_byte;
  for (size_t byte = 0; byte < packed_bytes(count, bits); ++byte) {
    const size_t first = byte * per_byte;
    const size_t n = byte < full ? per_byte : count - first;
    unsigned packed = 0;
    for (size_t j = 0; j < n; ++j) {
      const unsigned c = codes[first + j];
      if (c >= limit)
        fail("pack_codes: code {} at index {} does not fit in {} bits", c, first + j, bits);
      packed |= c << (j * static_cast<size_t>(bits));
    }
    out[byte] = static_cast<uint8_t>(packed);
  }
}

void unpack_codes(const uint8_t* packed, size_t count, int bits, uint8_t* out) {
  check_bits(bits, "unpack_codes");
  if (bits == 8) {
    for (size_t i = 0; i < count; ++i) out[i] = packed[i];
    return;
  }
  for (size_t i = 0; i < count; ++i) out[i] = packed_code(packed, i, bits);
}

}  // namespace zc::quant
