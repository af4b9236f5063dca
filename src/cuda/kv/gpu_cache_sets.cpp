// The quantized sets of the GPU KV cache (gpu_cache.h): descriptors and chunks of a
// set, its quantization (SPEC.md sections 2 and 4), ZipCache's salient/regular split,
// KIVI's page compression and ZipCache's streaming chunk.
#include "cuda/kv/gpu_cache.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "cuda/kv/gpu_cache_state.h"
#include "cuda/kv/page_launch.h"
#include "cuda/saliency/probe_scores.h"
#include "cuda/saliency/top_r.h"

namespace zc::cuda {

using detail::SeqRun;

// Descriptors and chunks of a quantized set of n tokens at `bits`, pages page0.. of
// every KV head of sequence seq at one layer.
void GpuKvCache::plan_set(int layer, int seq, int n, int bits, int page0) {
  if (n == 0) return;
  const int d = shape_.head_dim;
  const bool kivi = method_.method == kv::Method::Kivi;
  PageSpec spec;
  spec.kbits = spec.vbits = bits;
  int block_rows = n;
  if (kivi) {
    spec.values = PageValues::Groupwise;
    spec.vgroup = method_.group;
    block_rows = kPageTokens;
  } else {
    spec.values = method_.value_scheme == quant::Scheme::Cstq      ? PageValues::Cstq
                  : method_.value_scheme == quant::Scheme::Groupwise ? PageValues::Groupwise
                                                                     : PageValues::Tokenwise;
    spec.vgroup = spec.values == PageValues::Groupwise ? method_.value_group : d;
    if (method_.stats_block > 0) block_rows = std::min(n, method_.stats_block);
  }
  const bool cstq = spec.values == PageValues::Cstq;
  const size_t block_bytes = size_t(d) * 4 + (cstq ? size_t(d) * 2 : 0);
  const int ng = d / spec.vgroup;
  const size_t kbytes = size_t(d) * 4 * size_t(bits);
  Seq& s = seqs_[size_t(seq)];
  for (int h = 0; h < shape_.n_kv_heads; ++h) {
    auto& blocks = s.blocks[size_t(layer) * size_t(shape_.n_kv_heads) + size_t(h)];
    uint32_t block_unit = 0;
    for (int p = 0; p < pages_for(n); ++p) {
      const int row0 = p * kPageTokens;
      if (row0 % block_rows == 0) {
        block_unit = pool_.alloc(block_bytes);
        blocks.emplace_back(block_unit, block_bytes);
      }
      KvPage pg;
      pg.k = alloc_page(spec);
      pg.v = pg.k + uint32_t(kbytes / 16);
      pg.vp = pg.v + uint32_t(kbytes / 16);  // value codes take as many bytes as key codes
      pg.kp = block_unit;
      pg.vs = cstq ? block_unit + uint32_t(d * 4 / 16) : 0;
      pg.kbits = uint8_t(bits);
      pg.vbits = uint8_t(bits);
      pg.values = spec.values;
      pg.ntok = uint8_t(std::min(kPageTokens, n - row0));
      pg.vgroup = uint16_t(spec.vgroup);
      pg.allocated = 1;
      set_page(layer, seq * shape_.n_kv_heads + h, page0 + p, pg);
    }
  }
  (void)ng;
}

// Quantizes the sets (rows sets[i].idx[h][r] of k/v, rows of `stride` floats; idx
// null: rows 0 .. n - 1) into the pages plan_set made at sets[i].page0, in one call of
// quantize_pages.cu for all of them.
void GpuKvCache::quantize_sets(int layer, int seq, const float* k, const float* v, int stride,
                               std::initializer_list<SetRef> sets, bool via_fp16) {
  size_t words = 0;
  const detail::QuantizeJob job = quantize_job(layer, seq, k, v, stride, sets, via_fp16, &words);
  if (job.n_sets == 0) return;
  Scratch& sc = *scratch_;
  grow(sc.qstats, words);
  check(detail::launch_quantize_sets(job, sc.qstats.get(), stream_), "quantize into pages");
}

detail::QuantizeJob GpuKvCache::quantize_job(int layer, int seq, const float* k, const float* v, int stride,
                                             std::initializer_list<SetRef> sets, bool via_fp16, size_t* words) const {
  const int d = shape_.head_dim, n_kv = shape_.n_kv_heads;
  const bool kivi = method_.method == kv::Method::Kivi;
  detail::QuantizeJob job;
  job.k = k, job.v = v, job.stride = stride, job.n_kv = n_kv, job.d = d;
  job.vgroup = kivi ? method_.group : method_.value_scheme == quant::Scheme::Groupwise ? method_.value_group : d;
  job.cstq = !kivi && method_.value_scheme == quant::Scheme::Cstq;
  job.via_fp16 = via_fp16;
  job.table = table_dev_.get() + table_index(layer, 0, 0);
  job.cap = cap_, job.seq = seq, job.pool = pool_.base();
  job.err = scratch_->err.get();
  job.n_sets = 0;
  for (const SetRef& r : sets) {
    if (r.n == 0) continue;
    detail::QuantizeSet& q = job.sets[job.n_sets++];
    q.idx = r.idx, q.idx_stride = r.n, q.n = r.n, q.bits = r.bits, q.page0 = r.page0;
    // Keys' statistics per page (KIVI), per stats_block tokens, or over the whole set.
    q.block_rows = kivi ? kPageTokens : method_.stats_block > 0 ? std::min(r.n, method_.stats_block) : r.n;
    *words += detail::quantize_stats_words(q.n, q.block_rows, n_kv, d);
  }
  return job;
}

// ZipCache's split of n tokens (scores [n_kv][n] on the device) into salient and
// regular sets, quantized into pages page0.. of sequence seq at one layer.
void GpuKvCache::zipcache_split(int layer, int seq, const float* k, const float* v, int stride, int n,
                                const float* scores_dev, int page0) {
  const int n_kv = shape_.n_kv_heads;
  const int n_sal = saliency::top_r_count(n, method_.saliency_ratio);
  const int n_reg = n - n_sal;
  Scratch& sc = *scratch_;
  grow(sc.idx, size_t(n_kv) * size_t(n));
  int32_t* sal = sc.idx.get();
  int32_t* reg = sal + size_t(n_kv) * size_t(n_sal);
  // The NaN check waits for check_errors(): no synchronization per layer.
  top_r_split_deferred(scores_dev, n_kv, n, n_sal, sal, reg, sc.nan_score.get(), stream_);
  plan_set(layer, seq, n_sal, method_.bits_high, page0);
  plan_set(layer, seq, n_reg, method_.bits_low, page0 + pages_for(n_sal));
  flush_updates();
  quantize_sets(layer, seq, k, v, stride,
                {SetRef{sal, n_sal, method_.bits_high, page0}, SetRef{reg, n_reg, method_.bits_low, page0 + pages_for(n_sal)}});
}



namespace {
// Sequences per batched maintenance call: bounds the scratch (a ZipCache chunk of 100
// tokens takes 400 KB of k and as much of v per sequence and layer).
constexpr size_t kMaintenanceGroup = 128;

// due split into groups of at most kMaintenanceGroup sequences.
std::vector<std::vector<int>> groups_of(const std::vector<int>& due) {
  std::vector<std::vector<int>> groups;
  for (size_t first = 0; first < due.size(); first += kMaintenanceGroup) {
    groups.emplace_back(due.begin() + std::ptrdiff_t(first),
                        due.begin() + std::ptrdiff_t(std::min(due.size(), first + kMaintenanceGroup)));
  }
  return groups;
}
}  // namespace

void GpuKvCache::stage_group(const std::vector<int>& group, size_t rows) {
  std::vector<detail::SeqWindow> windows;
  for (const int b : group) windows.push_back(detail::SeqWindow{b, seqs_[size_t(b)].win_first_page});
  Scratch& sc = *scratch_;
  grow(sc.windows, windows.size());
  // From pageable memory: staged before the call returns.
  check(cudaMemcpyAsync(sc.windows.get(), windows.data(), windows.size() * sizeof(detail::SeqWindow),
                        cudaMemcpyHostToDevice, stream_),
        "compression windows");
  grow(sc.wk, rows * group.size());
  grow(sc.wv, rows * group.size());
  grow(sc.jobs, group.size());
}

void GpuKvCache::read_windows(int layer, int n_seqs, int n) {
  Scratch& sc = *scratch_;
  check(detail::launch_read_fp16_batch(table_dev_.get() + table_index(layer, 0, 0), cap_, sc.windows.get(), n_seqs,
                                       shape_.n_kv_heads, shape_.head_dim, n, pool_.base(), sc.wk.get(), sc.wv.get(),
                                       stream_),
        "read windows");
}

void GpuKvCache::quantize_group(std::vector<detail::QuantizeJob> jobs, size_t words) {
  Scratch& sc = *scratch_;
  grow(sc.qstats, words);
  check(detail::launch_quantize_batch(std::move(jobs), sc.qstats.get(), sc.jobs.get(), stream_), "quantize into pages");
}

// KIVI's streaming rule: the window's oldest page (G = 32 tokens) becomes a quantized
// page in its place, at every layer. Every due sequence of a step at once, layer by
// layer: one launch copies their pages out (their chunks are free once the copy is
// queued: later kernels of the stream write the new ones), the new pages are planned
// and the table goes up once, one pair of launches quantizes them. Sequence by sequence
// a step of 536 sequences took ~0.75 s (docs/benchmarks.md, session 17).
void GpuKvCache::kivi_compress_pages(const std::vector<int>& due) {
  const int d = shape_.head_dim, n_kv = shape_.n_kv_heads;
  Scratch& sc = *scratch_;
  for (const std::vector<int>& group : groups_of(due)) {
    const size_t rows = size_t(kPageTokens) * n_kv * d;
    stage_group(group, rows);
    for (int layer = 0; layer < shape_.n_layers; ++layer) {
      read_windows(layer, int(group.size()), kPageTokens);
      std::vector<detail::QuantizeJob> jobs;
      size_t words = 0;
      for (size_t i = 0; i < group.size(); ++i) {
        const int b = group[i], page = seqs_[size_t(b)].win_first_page;
        for (int h = 0; h < n_kv; ++h) free_page(table_[table_index(layer, b * n_kv + h, page)]);
        plan_set(layer, b, kPageTokens, method_.kivi_bits, page);
        jobs.push_back(quantize_job(layer, b, sc.wk.get() + rows * i, sc.wv.get() + rows * i, n_kv * d,
                                    {SetRef{nullptr, kPageTokens, method_.kivi_bits, page}}, false, &words));
      }
      flush_updates();  // the encode kernel reads the new pages' descriptors
      quantize_group(std::move(jobs), words);
    }
    for (const int b : group) {
      Seq& s = seqs_[size_t(b)];
      s.win_first_page += 1;
      s.win_count -= kPageTokens;
    }
  }
}

// ZipCache's streaming chunk (SPEC.md section 4, "Decode (streaming)"): the window's
// tokens, split by the attention they received (normalized by the n - j queries that
// saw token j), quantized like a prompt; the window starts empty after them. Every due
// sequence of a step at once, layer by layer as kivi_compress_pages: one launch each to
// copy the windows out, turn their sums into scores (clearing the sums), split them per
// (sequence, head) and quantize.
void GpuKvCache::zipcache_flush(const std::vector<int>& due) {
  const int d = shape_.head_dim, n_kv = shape_.n_kv_heads;
  const bool normalized = method_.metric == saliency::Metric::Normalized;
  Scratch& sc = *scratch_;
  // A window is flushed in the step it reaches the stream gap (it grows by one token a
  // step from empty), so every due window holds the same count: one grid for all.
  const int n = seqs_[size_t(due.front())].win_count;
  for (const int b : due) ZC_CHECK(seqs_[size_t(b)].win_count == n);
  const int n_sal = saliency::top_r_count(n, method_.saliency_ratio), n_reg = n - n_sal;
  for (const std::vector<int>& group : groups_of(due)) {
    const size_t S = group.size(), rows = size_t(n) * n_kv * d, picks = size_t(n_kv) * size_t(n);
    stage_group(group, rows);
    grow(sc.scores, picks * S);
    grow(sc.idx, picks * S);
    int32_t* sal = sc.idx.get();
    int32_t* reg = sal + S * size_t(n_kv) * size_t(n_sal);
    for (int layer = 0; layer < shape_.n_layers; ++layer) {
      read_windows(layer, int(S), n);
      float* sums = sums_.get() + size_t(layer) * lists_ * sums_cap_;
      check(detail::launch_window_scores_batch(sums, sums_cap_, sc.windows.get(), int(S), n_kv, n, normalized,
                                               sc.scores.get(), stream_),
            "window scores");
      // The NaN check waits for check_errors(): no synchronization per layer.
      top_r_split_deferred(sc.scores.get(), int(S) * n_kv, n, n_sal, sal, reg, sc.nan_score.get(), stream_);
      std::vector<detail::QuantizeJob> jobs;
      size_t words = 0;
      for (size_t i = 0; i < S; ++i) {
        const int b = group[i], page0 = seqs_[size_t(b)].win_first_page;
        for (int h = 0; h < n_kv; ++h) {
          for (int p = 0; p < pages_for(n); ++p) free_page(table_[table_index(layer, b * n_kv + h, page0 + p)]);
        }
        plan_set(layer, b, n_sal, method_.bits_high, page0);
        plan_set(layer, b, n_reg, method_.bits_low, page0 + pages_for(n_sal));
        jobs.push_back(quantize_job(layer, b, sc.wk.get() + rows * i, sc.wv.get() + rows * i, n_kv * d,
                                    {SetRef{sal + i * size_t(n_kv) * size_t(n_sal), n_sal, method_.bits_high, page0},
                                     SetRef{reg + i * size_t(n_kv) * size_t(n_reg), n_reg, method_.bits_low,
                                            page0 + pages_for(n_sal)}},
                                    false, &words));
      }
      flush_updates();  // the encode kernel reads the new pages' descriptors
      quantize_group(std::move(jobs), words);
    }
    for (const int b : group) {
      Seq& s = seqs_[size_t(b)];
      s.pages = s.win_first_page + pages_for(n_sal) + pages_for(n_reg);
      s.win_first_page = s.pages;
      s.win_count = 0;
    }
  }
}

}  // namespace zc::cuda
