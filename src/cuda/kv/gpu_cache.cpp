// The GPU KV cache (gpu_cache.h): setup, page books, prompts and accounting; decode
// steps are in gpu_cache_step.cpp, the quantized sets in gpu_cache_sets.cpp. Kernels in
// page_kernels.cu, quantization in cuda/quant/pack.cu, saliency in cuda/saliency.
#include "cuda/kv/gpu_cache.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "cuda/kv/gpu_cache_state.h"
#include "cuda/kv/page_launch.h"
#include "cuda/quant/pack_launch.h"
#include "cuda/saliency/probe_scores.h"
#include "cuda/saliency/top_r.h"

namespace zc::cuda {

using detail::GroupMode;
using detail::SeqRun;


void GpuKvCache::check_supported(const kv::MethodConfig& method, const GpuKvShape& shape) {
  const int d = shape.head_dim;
  if (shape.n_layers < 1 || shape.batch < 1 || shape.n_kv_heads < 1 || shape.n_heads % shape.n_kv_heads != 0) {
    fail("gpu kv cache: bad shape ({} layers, batch {}, {} heads, {} KV heads)", shape.n_layers, shape.batch,
         shape.n_heads, shape.n_kv_heads);
  }
  if (d != 64 && d != 128 && d != 256) fail("gpu kv cache: head_dim {} is not supported (64, 128 or 256)", d);
  if (shape.n_heads / shape.n_kv_heads > 8) {
    fail("gpu kv cache: {} query heads per KV head (at most 8 on the GPU)", shape.n_heads / shape.n_kv_heads);
  }
  if (shape.max_context < 1) fail("gpu kv cache: max_context {} must be positive", shape.max_context);
  if (shape.scale < 0.0f) fail("gpu kv cache: bad scale");
  const std::string name = method.label.empty() ? kv::method_name(method.method) : method.label;
  switch (method.method) {
    case kv::Method::Fp16:
      break;
    case kv::Method::Kivi:
      if (method.group != kPageTokens) {
        fail("gpu kv cache: {}: the GPU path quantizes KIVI in groups of 32 tokens (one page), not {}", name,
             method.group);
      }
      if (method.residual % method.group != 0) fail("gpu kv cache: {}: residual must be a multiple of the group", name);
      if (d % method.group != 0) fail("gpu kv cache: {}: head_dim {} is not a multiple of the group", name, d);
      if (d / method.group > 8) fail("gpu kv cache: {}: more than 8 value groups per token", name);
      if (method.kivi_bits != 2 && method.kivi_bits != 4) fail("gpu kv cache: {}: {} bits (2 or 4 on the GPU)", name, method.kivi_bits);
      break;
    case kv::Method::ZipCache: {
      const auto bad_bits = [](int b) { return b != 2 && b != 4; };
      if (bad_bits(method.bits_high) || bad_bits(method.bits_low)) {
        fail("gpu kv cache: {}: bits {}/{} (2 or 4 on the GPU)", name, method.bits_high, method.bits_low);
      }
      if (method.key_scheme != quant::Scheme::Channelwise) fail("gpu kv cache: {}: keys must be channelwise on the GPU", name);
      if (method.metric != saliency::Metric::Normalized && method.metric != saliency::Metric::Accumulated) {
        fail("gpu kv cache: {}: metric {} is not implemented on the GPU (normalized, accumulated)", name,
             saliency::metric_name(method.metric));
      }
      if (method.stats_block % kPageTokens != 0) {
        fail("gpu kv cache: {}: block={} must be a multiple of 32 tokens on the GPU", name, method.stats_block);
      }
      if (method.value_scheme == quant::Scheme::Groupwise &&
          (method.value_group < 1 || d % method.value_group != 0 || d / method.value_group > 8 || method.value_group % 2)) {
        fail("gpu kv cache: {}: value group {} must be even, divide head_dim {} into at most 8 groups", name,
             method.value_group, d);
      }
      if (!method.given_salient.empty()) fail("gpu kv cache: {}: given salient tokens are a CPU-only option", name);
      if (method.stream_gap < 1) fail("gpu kv cache: {}: gap must be positive", name);
      break;
    }
    default:
      fail("gpu kv cache: method {} is not implemented on the GPU (fp16, kivi2, kivi4, zipcache)", name);
  }
}

GpuKvCache::GpuKvCache(const kv::MethodConfig& method, const GpuKvShape& shape, KvPool& pool,
                       cudaStream_t stream)
    : method_(method), shape_(shape), pool_(pool), stream_(stream), scratch_(std::make_unique<Scratch>()) {
  check_supported(method, shape);
  track_ = method.method == kv::Method::ZipCache;  // the streaming window's saliency sums
  lists_ = shape.batch * shape.n_kv_heads;
  // Pages a list can need: the window plus sets that each waste at most one page.
  const int tokens_pages = pages_for(shape.max_context);
  cap_ = tokens_pages + 4;
  if (method.method == kv::Method::ZipCache) {
    const int chunks = shape.max_context / std::max(1, method.stream_gap) + 2;
    cap_ = tokens_pages + 2 * chunks + 4;
    sums_cap_ = method.stream_gap + kPageTokens;
  }
  const size_t entries = size_t(shape.n_layers) * size_t(lists_) * size_t(cap_);
  table_.assign(entries, KvPage{});
  table_dev_.resize(entries);
  check(cudaMemsetAsync(table_dev_.get(), 0, table_dev_.bytes(), stream_), "page table");
  std::vector<int32_t> starts(static_cast<size_t>(lists_), 0);
  for (int i = 0; i < lists_; ++i) starts[size_t(i)] = i * cap_;
  starts_dev_.upload(starts);
  ends_ = starts;
  ends_dev_.upload(ends_);
  if (track_) {
    sums_.resize(size_t(shape.n_layers) * size_t(lists_) * size_t(sums_cap_));
    check(cudaMemsetAsync(sums_.get(), 0, sums_.bytes(), stream_), "window sums");
    const size_t g = size_t(shape.n_heads / shape.n_kv_heads);
    win_scores_.resize(size_t(lists_) * g * size_t(window_scores_stride(sums_cap_)));
    win_ml_.resize(size_t(lists_) * g * 2);
    win_arrivals_.resize(size_t(lists_));
    check(cudaMemsetAsync(win_arrivals_.get(), 0, win_arrivals_.bytes(), stream_), "window arrivals");
  }
  seqs_.resize(size_t(shape.batch));
  for (auto& s : seqs_) s.blocks.resize(size_t(shape.n_layers) * size_t(shape.n_kv_heads));
  Scratch& sc = *scratch_;
  sc.err.resize(1);
  sc.err.fill_bytes(0xff);
  sc.nan_score.resize(1);
  sc.nan_score.fill_bytes(0xff);
  sc.runs.resize(size_t(shape.batch));
  sc.win.resize(size_t(shape.batch));
  sc.win_count.resize(size_t(shape.batch));
  sc.runs_h.assign(size_t(shape.batch), SeqRun{});
  sc.win_h.assign(size_t(shape.batch), SeqRun{});
  sc.win_count_h.assign(size_t(shape.batch), 0);
}

GpuKvCache::~GpuKvCache() {
  // Chunks go back to the pool; the device memory is the pool's.
  for (int s = 0; s < shape_.batch; ++s) {
    try {
      reset(s);
    } catch (...) {
    }
  }
}

int GpuKvCache::length(int seq) const { return seqs_[size_t(seq)].length; }

size_t GpuKvCache::table_index(int layer, int list, int page) const {
  return (size_t(layer) * size_t(lists_) + size_t(list)) * size_t(cap_) + size_t(page);
}

void GpuKvCache::set_page(int layer, int list, int page, const KvPage& pg) {
  if (page >= cap_) fail("gpu kv cache: a list needs more than {} pages", cap_);
  const size_t i = table_index(layer, list, page);
  table_[i] = pg;
  pending_.emplace_back(int64_t(i), pg);
}

void GpuKvCache::flush_updates() {
  if (pending_.empty()) return;
  // The last update of each slot wins; the kernel applies distinct slots in parallel.
  // A stable sort by slot keeps the order of each slot's updates (a prompt makes a
  // thousand or more per layer: a sorted vector, not a node per update). Updates that
  // already come in increasing slot order (a decode step's new pages: new_fp16_pages)
  // skip the sort: 147k of them at 574 sequences took 15 ms to sort on a 2-core host.
  const auto before = [](const auto& a, const auto& b) { return a.first < b.first; };
  if (!std::is_sorted(pending_.begin(), pending_.end(), before)) std::stable_sort(pending_.begin(), pending_.end(), before);
  std::vector<KvPage> pages;
  std::vector<int64_t> index;
  pages.reserve(pending_.size());
  index.reserve(pending_.size());
  for (size_t j = 0; j < pending_.size(); ++j) {
    if (j + 1 < pending_.size() && pending_[j + 1].first == pending_[j].first) continue;
    index.push_back(pending_[j].first), pages.push_back(pending_[j].second);
  }
  pending_.clear();
  Scratch& sc = *scratch_;
  grow(sc.upd_pages, pages.size());
  grow(sc.upd_index, index.size());
  check(cudaMemcpyAsync(sc.upd_pages.get(), pages.data(), pages.size() * sizeof(KvPage), cudaMemcpyHostToDevice, stream_),
        "page updates");
  check(cudaMemcpyAsync(sc.upd_index.get(), index.data(), index.size() * sizeof(int64_t), cudaMemcpyHostToDevice, stream_),
        "page update index");
  check(detail::launch_scatter_pages(sc.upd_pages.get(), sc.upd_index.get(), int(pages.size()), table_dev_.get(), stream_),
        "scatter pages");
  // New fp16 pages (new_fp16_page: empty, the cache's own) start as zeros, as kv_page.h
  // promises for the slots past ntok: the decode kernel reads all 32 slots of a page
  // (masking the padding's keys to -inf and weighing its values by p = 0), and a chunk
  // that held codes or a freed page may hold any bits, NaN among them. compute-
  // sanitizer's initcheck found these reads of never-written memory (docs/benchmarks.md,
  // session 19; on an H100 the leftover bits did not reach the outputs even without the
  // zeroing). Queued before any write into the pages, on the same stream.
  std::vector<uint32_t> fresh;
  for (const KvPage& pg : pages) {
    if (pg.values == PageValues::Fp16 && pg.ntok == 0 && pg.allocated == 1) fresh.push_back(pg.k);
  }
  if (!fresh.empty()) {
    grow(sc.upd_fresh, fresh.size());
    check(cudaMemcpyAsync(sc.upd_fresh.get(), fresh.data(), fresh.size() * sizeof(uint32_t), cudaMemcpyHostToDevice,
                          stream_),
          "new page units");
    check(detail::launch_zero_pages(sc.upd_fresh.get(), int(fresh.size()), pool_.base(),
                                    page_bytes(shape_.head_dim, 16, 16, 0), stream_),
          "zero new pages");
  }
}

uint32_t GpuKvCache::alloc_page(const PageSpec& spec) {
  const int ng = spec.values == PageValues::Fp16 ? 0 : shape_.head_dim / spec.vgroup;
  return pool_.alloc(page_bytes(shape_.head_dim, spec.kbits, spec.vbits, ng));
}

void GpuKvCache::free_page(const KvPage& pg) {
  const int ng = pg.values == PageValues::Fp16 ? 0 : shape_.head_dim / pg.vgroup;
  pool_.free(pg.k, page_bytes(shape_.head_dim, pg.kbits, pg.vbits, ng));
}

void GpuKvCache::new_fp16_page(int seq, int page, int layer) {
  const int d = shape_.head_dim;
  for (int h = 0; h < shape_.n_kv_heads; ++h) {
    KvPage pg;
    pg.k = alloc_page(PageSpec{});
    pg.v = pg.k + uint32_t(d * 32 * 2 / 16);
    pg.ntok = 0;
    pg.vgroup = uint16_t(d);
    pg.allocated = 1;  // reset() frees only these
    set_page(layer, seq * shape_.n_kv_heads + h, page, pg);
  }
}

void GpuKvCache::new_fp16_pages(const std::vector<std::pair<int, int>>& seq_pages) {
  // Slot (layer, sequence * n_kv + head, page) grows with the layer, then the sequence
  // and head (page < cap): this order hands flush_updates sorted updates.
  for (int layer = 0; layer < shape_.n_layers; ++layer) {
    for (const auto& [seq, page] : seq_pages) new_fp16_page(seq, page, layer);
  }
}

void GpuKvCache::prefill(int layer, int seq, const float* k, const float* v, int stride, int T,
                         const uint16_t* q_bf16, const uint16_t* k_bf16, const float* row_lse) {
  if (seq < 0 || seq >= shape_.batch) fail("gpu kv cache: sequence {} of a batch of {}", seq, shape_.batch);
  if (layer < 0 || layer >= shape_.n_layers) fail("gpu kv cache: layer {} of {}", layer, shape_.n_layers);
  Seq& s = seqs_[size_t(seq)];
  const int d = shape_.head_dim, n_kv = shape_.n_kv_heads;
  if (layer == 0) {
    if (s.length != 0 || s.prefill_T != 0) fail("gpu kv cache: sequence {} already holds tokens (reset it first)", seq);
    if (T < 1 || T > shape_.max_context) fail("gpu kv cache: prompt of {} tokens (1 .. {})", T, shape_.max_context);
    s.prefill_T = T;
  } else if (s.prefill_T != T) {
    fail("gpu kv cache: layer {} prefill of {} tokens after {} at layer 0", layer, T, s.prefill_T);
  }
  if (stride < n_kv * d) fail("gpu kv cache: row stride {} below {} KV values", stride, n_kv * d);
  Scratch& sc = *scratch_;
  KvPage* table = table_dev_.get() + table_index(layer, 0, 0);

  const auto write_window = [&](int first_row, int page0) {
    const int n = T - first_row;
    for (int p = 0; p < pages_for(n); ++p) new_fp16_page(seq, page0 + p, layer);
    flush_updates();
    sc.runs_h[size_t(seq)] = SeqRun{page0, 0};
    check(cudaMemcpyAsync(sc.runs.get() + seq, &sc.runs_h[size_t(seq)], sizeof(SeqRun), cudaMemcpyHostToDevice, stream_),
          "runs");
    check(detail::launch_write_fp16(k + size_t(first_row) * stride, v + size_t(first_row) * stride, n, n, seq, stride,
                                    n_kv, d, sc.runs.get(), table, cap_, pool_.base(), stream_),
          "write fp16 pages");
  };

  switch (method_.method) {
    case kv::Method::Fp16:
      write_window(0, 0);
      s.win_first_page = 0, s.win_count = T, s.pages = pages_for(T);
      break;
    case kv::Method::Kivi: {
      const int R = method_.residual, G = method_.group;
      const int window = T < R ? T : R + (T - R) % G;
      const int Q = T - window;
      plan_set(layer, seq, Q, method_.kivi_bits, 0);
      flush_updates();
      quantize_sets(layer, seq, k, v, stride, {SetRef{nullptr, Q, method_.kivi_bits, 0}}, /*via_fp16=*/true);
      if (window > 0) write_window(Q, Q / G);
      s.win_first_page = Q / G, s.win_count = window, s.pages = Q / G + pages_for(window);
      break;
    }
    default: {  // ZipCache
      if (q_bf16 == nullptr || k_bf16 == nullptr) fail("gpu kv cache: zipcache prefill needs the bf16 q and k");
      if (layer == 0) {
        std::vector<int32_t> probes;
        if (method_.probe_all_rows) {
          probes.resize(size_t(T));
          std::iota(probes.begin(), probes.end(), 0);
        } else {
          const auto rows = saliency::select_probes(T, method_.probes);
          probes.assign(rows.begin(), rows.end());
        }
        sc.probes.upload(probes);
      }
      grow(sc.scores, size_t(n_kv) * size_t(T));
      ProbeScoreShape ps;
      ps.L = T, ps.n_heads = shape_.n_heads, ps.n_kv_heads = n_kv, ps.head_dim = d, ps.scale = shape_.scale;
      probe_scores(ps, q_bf16, k_bf16, sc.probes.get(), int(sc.probes.size()), method_.metric, method_.norm,
                   sc.scores.get(), sc.probe_ws, stream_, row_lse);
      zipcache_split(layer, seq, k, v, stride, T, sc.scores.get(), 0);
      const int n_sal = saliency::top_r_count(T, method_.saliency_ratio);
      s.pages = pages_for(n_sal) + pages_for(T - n_sal);
      s.win_first_page = s.pages, s.win_count = 0;
      break;
    }
  }
  if (layer == shape_.n_layers - 1) {
    s.length = T;
    s.prefill_T = 0;
    if (track_) {
      for (int l = 0; l < shape_.n_layers; ++l) {
        check(cudaMemsetAsync(sums_.get() + (size_t(l) * lists_ + size_t(seq) * n_kv) * sums_cap_, 0,
                              size_t(n_kv) * sums_cap_ * sizeof(float), stream_),
              "window sums");
      }
    }
    upload_ends();
  }
}
void GpuKvCache::upload_ends() {
  bool changed = false;
  for (int b = 0; b < shape_.batch; ++b) {
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      const int list = b * shape_.n_kv_heads + h;
      const int32_t end = list * cap_ + seqs_[size_t(b)].pages;
      changed |= ends_[size_t(list)] != end;
      ends_[size_t(list)] = end;
    }
  }
  if (!changed) return;  // page counts change every 32 tokens, not every step
  check(cudaMemcpyAsync(ends_dev_.get(), ends_.data(), ends_.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream_),
        "page counts");
}

