// Launchers of the decode-attention kernels (decode_attention.cu), internal to
// src/cuda/kv: decode_attention.cpp validates and sizes, then calls these.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/kv/kv_page.h"
#include "cuda/kv/window_sums.h"

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
  bool stage_kp = false;     // stage every quantized page's key parameters (PagedKvView::page_key_blocks)
  // Pairs [0, whole_pairs) take one CTA of the tensor-core kernel each, over all their
  // pages, which writes the outputs (and the window sums) itself (decode_mma_finish.cuh);
  // pairs [whole_pairs, pairs) take `splits` CTAs each, whose partials the merge kernel
  // combines. All pairs whole: no merge runs; none (0, and always for the SIMT kernel):
  // every pair is split alike. Partials are indexed from the first split pair:
  // part = (pair - whole_pairs) * splits + split.
  int whole_pairs = 0;
  // ZipCache's window tracking (window_sums.h), off when window.sums is null: the split
  // kernels keep the scores (log2 units) of list b * n_kv + h's fp16 pages from page
  // window.first_page[b * first_page_stride] on in window.scores [pairs][g][win_stride]
  // (token w = 32 * (page - first) + slot; win_stride = window_scores_stride(cap)); the
  // merge adds each token's probability, summed over the group's heads, to window.sums.
  WindowSums window;
  int win_stride = 0;
};

// Where page `page` (list-relative) of list `pair` keeps its tokens' scores for window
// tracking: the first of 32 slots for head 0 (head j at + j * win_stride), or null when the
// page is not in the tracked window (or tracking is off).
__host__ __device__ inline float* window_score_slots(const DecodeParams& p, int pair, int page) {
  const WindowSums& win = p.window;
  if (win.sums == nullptr) return nullptr;
  const int first = win.first_page[(pair / p.n_kv) * win.first_page_stride];
  const int w0 = (page - first) * kPageTokens;
  if (page < first || w0 >= win.cap) return nullptr;
  return win.scores + size_t(pair) * p.g * p.win_stride + w0;
}

// How many CTAs of the tensor-core split kernel launch_decode would run for p fit on
// one SM at once (its shared memory and registers); 0 when p takes the SIMT kernel.
int resident_ctas(const DecodeParams& p);

// Split kernel over grid (splits, pairs) then the merge kernel over pairs. The split
// kernel is the tensor-core one (decode_mma.cuh) unless p.simt or its limits say
// otherwise (value groups under 16 channels).
cudaError_t launch_decode(const DecodeParams& p, int pairs, cudaStream_t s);
// The merge kernel alone over grid (pairs, g) (decode_merge.cu).
cudaError_t launch_merge(const DecodeParams& p, int pairs, cudaStream_t s);

}  // namespace zc::cuda::detail
