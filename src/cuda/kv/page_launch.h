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
#include <vector>

#include "cuda/kv/kv_page.h"

namespace zc::cuda::detail {

// Where sequence b's tokens of this call go: page index and slot of its first token.
struct SeqRun {
  int32_t page0 = 0, slot0 = 0;
};

// RoPE applied on the way into the cache by a decode step's append (one kernel instead
// of a RoPE launch and a write launch): row r's key is rotated before it is stored (k
// itself is left as is), and the g query heads of KV head h of row r, at
// q + r * q_stride + (h * g + j) * d, are rotated in place. positions[r] is row r's
// position, inv_freq[d / 2] the model's frequencies (cuda/model/rope.cuh's math).
struct AppendRope {
  float* q = nullptr;
  int q_stride = 0, g = 0;
  const int32_t* positions = nullptr;  // null: no rotation
  const float* inv_freq = nullptr;
};

// fp16 writes. Row r of k/v (row stride `stride` floats; head h at + h * d) is token
// r - seq * rows_per_seq of sequence seq = seq0 + r / rows_per_seq (prefill: one
// sequence, rows_per_seq = T; decode: rows_per_seq = 1, a row per sequence). Sets the
// ntok of every page written to cover the tokens written so far.
cudaError_t launch_write_fp16(const float* k, const float* v, int rows, int rows_per_seq, int seq0,
                              int stride, int n_kv, int d, const SeqRun* runs, KvPage* table,
                              int cap, uint8_t* pool, cudaStream_t s, const AppendRope& rope = {});

// A sequence's fp16 window in a batched call: its index and the page its window starts
// at (slot 0).
struct SeqWindow {
  int32_t seq = 0, page0 = 0;
};
// The inverse, for n_seqs sequences at once (windows: device [n_seqs]): sequence i's
// first n window tokens into k/v + i * n * n_kv * d, as [n][n_kv][d] floats, one launch
// (a step's KIVI compressions and ZipCache chunks used to launch per sequence: ~1 s
// for 500+ sequences).
cudaError_t launch_read_fp16_batch(const KvPage* table, int cap, const SeqWindow* windows, int n_seqs, int n_kv,
                                   int d, int n, const uint8_t* pool, float* k, float* v, cudaStream_t s);

// Quantized sets of one sequence at one layer written into their pages
// (quantize_pages.cu). Set i holds n rows per KV head: row r of head h is token
// idx[h * idx_stride + r] of k/v (idx null: token r; idx_stride 0: one list for every
// head), where k/v are rows of `stride` floats, head h at + h * d. Keys channelwise at
// `bits` with lo/step per (block of block_rows rows, channel) (block_rows a multiple of
// 32, or 0: the whole set); values at `bits` with lo/step per (row, group of vgroup
// channels) and, if cstq, channel scales per block (the values are divided by them
// first); via_fp16 rounds keys and values to fp16 first (KIVI's prompt tokens, which
// pass through its fp16 window). The set goes to pages page0 .. page0 + ceil(n / 32) - 1
// of every list of sequence `seq`, whose descriptors (units, bits, ntok) the host has
// set. Non-finite inputs and unrepresentable ranges are reported in *err as
// quant/pack_launch.h's kinds. k and v must be 16-byte aligned with `stride` a multiple of
// 4 (cudaErrorMisalignedAddress otherwise); other unsupported shapes return
// cudaErrorInvalidValue.
struct QuantizeSet {
  const int32_t* idx = nullptr;
  int idx_stride = 0, n = 0, bits = 2, page0 = 0, block_rows = 0;
  unsigned* stats = nullptr;  // set by the launcher
};
struct QuantizeJob {
  const float *k = nullptr, *v = nullptr;
  int stride = 0, n_kv = 0, d = 0, vgroup = 0;
  bool cstq = false, via_fp16 = false;
  const KvPage* table = nullptr;
  int cap = 0, seq = 0;
  uint8_t* pool = nullptr;
  unsigned long long* err = nullptr;
  QuantizeSet sets[2];
  int n_sets = 1;
};
// Scratch words one set's statistics need (`stats` of launch_quantize_sets holds the
// sum over the job's sets).
size_t quantize_stats_words(int n, int block_rows, int n_kv, int d);
cudaError_t launch_quantize_sets(QuantizeJob job, unsigned* stats, cudaStream_t s);
// Several jobs (each as above, one sequence's sets; equal n_kv and d) in one pair of
// launches: `stats` holds the sum of every set's quantize_stats_words, dev_jobs (device,
// jobs.size() entries) receives the jobs.
cudaError_t launch_quantize_batch(std::vector<QuantizeJob> jobs, unsigned* stats, QuantizeJob* dev_jobs,
                                  cudaStream_t s);

// For n_seqs sequences (windows: device [n_seqs], only .seq read): scores[i][h][j] =
// sums[seq_i * n_kv + h][j] / (normalized ? n - j : 1), j < n; then their sums rows are
// cleared (all sums_cap entries), as a streaming chunk starts the window anew.
cudaError_t launch_window_scores_batch(float* sums, int sums_cap, const SeqWindow* windows, int n_seqs, int n_kv,
                                       int n, bool normalized, float* scores, cudaStream_t s);

// table[index[i]] = pages[i]: descriptor updates made on the host (distinct indices).
cudaError_t launch_scatter_pages(const KvPage* pages, const int64_t* index, int n, KvPage* table,
                                 cudaStream_t s);

// Zeroes n pages of `bytes` (a multiple of 16) each, page i at pool + units[i] * 16
// (units: device [n]).
cudaError_t launch_zero_pages(const uint32_t* units, int n, uint8_t* pool, size_t bytes, cudaStream_t s);

}  // namespace zc::cuda::detail
