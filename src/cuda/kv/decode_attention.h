// Decode attention on the GPU over the paged KV layout of kv_page.h (SPEC.md section
// 4): one query token per sequence, a batch of sequences, fp16 / ZipCache / KIVI
// pages merged in one softmax. Split over the context flash-decoding style (several
// CTAs per (sequence, KV head), then a merge); the g query heads of a GQA group are
// served by one pass over their KV head's pages.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "cuda/core/device.h"
#include "cuda/kv/kv_pages.h"
#include "cuda/kv/window_sums.h"

namespace zc::cuda {

struct DecodeShape {
  int batch = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float scale = 0.0f;  // 0: 1 / sqrt(head_dim)
  int q_stride = 0;    // floats between sequences' queries (0: n_heads * head_dim)
};

// Scratch for the partial results; grows as needed, reuse it across steps.
struct DecodeWorkspace {
  DeviceBuffer<float> part_o, part_ml;
};

// How decode attention divides its (sequence, KV head) pairs among CTAs: pairs
// [0, whole_pairs) take one CTA each, over all their pages, which finishes the pair
// itself (the tensor-core kernel only); the others take `splits` CTAs each over equal
// runs of pages, merged by a second kernel.
struct SplitPlan {
  int splits = 1;
  int whole_pairs = 0;
};

// Splits for every one of `pairs` (sequence, KV head) lists of up to max_pages pages
// with `slots` CTAs resident at once (SMs x CTAs per SM), at least eight pages (256
// tokens) per split: for the tensor-core kernel as many as fit one wave of CTAs, or
// where the pairs alone overfill a wave, the 1-4 that waste least on a part-filled last
// wave; for the SIMT one at least eight CTAs per SM. No GPU needed.
int splits_for_slots(int pairs, int max_pages, int slots, bool tensor_cores);
// The auto mode's plan: splits_for_slots's splits for every pair (whole pairs when that
// is one split on the tensor cores), or, where the pairs fill whole waves of CTAs and
// a few are left over, those waves of whole pairs and the leftover pairs split finely
// enough to end together, when the cost model says that is cheaper. tail: whether
// such plans may be chosen (ZC_DECODE_TAIL=0 turns them off). No GPU needed.
SplitPlan plan_for_slots(int pairs, int max_pages, int slots, bool tensor_cores, bool tail = true);

// Whether decode attention runs the tensor-core split kernel: yes, for every cache the
// kernel supports (value groups of 16 channels or more), unless ZC_DECODE_KERNEL=simt.
bool use_tensor_cores();

// q: device [batch][n_heads][d] floats; out: device [batch][n_heads][d] floats. List
// b * n_kv_heads + h of kv holds sequence b, KV head h (every list non-empty). splits 0
// takes the auto plan (plan_for_slots), a number splits every pair alike; the number of
// splits used (of the split pairs, with a plan) is returned. Throws zc::Error on mismatched
// shapes, group size above 8, or an empty list.
// out_ml, when given: [batch][n_heads][2], the softmax's max (in log2 units: scores
// times scale * log2(e)) and its sum of 2^(score - max), so that a token's probability
// is 2^(score * scale * log2(e) - max) / sum (the ZipCache window tracks these).
// out_bf16, when given: the output also as bf16 bits [batch][n_heads][d] (rounded to
// nearest even, as core/half.h), written by the merge kernel; out may then be null.
int decode_attention(const DecodeShape& shape, const PagedKvView& kv, const float* q, float* out,
                     DecodeWorkspace& ws, int splits = 0, cudaStream_t stream = nullptr,
                     float* out_ml = nullptr, uint16_t* out_bf16 = nullptr, const WindowSums* window = nullptr);
// The same with a given plan (tests; whole_pairs in [0, pairs]; splits 0: the auto
// plan). The SIMT kernel, and ZC_DECODE_MERGE=always, split every pair alike (whole_pairs
// 0); one split makes every pair whole.
int decode_attention(const DecodeShape& shape, const PagedKvView& kv, const float* q, float* out,
                     DecodeWorkspace& ws, const SplitPlan& plan, cudaStream_t stream = nullptr,
                     float* out_ml = nullptr, uint16_t* out_bf16 = nullptr, const WindowSums* window = nullptr);
// What the auto plan's launches for this shape and view depend on besides device
// memory: equal keys of two views over the same buffers launch identical kernels, so a
// CUDA graph captured for one replays for the other (gpu_runner.cpp). Whole pairs read
// their page counts from the device, so with every pair whole (one split) the key does
// not change as the lists grow; otherwise it changes with the pages per split.
long long decode_launch_key(const DecodeShape& shape, const PagedKvView& kv);
inline int decode_attention(const DecodeShape& shape, const DevicePagedKv& kv, const float* q,
                            float* out, DecodeWorkspace& ws, int splits = 0,
                            cudaStream_t stream = nullptr) {
  return decode_attention(shape, kv.view(), q, out, ws, splits, stream);
}

#ifdef ZC_DECODE_TRACE
// Builds with -DZC_DECODE_TRACE=ON only (decode_trace.cuh): the tensor-core kernel's
// per-warp phase records of the launches since the last clear, kTraceSlots per warp.
std::vector<unsigned long long> decode_trace_download();
void decode_trace_clear();
#endif

}  // namespace zc::cuda
