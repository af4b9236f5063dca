// Bit packing of quantization codes (SPEC.md section 1): little end first, four
// 2-bit or two 4-bit codes per byte; 8-bit codes are bytes.
#pragma once
#include <cstddef>
#include <cstdint>

namespace zc::quant {

// Bytes needed for `count` codes of `bits` bits (2, 4 or 8).
size_t packed_bytes(size_t count, int bits);

// codes[i] < 2^bits; out must hold packed_bytes(count, bits) bytes.
void pack_codes(const uint8_t* codes, size_t count, int bits, uint8_t* out);
void unpack_codes(const uint8_t* packed, size_t count, int bits, uint8_t* out);

// The code at index i of a packed array (what a decode kernel reads).
inline uint8_t packed_code(const uint8_t* packed, size_t i, int bits) {
  const size_t per_byte = 8 / static_cast<size_t>(bits);
  const unsigned shift = static_cast<unsigned>((i % per_byte) * static_cast<size_t>(bits));
  return static_cast<uint8_t>((packed[i / per_byte] >> shift) & ((1u << bits) - 1u));
}

}  // namespace zc::quant
