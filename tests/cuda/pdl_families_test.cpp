// Which decode kernels launch with programmatic dependent launch (ZC_PDL, read by
// cuda/core/device.h's pdl_families): the default set, all, none, lists, and bad names
// refused with the value and the family named. Host-side only: runs without a GPU.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "cuda/core/device.h"

namespace {

using zc::cuda::PdlKernel;

unsigned bit(PdlKernel k) { return 1u << static_cast<unsigned>(k); }

TEST(CudaPdlFamilies, DefaultAllNoneAndLists) {
  const unsigned fallback = bit(PdlKernel::Gemv) | bit(PdlKernel::Layer) | bit(PdlKernel::Page);
  EXPECT_EQ(zc::cuda::pdl_families(nullptr), fallback);
  EXPECT_EQ(zc::cuda::pdl_families(""), fallback);
  EXPECT_EQ(zc::cuda::pdl_families("0"), 0u);
  EXPECT_EQ(zc::cuda::pdl_families("1"), 0x1fu);
  EXPECT_EQ(zc::cuda::pdl_families("merge"), bit(PdlKernel::Merge));
  EXPECT_EQ(zc::cuda::pdl_families("split,gemv"), bit(PdlKernel::Split) | bit(PdlKernel::Gemv));
  EXPECT_EQ(zc::cuda::pdl_families("layer+page+layer"), bit(PdlKernel::Layer) | bit(PdlKernel::Page));
}

TEST(CudaPdlFamilies, UnknownFamilyIsRefusedByName) {
  for (const char* bad : {"yes", "gemv,", "gemv,,layer", "Gemv", "2", "gemv layer"}) {
    try {
      (void)zc::cuda::pdl_families(bad);
      ADD_FAILURE() << "no error for ZC_PDL=" << bad;
    } catch (const zc::Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("ZC_PDL=") + bad), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("not a kernel family"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
