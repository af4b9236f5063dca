// Validation of a QuantizedMatrix shared by the quantizer and the decode kernels
// (internal to src/quant). Defined in quantizer.cpp.
#pragma once

#include "quant/quantizer.h"

namespace zc::quant {

// Throws zc::Error naming `where` unless the shape, bits and group are supported and
// codes, lo/step and channel scales have exactly the sizes they require.
void check_matrix(const QuantizedMatrix& q, const char* where);

}  // namespace zc::quant
