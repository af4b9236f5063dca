// Shared helpers of the CUDA tests: the skip when no GPU is present (CI builds the
// CUDA code but has no GPU), and random data.
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "cuda/core/device.h"

// Skips the current test with the reason when no CUDA device can be used.
#define ZC_REQUIRE_GPU()                                          \
  do {                                                            \
    std::string zc_why_;                                          \
    if (!::zc::cuda::device_available(&zc_why_)) {                \
      GTEST_SKIP() << "no CUDA GPU: " << zc_why_;                 \
    }                                                             \
  } while (0)
