// Launchers of the quantize-and-pack kernels (pack.cu), internal to src/cuda/quant:
// pack.cpp validates arguments and calls these. Plain C++ declarations so that g++
// compiles the callers; every pointer is a device pointer.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace zc::cuda::detail {

// How the groups of quant::Scheme map onto a rows x cols matrix (SPEC.md section 2).
enum class GroupMode : int { Tokenwise = 0, Channelwise = 1, Groupwise = 2 };

// Error codes reported through `err` (initialized to ~0ull by the caller): the smallest
// (index << 2 | kind) over all failures is kept (atomicMin).
enum ErrorKind : int { kNonFinite = 1, kLoRange = 2, kStepOverflow = 3 };

// lo/step (fp16 bits) of every group of x (what quant::fit_affine computes). Also flags
// non-finite elements (index = element offset r * cols + c). Channelwise with
// block_rows > 0: a group per column within each block of block_rows rows (as if each
// block were quantized on its own), group index block * cols + column; 0 = all rows.
cudaError_t launch_fit(const float* x, int rows, int cols, int bits, GroupMode mode, int group,
                       uint16_t* lo, uint16_t* step, unsigned long long* err, cudaStream_t s,
                       int block_rows = 0, unsigned* scratch = nullptr);
// scratch (optional, 2 * groups unsigned ints of device memory owned by the caller's
// stream): channelwise statistics of many rows then run parallel over rows as well.

// CSTQ channel scales: scale[c] = fp16(sqrt(max_r |x[r, c]|)) rounded once, and
// y = x / scale (0 where the scale is 0). Flags non-finite elements of x.
cudaError_t launch_cstq_scale(const float* x, int rows, int cols, uint16_t* scale, float* y,
                              unsigned long long* err, cudaStream_t s, unsigned* scratch = nullptr);
// (scratch: optional, 2 * cols unsigned ints, as for launch_fit.)

// codes: packed_bytes(rows * cols, bits) bytes, code i at byte i / (8 / bits), bit
// (i % (8 / bits)) * bits, each code round((x - lo) / step) as quant::encode does.
cudaError_t launch_encode(const float* x, int rows, int cols, int bits, GroupMode mode, int group,
                          const uint16_t* lo, const uint16_t* step, uint8_t* codes,
                          cudaStream_t s, int block_rows = 0);

}  // namespace zc::cuda::detail
