// Bulk fp16 -> float conversion for the decode path's fp16 rows (fp16 policy, H2O,
// the fp16 windows of KIVI and ZipCache). Same results as zc::half_to_float, bit for
// bit, but branch-free so the compiler vectorizes it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace zc::quant {

// out[i] = the value of fp16 bits h[i], for i < n (NaN payloads kept, as half_to_float).
void halves_to_floats(const uint16_t* h, size_t n, float* out);

}  // namespace zc::quant
