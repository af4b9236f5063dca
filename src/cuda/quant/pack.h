// Quantization and bit packing on the GPU (SPEC.md sections 1-2), producing exactly
// what quant::quantize produces on the CPU, bit for bit: the same packed row-major
// codes, fp16 lo/step per group in the same group order, and fp16 CSTQ channel scales.
// (The paged decode layout of cuda/kv/kv_pages.h is filled from this format.)
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/core/device.h"
#include "quant/quantizer.h"

namespace zc::cuda {

// Device image of a quant::QuantizedMatrix (same fields, same layouts).
struct DeviceQuantized {
  int rows = 0, cols = 0, bits = 0, group = 0;
  quant::Scheme scheme = quant::Scheme::Tokenwise;
  DeviceBuffer<uint8_t> codes;
  DeviceBuffer<uint16_t> lo, step, channel_scale;

  quant::QuantizedMatrix download() const;
};

// x: device pointer to a rows x cols row-major float matrix. Arguments as
// quant::quantize (bits 2, 4 or 8; groupwise needs cols % group == 0). Throws zc::Error
// for bad arguments, a non-finite element (naming its row and column) or parameters
// outside fp16's range (naming the group). Synchronizes `stream` once to check.
DeviceQuantized quantize(const float* x, int rows, int cols, int bits, quant::Scheme scheme,
                         int group = 0, cudaStream_t stream = nullptr);

}  // namespace zc::cuda
