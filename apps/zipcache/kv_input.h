// Reading the K/V file `zipcache kv` analyses. Layout (documented in `zipcache kv
// --help` and docs/kv-files.md), as PyTorch/HF hold a layer's cache for one sequence:
//   k, v     [n_kv_heads, L, d] or [1, n_kv_heads, L, d]   F32/F16/BF16 (keys after RoPE)
//   q        [n_heads, L, d]    or [1, n_heads, L, d]      optional
//   salient  [S] or [n_kv_heads, S] integer token positions optional
#pragma once
#include <string>
#include <vector>

#include "kv_analysis.h"

namespace zc::app {

struct LoadedKv {
  KvInput input;                         // converted to token-major
  std::vector<std::vector<int>> salient;  // empty, one list for all heads, or one per head
};

LoadedKv load_kv_file(const std::string& path);
std::string kv_file_help();

}  // namespace zc::app
