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
  const int d = shape_.head_dim, n_kv = shape_.n_kv_heads;
  const bool kivi = method_.method == kv::Method::Kivi;
  detail::QuantizeJob job;
  job.k = k, job.v = v, job.stride = stride, job.n_kv = n_kv, job.d = d;
  job.vgroup = kivi ? method_.group : method_.value_scheme == quant::Scheme::Groupwise ? method_.value_group : d;
  job.cstq = !kivi && method_.value_scheme == quant::Scheme::Cstq;
  job.via_fp16 = via_fp16;
  job.table = table_dev_.get() + table_index(layer, 0, 0);
  job.cap = cap_, job.seq = seq, job.pool = pool_.base();
  Scratch& sc = *scratch_;
  job.err = sc.err.get();
  job.n_sets = 0;
  size_t words = 0;
  for (const SetRef& r : sets) {
    if (r.n == 0) continue;
    detail::QuantizeSet& q = job.sets[job.n_sets++];
    q.idx = r.idx, q.idx_stride = r.n, q.n = r.n, q.bits = r.bits, q.page0 = r.page0;
    // Keys' statistics per page (KIVI), per stats_block tokens, or over the whole set.
    q.block_rows = kivi ? kPageTokens : method_.stats_block > 0 ? std::min(r.n, method_.stats_block) : r.n;
    words += detail::quantize_stats_words(q.n, q.block_rows, n_kv, d);
  }
  if (job.n_sets == 0) return;
  grow(sc.qstats, words);
  check(detail::launch_quantize_sets(job, sc.qstats.get(), stream_), "quantize into pages");
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



// KIVI's streaming rule: the window's oldest page (G = 32 tokens) becomes a quantized
// page in its place, at every layer. In phases, as zipcache_flush: every layer's page
// copied out (its old page freed once the copy is queued), every layer planned, the
// table uploaded once, every layer quantized.
void GpuKvCache::kivi_compress_page(int seq) {
  Seq& s = seqs_[size_t(seq)];
  const int d = shape_.head_dim, n_kv = shape_.n_kv_heads, page = s.win_first_page, L = shape_.n_layers;
  Scratch& sc = *scratch_;
  const size_t rows = size_t(kPageTokens) * n_kv * d;
  grow(sc.wk, rows * L);
  grow(sc.wv, rows * L);
  for (int layer = 0; layer < L; ++layer) {
    const KvPage* table = table_dev_.get() + table_index(layer, 0, 0);
    check(detail::launch_read_fp16(table, cap_, seq, n_kv, d, SeqRun{page, 0}, kPageTokens, pool_.base(),
                                   sc.wk.get() + rows * layer, sc.wv.get() + rows * layer, stream_),
          "read window");
    for (int h = 0; h < n_kv; ++h) free_page(table_[table_index(layer, seq * n_kv + h, page)]);
  }
  for (int layer = 0; layer < L; ++layer) plan_set(layer, seq, kPageTokens, method_.kivi_bits, page);
  flush_updates();
  for (int layer = 0; layer < L; ++layer) {
    quantize_sets(layer, seq, sc.wk.get() + rows * layer, sc.wv.get() + rows * layer, n_kv * d,
                  {SetRef{nullptr, kPageTokens, method_.kivi_bits, page}});
  }
  s.win_first_page += 1;
  s.win_count -= kPageTokens;
}

// ZipCache's streaming chunk (SPEC.md section 4, "Decode (streaming)"): the window's
// tokens, split by the attention they received (normalized by the n - j queries that
// saw token j), quantized like a prompt; the window starts empty after them.
// In three phases over the layers, so that the page table is uploaded once per chunk
// instead of once per layer (each upload: a sort, two copies from pageable memory and
// a scatter launch; the chunk of 516 sequences took ~1 s with 32 per sequence): every
// layer's window is copied out and split first (the old pages are free once their copy
// is queued: later kernels of the stream write the new pages), then every layer's sets
// are planned, the table goes up once, and every layer is quantized.
void GpuKvCache::zipcache_flush(int seq) {
  Seq& s = seqs_[size_t(seq)];
  const int d = shape_.head_dim, n_kv = shape_.n_kv_heads, n = s.win_count, page0 = s.win_first_page;
  const int L = shape_.n_layers;
  const int n_sal = saliency::top_r_count(n, method_.saliency_ratio), n_reg = n - n_sal;
  Scratch& sc = *scratch_;
  const size_t rows = size_t(n) * n_kv * d, picks = size_t(n_kv) * size_t(n);
  grow(sc.wk, rows * L);
  grow(sc.wv, rows * L);
  grow(sc.scores, picks * L);
  grow(sc.idx, picks * L);
  const bool normalized = method_.metric == saliency::Metric::Normalized;
  for (int layer = 0; layer < L; ++layer) {
    const KvPage* table = table_dev_.get() + table_index(layer, 0, 0);
    float* wk = sc.wk.get() + rows * layer;
    float* wv = sc.wv.get() + rows * layer;
    float* scores = sc.scores.get() + picks * layer;
    int32_t* sal = sc.idx.get() + picks * layer;
    check(detail::launch_read_fp16(table, cap_, seq, n_kv, d, SeqRun{page0, 0}, n, pool_.base(), wk, wv, stream_),
          "read window");
    float* sums = sums_.get() + size_t(layer) * lists_ * sums_cap_;
    check(detail::launch_window_scores(sums, sums_cap_, seq, n_kv, n, normalized, scores, stream_), "window scores");
    check(cudaMemsetAsync(sums + size_t(seq) * n_kv * sums_cap_, 0, size_t(n_kv) * sums_cap_ * sizeof(float), stream_),
          "window sums");
    // The NaN check waits for check_errors(): no synchronization per layer.
    top_r_split_deferred(scores, n_kv, n, n_sal, sal, sal + size_t(n_kv) * size_t(n_sal), sc.nan_score.get(), stream_);
    for (int h = 0; h < n_kv; ++h) {
      for (int p = 0; p < pages_for(n); ++p) free_page(table_[table_index(layer, seq * n_kv + h, page0 + p)]);
    }
  }
  for (int layer = 0; layer < L; ++layer) {
    plan_set(layer, seq, n_sal, method_.bits_high, page0);
    plan_set(layer, seq, n_reg, method_.bits_low, page0 + pages_for(n_sal));
  }
  flush_updates();
  for (int layer = 0; layer < L; ++layer) {
    const int32_t* sal = sc.idx.get() + picks * layer;
    quantize_sets(layer, seq, sc.wk.get() + rows * layer, sc.wv.get() + rows * layer, n_kv * d,
                  {SetRef{sal, n_sal, method_.bits_high, page0},
                   SetRef{sal + size_t(n_kv) * size_t(n_sal), n_reg, method_.bits_low, page0 + pages_for(n_sal)}});
  }
  s.pages = page0 + pages_for(n_sal) + pages_for(n_reg);
  s.win_first_page = s.pages;
  s.win_count = 0;
}


}  // namespace zc::cuda