kv::MemoryReport GpuKvCache::memory(int seq) const {
  kv::MemoryReport r;
  const int d = shape_.head_dim, n_kv = shape_.n_kv_heads;
  for (int b = 0; b < shape_.batch; ++b) {
    if (seq >= 0 && b != seq) continue;
    const Seq& s = seqs_[size_t(b)];
    r.tokens_seen += size_t(s.length);
    r.tokens_kept += size_t(s.length);
    r.fp16_bytes += size_t(2) * 2 * size_t(n_kv) * size_t(d) * size_t(s.length) * size_t(shape_.n_layers);
    for (int layer = 0; layer < shape_.n_layers; ++layer) {
      for (int h = 0; h < n_kv; ++h) {
        for (int p = 0; p < s.pages; ++p) {
          const KvPage& pg = table_[table_index(layer, b * n_kv + h, p)];
          if (pg.kbits == 16) {
            r.window_bytes += page_bytes(d, 16, 16, 0);
          } else {
            r.code_bytes += size_t(d) * 4 * (size_t(pg.kbits) + size_t(pg.vbits));
            r.param_bytes += size_t(128) * size_t(d / pg.vgroup);
          }
        }
        for (const auto& blk : s.blocks[size_t(layer) * n_kv + size_t(h)]) r.param_bytes += pool_round(blk.second);
      }
    }
    if (track_) r.metadata_bytes += size_t(shape_.n_layers) * n_kv * size_t(sums_cap_) * sizeof(float);
  }
  return r;
}

