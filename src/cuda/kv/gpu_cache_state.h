// The private state of GpuKvCache (gpu_cache.h), shared by its two source files:
// gpu_cache.cpp (setup, prefill, decode steps, accounting) and gpu_cache_sets.cpp
// (quantized sets: planning, quantization, KIVI's and ZipCache's compression).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "cuda/core/device.h"
#include "cuda/kv/gpu_cache.h"
#include "cuda/kv/page_launch.h"
#include "cuda/saliency/probe_scores.h"

namespace zc::cuda {

using detail::SeqRun;

// What a page holds; its bytes follow (kv_page.h).
struct GpuKvCache::PageSpec {
  int kbits = 16, vbits = 16, vgroup = 0;
  PageValues values = PageValues::Fp16;
};

struct GpuKvCache::Seq {
  int length = 0;
  int pages = 0;            // pages in use per list
  int win_first_page = 0;   // the fp16 window starts at this page (slot 0)
  int win_count = 0;        // tokens in the window
  int prefill_T = 0;        // during a layered prefill
  // A window page made ahead by end_step() for the next token (every layer and KV head,
  // at this page index, past `pages`), or -1.
  int ready_page = -1;
  // Block-parameter chunks per (layer, KV head): unit and bytes.
  std::vector<std::vector<std::pair<uint32_t, size_t>>> blocks;
};

struct GpuKvCache::Scratch {
  DeviceBuffer<float> scores, wk, wv;
  DeviceBuffer<int32_t> idx, probes;
  DeviceBuffer<unsigned long long> err;
  // ~0 unless a ZipCache split since the last check_errors() met a NaN saliency
  // score (top_r_split_deferred).
  DeviceBuffer<unsigned long long> nan_score;
  DeviceBuffer<unsigned> qstats;  // statistics of the sets being quantized (quantize_pages.cu)
  DeviceBuffer<detail::SeqWindow> windows;  // a batched compression's sequences
  DeviceBuffer<detail::QuantizeJob> jobs;   // and their quantize jobs
  DeviceBuffer<SeqRun> runs, win;
  DeviceBuffer<int32_t> win_count;
  DeviceBuffer<KvPage> upd_pages;
  DeviceBuffer<int64_t> upd_index;
  DeviceBuffer<uint32_t> upd_fresh;  // the new fp16 pages' units, zeroed (flush_updates)
  ProbeWorkspace probe_ws;
  std::vector<SeqRun> runs_h, win_h;
  std::vector<int32_t> win_count_h;
};

namespace gpu_cache_detail {

template <typename T>
inline void grow(DeviceBuffer<T>& b, size_t n) {
  if (b.size() < n) b.resize(n);
}

inline size_t page_bytes(int d, int kbits, int vbits, int ng) {
  if (kbits == 16) return size_t(d) * 32 * 2 * 2;
  return size_t(d) * 4 * size_t(kbits) + size_t(d) * 4 * size_t(vbits) + size_t(128) * size_t(ng);
}

inline int pages_for(int n) { return (n + kPageTokens - 1) / kPageTokens; }

}  // namespace gpu_cache_detail
using gpu_cache_detail::grow;
using gpu_cache_detail::page_bytes;
using gpu_cache_detail::pages_for;

}  // namespace zc::cuda
