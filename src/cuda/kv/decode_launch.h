// Launchers of the decode-attention kernels (decode_attention.cu), internal to
// src/cuda/kv: decode_attention.cpp validates and sizes, then calls these.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/kv/kv_page.h"

namespace zc::cuda::detail {

struct DecodeParams {
  const uint8_t* pool = nullptr;
  const KvPage* pages = nullptr;
  const int32_t* starts = nullptr;   // [pairs]: first page of each (sequence, KV head)
  const int32_t* ends = nullptr;     // [pairs]: one past its last page
  const float* q = nullptr;          // [batch][n_heads][d]
  float* part_o = nullptr;           // [pairs][splits][g][d], unnormalized
  float* part_ml = nullptr;          // [pairs][splits][g][2]: running max (log2 units), sum
  float* out = nullptr;              // [batch][n_heads][d] (optional when out_bf16 is set)
  uint16_t* out_bf16 = nullptr;      // optional [batch][n_heads][d]: the output as bf16 bits
  float* out_ml = nullptr;           // optional [batch][n_heads][2]: softmax max (log2 units), sum
  int n_heads = 0, n_kv = 0, g = 0, d = 0;
  int q_stride = 0;          // floats from one sequence's query heads to the next's
  int groups = 1;            // the most value groups of any page (smem sizing)
  int splits = 1, pages_per_split = 1;
  float scale_log2 = 0.0f;   // softmax scale times log2(e)
  bool simt = false;         // the SIMT split kernel instead of the tensor-core one
  bool quantized = true;     // some page holds codes (false: fp16 pages only)
};

// How many CTAs of the tensor-core split kernel launch_decode would run for p fit on
// one SM at once (its shared memory and registers); 0 when p takes the SIMT kernel.
int resident_ctas(const DecodeParams& p);

// Split kernel over grid (splits, pairs) then the merge kernel over pairs. The split
// kernel is the tensor-core one (decode_mma.cuh) unless p.simt or its limits say
// otherwise (value groups under 16 channels).
cudaError_t launch_decode(const DecodeParams& p, int pairs, cudaStream_t s);

}  // namespace zc::cuda::detail
