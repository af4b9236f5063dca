// The GPU KV cache's decode steps (gpu_cache.h): begin_step's compressions and new
// window pages, the append and attention of each layer, end_step's pages made ahead,
// and the CUDA graph key of a step's launches.
#include <limits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "cuda/kv/gpu_cache.h"
#include "cuda/kv/gpu_cache_state.h"
#include "cuda/kv/page_launch.h"

namespace zc::cuda {

using detail::SeqRun;

void GpuKvCache::begin_step() {
  Scratch& sc = *scratch_;
  // First the compressions, of every due sequence at once (kivi_compress_pages,
  // zipcache_flush); then the sequences whose token starts a window page get it, all
  // layers at once after the loop (new_fp16_pages), unless end_step made it already.
  std::vector<int> due;
  for (int b = 0; b < shape_.batch; ++b) {
    const Seq& s = seqs_[size_t(b)];
    if (s.length < 1) fail("gpu kv cache: decode step for sequence {} before its prompt", b);
    if (s.length >= shape_.max_context) {
      fail("gpu kv cache: sequence {} is full ({} tokens, the context limit)", b, shape_.max_context);
    }
    if ((method_.method == kv::Method::Kivi && s.win_count + 1 >= method_.residual + method_.group) ||
        (method_.method == kv::Method::ZipCache && s.win_count >= method_.stream_gap)) {
      due.push_back(b);
    }
  }
  if (!due.empty()) {
    if (method_.method == kv::Method::Kivi) kivi_compress_pages(due);
    if (method_.method == kv::Method::ZipCache) zipcache_flush(due);
  }
  std::vector<std::pair<int, int>> grown;
  for (int b = 0; b < shape_.batch; ++b) {
    Seq& s = seqs_[size_t(b)];
    const int page = s.win_first_page + s.win_count / kPageTokens, slot = s.win_count % kPageTokens;
    if (s.ready_page >= 0 && (slot != 0 || s.ready_page != page)) release_ready_page(b);  // not expected
    if (slot == 0) {
      if (s.ready_page != page) grown.emplace_back(b, page);
      s.pages = page + 1;
    }
    s.ready_page = -1;
    sc.runs_h[size_t(b)] = SeqRun{page, slot};
    sc.win_h[size_t(b)] = SeqRun{s.win_first_page, 0};
    sc.win_count_h[size_t(b)] = s.win_count + 1;
  }
  new_fp16_pages(grown);
  flush_updates();
  const size_t B = size_t(shape_.batch);
  check(cudaMemcpyAsync(sc.runs.get(), sc.runs_h.data(), B * sizeof(SeqRun), cudaMemcpyHostToDevice, stream_), "runs");
  check(cudaMemcpyAsync(sc.win.get(), sc.win_h.data(), B * sizeof(SeqRun), cudaMemcpyHostToDevice, stream_), "window");
  check(cudaMemcpyAsync(sc.win_count.get(), sc.win_count_h.data(), B * sizeof(int32_t), cudaMemcpyHostToDevice, stream_),
        "window counts");
  upload_ends();
}

void GpuKvCache::append(int layer, const float* k, const float* v, int stride) {
  write_step(layer, k, v, stride, detail::AppendRope{});
}

void GpuKvCache::append_rotated(int layer, float* q, int q_stride, const float* k, const float* v, int stride,
                                const int32_t* positions, const float* inv_freq) {
  if (q == nullptr || positions == nullptr || inv_freq == nullptr) fail("gpu cache: append_rotated without q, positions or inv_freq");
  if (q_stride < shape_.n_heads * shape_.head_dim) fail("gpu cache: q stride {} below {} query values", q_stride, shape_.n_heads * shape_.head_dim);
  detail::AppendRope rope;
  rope.q = q, rope.q_stride = q_stride, rope.g = shape_.n_heads / shape_.n_kv_heads;
  rope.positions = positions, rope.inv_freq = inv_freq;
  write_step(layer, k, v, stride, rope);
}

void GpuKvCache::write_step(int layer, const float* k, const float* v, int stride, const detail::AppendRope& rope) {
  KvPage* table = table_dev_.get() + table_index(layer, 0, 0);
  check(detail::launch_write_fp16(k, v, shape_.batch, 1, 0, stride, shape_.n_kv_heads, shape_.head_dim,
                                  scratch_->runs.get(), table, cap_, pool_.base(), stream_, rope),
        "append");
}

PagedKvView GpuKvCache::view(int layer) const {
  PagedKvView v;
  v.head_dim = shape_.head_dim;
  v.lists = lists_;
  v.max_pages = 0;
  v.min_pages = std::numeric_limits<int>::max();
  for (const Seq& s : seqs_) v.max_pages = std::max(v.max_pages, s.pages), v.min_pages = std::min(v.min_pages, s.pages);
  v.max_value_groups = method_.method == kv::Method::Kivi ? shape_.head_dim / method_.group
                       : (method_.method == kv::Method::ZipCache && method_.value_scheme == quant::Scheme::Groupwise)
                           ? shape_.head_dim / method_.value_group
                           : 1;
  v.pool = pool_.base();
  v.pages = table_dev_.get() + table_index(layer, 0, 0);
  v.starts = starts_dev_.get();
  v.ends = ends_dev_.get();
  v.quantized = method_.method != kv::Method::Fp16;
  v.page_key_blocks = method_.method == kv::Method::Kivi;  // a key block per 32 tokens
  return v;
}

void GpuKvCache::attend(int layer, const float* q, float* out, int q_stride, uint16_t* out_bf16) {
  DecodeShape ds = decode_shape();
  ds.q_stride = q_stride > 0 ? q_stride : shape_.n_heads * shape_.head_dim;
  if (!track_) {
    decode_attention(ds, view(layer), q, out, decode_ws_, 0, stream_, nullptr, out_bf16);
    return;
  }
  // ZipCache: each window token's probability is added to its saliency sum by the
  // attention's merge (WindowSums).
  WindowSums window;
  window.first_page = &scratch_->win.get()->page0;
  window.first_page_stride = int(sizeof(SeqRun) / sizeof(int32_t));
  window.count = scratch_->win_count.get();
  window.sums = sums_.get() + size_t(layer) * lists_ * sums_cap_;
  window.scores = win_scores_.get();
  window.ml = win_ml_.get(), window.arrivals = win_arrivals_.get();
  window.cap = sums_cap_;
  decode_attention(ds, view(layer), q, out, decode_ws_, 0, stream_, nullptr, out_bf16, &window);
}

DecodeShape GpuKvCache::decode_shape() const {
  DecodeShape ds;
  ds.batch = shape_.batch, ds.n_heads = shape_.n_heads, ds.n_kv_heads = shape_.n_kv_heads, ds.head_dim = shape_.head_dim;
  ds.scale = shape_.scale;
  return ds;
}

long long GpuKvCache::launch_key() const {
  // Every layer's lists have the same lengths, so layer 0's view stands for all. A page
  // growth used to change the key (the longest list) and cost an eager step and a new
  // capture every 32 tokens even where the plan did not change.
  return decode_launch_key(decode_shape(), view(0));
}

void GpuKvCache::end_step() {
  for (Seq& s : seqs_) ++s.length, ++s.win_count;
  // The next step's new window pages, made now while the GPU runs this step (the host
  // work of a page growth, ~10 ms for 150k pages at 597 sequences on an H100's host,
  // used to stall the next step; docs/benchmarks.md, session 17). Only for sequences
  // whose next begin_step compresses nothing (a compression moves the window), and the
  // table updates queue behind this step's launches, which read no slot past their
  // lists' ends; the page counts (upload_ends) change in begin_step.
  std::vector<std::pair<int, int>> ahead;
  for (int b = 0; b < shape_.batch; ++b) {
    Seq& s = seqs_[size_t(b)];
    if (s.length < 1 || s.length >= shape_.max_context || s.ready_page >= 0) continue;
    if (method_.method == kv::Method::Kivi && s.win_count + 1 >= method_.residual + method_.group) continue;
    if (method_.method == kv::Method::ZipCache && s.win_count >= method_.stream_gap) continue;
    if (s.win_count % kPageTokens != 0) continue;
    s.ready_page = s.win_first_page + s.win_count / kPageTokens;
    ahead.emplace_back(b, s.ready_page);
  }
  new_fp16_pages(ahead);
  flush_updates();
}

void GpuKvCache::release_ready_page(int seq) {
  Seq& s = seqs_[size_t(seq)];
  if (s.ready_page < 0) return;
  for (int layer = 0; layer < shape_.n_layers; ++layer) {
    for (int h = 0; h < shape_.n_kv_heads; ++h) {
      KvPage& pg = table_[table_index(layer, seq * shape_.n_kv_heads + h, s.ready_page)];
      if (pg.allocated == 1) free_page(pg);
      pg = KvPage{};  // its device slot lies past the list's end: never read
    }
  }
  s.ready_page = -1;
}

}  // namespace zc::cuda
