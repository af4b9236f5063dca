// Whole-byte unpacking of packed codes into floats (what a decode kernel feeds its
// multiply-adds with). Layout as in pack.h (SPEC.md section 1): code i of a b-bit
// array is at byte i / (8 / b), bit offset (i % (8 / b)) * b.
#pragma once
#include <cstddef>
#include <cstdint>

namespace zc::quant {

// out[i] = code (first + i) of the packed array, as a float in [0, 2^bits - 1], for
// i < n. bits must be 2, 4 or 8 (not checked: callers have validated the matrix).
// Whole bytes go through a 256-entry table (four or two floats per byte); only a
// partial byte at either end is read code by code.
void unpack_floats(const uint8_t* packed, size_t first, size_t n, int bits, float* out);

}  // namespace zc::quant
