// A measurement, not a check (skipped unless ZC_TIMING=1): the decode step's products
// at large batches (the rows of `bench --budget`'s largest batches, ZC_GEMM_ROWS,
// default 117,118,574,597) through what the forward pass calls (cuBLASLt with the
// algorithm gemm_tuning.h chose) against every algorithm cuBLASLt's
// heuristic offers for the same product: whether tuning the products could pay.
#include <gtest/gtest.h>
#include <cublasLt.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cuda/model/gemm.h"
#include "gpu_test.h"

namespace {

using zc::cuda::check_cublas;
using zc::cuda::DeviceBuffer;

std::vector<int> rows_to_time() {
  const char* v = std::getenv("ZC_GEMM_ROWS");
  std::stringstream in(v != nullptr && *v != '\0' ? v : "117,118,574,597");
  std::vector<int> rows;
  for (std::string item; std::getline(in, item, ',');) rows.push_back(std::stoi(item));
  return rows;
}

// An algorithm's configuration, for the log: id, tile, stages, split-K, swizzle, cluster
// (cublasLt.h's enums: tile 465 = 192x160, the tile's second size along the rows).
std::string algo_config(const cublasLtMatmulAlgo_t& algo) {
  std::string out;
  for (const auto& [name, attr] : {std::pair{"id", CUBLASLT_ALGO_CONFIG_ID}, std::pair{"tile", CUBLASLT_ALGO_CONFIG_TILE_ID},
                                   std::pair{"stages", CUBLASLT_ALGO_CONFIG_STAGES_ID},
                                   std::pair{"splitk", CUBLASLT_ALGO_CONFIG_SPLITK_NUM},
                                   std::pair{"swizzle", CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING},
                                   std::pair{"cluster", CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID}}) {
    uint32_t v = 0;
    uint16_t v16 = 0;
    size_t written = 0;
    // Some attributes are 16-bit (the cluster shape): the size must match.
    if (cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &v, sizeof(v), &written) == CUBLAS_STATUS_SUCCESS ||
        (cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &v16, sizeof(v16), &written) == CUBLAS_STATUS_SUCCESS &&
         (v = v16, true))) {
      out += std::string(out.empty() ? "" : " ") + name + "=" + std::to_string(v);
    }
  }
  return out;
}

TEST(CudaGemm, TimingLtCandidatesAtLargeBatches) {
  const char* on = std::getenv("ZC_TIMING");
  if (on == nullptr || std::strcmp(on, "1") != 0) GTEST_SKIP() << "set ZC_TIMING=1 to time";
  ZC_REQUIRE_GPU();
  constexpr int kRuns = 20;
  const size_t w_max = size_t(4096) * 128256;
  DeviceBuffer<uint16_t> w(w_max), x(size_t(1024) * 14336);
  w.fill_bytes(0x3c), x.fill_bytes(0x3c);
  DeviceBuffer<float> y(size_t(1024) * 128256);
  y.fill_bytes(0);
  zc::cuda::Gemm gemm(0);
  cublasLtHandle_t lt = nullptr;
  check_cublas(cublasLtCreate(&lt), "lt");
  const size_t ws_bytes = size_t(32) << 20;
  DeviceBuffer<unsigned char> ws(ws_bytes);
  struct Shape { const char* name; int in, out; bool bf16_out; float beta; };
  for (const int n : rows_to_time()) {
    for (const Shape s : {Shape{"qkv", 4096, 6144, false, 0.0f}, Shape{"o", 4096, 4096, false, 1.0f},
                          Shape{"gate/up", 4096, 28672, true, 0.0f}, Shape{"down", 14336, 4096, false, 1.0f},
                          Shape{"lm head", 4096, 128256, false, 0.0f}}) {
      const double flops = 2.0 * n * s.in * s.out;
      const auto median_us = [&](auto&& fn) {
        std::vector<float> ms = zc_test::event_times_ms(kRuns, 3, [&](int) { fn(); });
        std::sort(ms.begin(), ms.end());
        return 1e3 * ms[ms.size() / 2];
      };
      const double used = median_us([&] {
        if (s.bf16_out) {
          gemm.linear_bf16(x.get(), n, s.in, w.get(), s.out, reinterpret_cast<uint16_t*>(y.get()), nullptr);
        } else {
          gemm.linear(x.get(), n, s.in, w.get(), s.out, y.get(), s.beta, nullptr);
        }
      });
      // The same product through cuBLASLt, every candidate of its heuristic.
      cublasLtMatmulDesc_t desc = nullptr;
      cublasLtMatrixLayout_t lw = nullptr, lx = nullptr, ly = nullptr;
      check_cublas(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc");
      const cublasOperation_t t = CUBLAS_OP_T, nt = CUBLAS_OP_N;
      check_cublas(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)), "ta");
      check_cublas(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof(nt)), "tb");
      const cudaDataType_t yt = s.bf16_out ? CUDA_R_16BF : CUDA_R_32F;
      check_cublas(cublasLtMatrixLayoutCreate(&lw, CUDA_R_16BF, s.in, s.out, s.in), "lw");
      check_cublas(cublasLtMatrixLayoutCreate(&lx, CUDA_R_16BF, s.in, n, s.in), "lx");
      check_cublas(cublasLtMatrixLayoutCreate(&ly, yt, s.out, n, s.out), "ly");
      cublasLtMatmulPreference_t pref = nullptr;
      check_cublas(cublasLtMatmulPreferenceCreate(&pref), "pref");
      const uint64_t wsb = ws_bytes;
      check_cublas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof(wsb)), "ws");
      const uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
      check_cublas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes, sizeof(schemes)), "red");
      cublasLtMatmulHeuristicResult_t results[16] = {};
      int found = 0;
      check_cublas(cublasLtMatmulAlgoGetHeuristic(lt, desc, lw, lx, ly, ly, pref, 16, results, &found), "heuristic");
      double best = 1e30;
      int best_i = -1;
      std::string all;
      for (int i = 0; i < found; ++i) {
        const float alpha = 1.0f, beta = s.beta;
        const double us = median_us([&] {
          check_cublas(cublasLtMatmul(lt, desc, &alpha, w.get(), lw, x.get(), lx, &beta, y.get(), ly, y.get(), ly,
                                      &results[i].algo, ws.get(), ws_bytes, nullptr),
                       "matmul");
        });
        all += ' ';
        all += std::to_string(int(us));
        if (us < best) best = us, best_i = i;
      }
      std::printf("rows %d %-8s %5d -> %6d: used %8.1f us (%5.0f TFLOPS); Lt best of %2d: #%d %8.1f us (%5.0f TFLOPS), "
                  "%.3fx [%s]; all:%s\n",
                  n, s.name, s.in, s.out, used, flops / used / 1e6, found, best_i, best, flops / best / 1e6,
                  used / best, best_i >= 0 ? algo_config(results[best_i].algo).c_str() : "", all.c_str());
      cublasLtMatmulPreferenceDestroy(pref);
      cublasLtMatrixLayoutDestroy(lw), cublasLtMatrixLayoutDestroy(lx), cublasLtMatrixLayoutDestroy(ly);
      cublasLtMatmulDescDestroy(desc);
    }
  }
  cublasLtDestroy(lt);
}

}  // namespace