void GpuKvCache::reset(int seq) {
  release_ready_page(seq);
  Seq& s = seqs_[size_t(seq)];
  const int n_kv = shape_.n_kv_heads;
  for (int layer = 0; layer < shape_.n_layers; ++layer) {
    for (int h = 0; h < n_kv; ++h) {
      for (int p = 0; p < s.pages; ++p) {
        KvPage& pg = table_[table_index(layer, seq * n_kv + h, p)];
        if (pg.allocated == 1) free_page(pg);
        pg = KvPage{};
      }
      auto& blocks = s.blocks[size_t(layer) * n_kv + size_t(h)];
      for (const auto& blk : blocks) pool_.free(blk.first, blk.second);
      blocks.clear();
    }
  }
  s.length = s.pages = s.win_first_page = s.win_count = s.prefill_T = 0;
}

void GpuKvCache::check_errors() {
  unsigned long long e = 0, nan_score = 0;
  check(cudaMemcpyAsync(&e, scratch_->err.get(), sizeof(e), cudaMemcpyDeviceToHost, stream_), "error flag");
  check(cudaMemcpyAsync(&nan_score, scratch_->nan_score.get(), sizeof(nan_score), cudaMemcpyDeviceToHost, stream_),
        "saliency NaN flag");
  check(cudaStreamSynchronize(stream_), "kv cache");
  if (nan_score != std::numeric_limits<unsigned long long>::max()) {
    scratch_->nan_score.fill_bytes(0xff);
    fail("gpu kv cache: a ZipCache saliency score is NaN: non-finite queries or keys reached the probe pass");
  }
  if (e != std::numeric_limits<unsigned long long>::max()) {
    const int cols = shape_.n_kv_heads * shape_.head_dim;
    const unsigned long long index = e >> 2;
    scratch_->err.fill_bytes(0xff);
    if ((e & 3u) == detail::kNonFinite) {
      fail("gpu kv cache: a non-finite key or value (KV head {}, channel {}) reached the quantizer",
           (index % cols) / unsigned(shape_.head_dim), index % unsigned(shape_.head_dim));
    }
    fail("gpu kv cache: a key or value range is outside what fp16 parameters can hold");
  }
}

}  // namespace zc::cuda
