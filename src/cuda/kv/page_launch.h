// Launchers of the kernels that fill and read the paged KV layout of kv_page.h on the
// GPU (page_kernels.cu), internal to src/cuda: the GPU cache (gpu_cache.cpp) decides
// where every page lives on the host and calls these. Device pointers throughout.
//
// Page tables: KvPage table[lists][cap] per layer (list = sequence * n_kv + head);
// token i of a run of pages starting at page index `page0` with `slot0` tokens already
// in it sits in page page0 + (slot0 + i) / 32, slot (slot0 + i) % 32.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/kv/kv_page.h"

namespace zc::cuda::detail {

// Where sequence b's tokens of this call go: page index and slot of its first token.
struct SeqRun {
  int32_t page0 = 0, slot0 = 0;
};

// fp16 writes. Row r of k/v (row stride `stride` floats; head h at + h * d) is token
// r - seq * rows_per_seq of sequence seq = seq0 + r / rows_per_seq (prefill: one
// sequence, rows_per_seq = T; decode: rows_per_seq = 1, a row per sequence). Sets the
// ntok of every page written to cover the tokens written so far.
cudaError_t launch_write_fp16(const float* k, const float* v, int rows, int rows_per_seq, int seq0,
                              int stride, int n_kv, int d, const SeqRun* runs, KvPage* table,
                              int cap, uint8_t* pool, cudaStream_t s);

// The inverse, for one sequence: n tokens of its pages (page0/slot0 as above) into
// k/v [n][n_kv][d] floats.
cudaError_t launch_read_fp16(const KvPage* table, int cap, int seq, int n_kv, int d, SeqRun run,
                             int n, const uint8_t* pool, float* k, float* v, cudaStream_t s);

// dst[i][h * d + c] = src[idx[h * idx_stride + i] * stride + h * d + c] for i < n_sel:
// the rows of a set (each KV head its own token list, idx_stride apart; 0: one list
// shared by every head) side by side.
cudaError_t launch_gather_rows(const float* src, int stride, int n_kv, int d, const int32_t* idx,
                               int idx_stride, int n_sel, float* dst, cudaStream_t s);

// A quantized set of one sequence (n rows, each [n_kv * d]: head h at columns h * d):
// keys channelwise at kbits with lo/step per (block of block_rows rows, column);
// values at vbits with lo/step per (row, group of vgroup columns) and, for CSTQ,
// channel scales per (block, column). Written into pages page0 .. page0 +
// ceil(n / 32) - 1 of every list of sequence `seq`, whose descriptors (units, bits,
// ntok) the host has set; block parameters by the first page of each block.
struct PackSet {
  const uint8_t* kcodes = nullptr;
  const uint16_t *klo = nullptr, *kstep = nullptr;
  const uint8_t* vcodes = nullptr;
  const uint16_t *vlo = nullptr, *vstep = nullptr, *vscale = nullptr;  // vscale: CSTQ only
  int n = 0, n_kv = 0, d = 0, kbits = 2, vbits = 2, vgroup = 0, block_rows = 0;
};
cudaError_t launch_pack_pages(const PackSet& set, const KvPage* table, int cap, int seq, int page0,
                              uint8_t* pool, cudaStream_t s);

// ZipCache's streaming saliency: after a decode step's attention, the probability
// each fp16 window token received from the step's g query heads is added to
// sums[list][w]. q [batch][n_heads][d]; ml [batch][n_heads][2] (decode_attention's
// out_ml); window w of sequence b at page win[b].page0 + w / 32, slot w % 32 (slot0 =
// 0), for w < win_count[b].
cudaError_t launch_window_saliency(const float* q, int q_stride, const float* ml, const KvPage* table, int cap,
                                   const uint8_t* pool, const SeqRun* win, const int32_t* win_count,
                                   int batch, int n_heads, int n_kv, int d, float scale_log2,
                                   float* sums, int sums_cap, cudaStream_t s);

// scores[h][j] = sums[seq * n_kv + h][j] / (normalized ? n - j : 1), j < n.
cudaError_t launch_window_scores(const float* sums, int sums_cap, int seq, int n_kv, int n,
                                 bool normalized, float* scores, cudaStream_t s);

// x[i] = float(half(x[i])): what a value is after a stay in an fp16 window.
cudaError_t launch_round_to_half(float* x, size_t n, cudaStream_t s);

// table[index[i]] = pages[i]: descriptor updates made on the host (distinct indices).
cudaError_t launch_scatter_pages(const KvPage* pages, const int64_t* index, int n, KvPage* table,
                                 cudaStream_t s);

}  // namespace zc::cuda::detail
