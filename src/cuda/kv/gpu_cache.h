// The KV cache of a batch of sequences on the GPU (issue 4; SPEC.md sections 2-4),
// for every layer of a model: fp16, KIVI and ZipCache, stored as pages (kv_page.h)
// carved from a KvPool and read by decode_attention.
//
// Every layer and KV head of a sequence has the same page structure (which tokens
// are quantized, at which bits, depends only on counts), so the host keeps one plan
// per sequence and a descriptor table KvPage[layers][lists][cap] (list = sequence *
// n_kv + head) mirrored on the device. Kernels fill the pages; the host only
// allocates, writes descriptors and uploads what changed.
//  - fp16: every token in fp16 pages.
//  - KIVI: the same streaming rule as kv/kivi_cache.cpp: tokens enter an fp16 window;
//    while it holds R + G tokens its oldest G (one page, G = 32 here) are quantized
//    (keys channelwise over the page, values groupwise) in place of that page.
//  - ZipCache: the prompt is split per KV head by probe saliency (cuda/saliency) into
//    salient (bits_high) and regular (bits_low) sets, each quantized with channelwise
//    keys and CSTQ values (statistics over the set, or over stats_block tokens); decode
//    tokens gather in an fp16 window with the attention they receive, and every
//    stream_gap tokens the window is split and quantized the same way (never again).
// One stream; calls are asynchronous except where a method says it synchronizes.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

#include "cuda/kv/decode_attention.h"
#include "cuda/kv/kv_pool.h"
#include "kv/cache.h"
#include "kv/method.h"

namespace zc::cuda {

namespace detail {
struct AppendRope;   // page_launch.h
struct QuantizeJob;  // page_launch.h
}  // namespace detail

struct GpuKvShape {
  int n_layers = 0, batch = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int max_context = 0;  // most tokens a sequence may hold
  float scale = 0.0f;   // softmax scale (0: 1 / sqrt(head_dim))
};

class GpuKvCache {
 public:
  // Throws zc::Error for methods or options the GPU path does not support (H2O, MiKV,
  // fp32, KIVI groups other than 32, recent/random metrics, non-channelwise keys,
  // stats_block not a multiple of 32) and for shapes decode attention cannot serve.
  GpuKvCache(const kv::MethodConfig& method, const GpuKvShape& shape, KvPool& pool,
             cudaStream_t stream = nullptr);
  // The constructor's checks of the method and the shape alone (no GPU needed): lets a
  // command choose a device before it allocates anything.
  static void check_supported(const kv::MethodConfig& method, const GpuKvShape& shape);
  ~GpuKvCache();
  GpuKvCache(const GpuKvCache&) = delete;
  GpuKvCache& operator=(const GpuKvCache&) = delete;

  const GpuKvShape& shape() const { return shape_; }
  const kv::MethodConfig& method() const { return method_; }
  int length(int seq) const;

  // The prompt of sequence `seq` (which must be empty) at one layer; call for layers
  // 0, 1, ... in order with the same T. k, v: T rows of `stride` floats (KV head h at
  // + h * d), keys after RoPE. ZipCache also needs q_bf16 [T][n_heads][d] and k_bf16
  // [T][n_kv][d] (the probe pass), and may pass row_lse [T][n_heads], the rows' log-sum-exp
  // from prefill_attention (probe_scores then skips its row kernel). After the last layer
  // the sequence holds T tokens.
  void prefill(int layer, int seq, const float* k, const float* v, int stride, int T,
               const uint16_t* q_bf16 = nullptr, const uint16_t* k_bf16 = nullptr,
               const float* row_lse = nullptr);

  // A decode step appends one token to every sequence: begin_step() makes room (KIVI
  // and ZipCache compress here) and uploads this step's page table changes; then per
  // layer append() writes the token's k/v (rows of `stride` floats, one per sequence)
  // and attend() computes attention for q [batch][n_heads][d] into out (fp32) and/or
  // out_bf16 (bf16 bits, what the output projection reads; either may be null, not
  // both); end_step() closes the step (after the step's launches: it makes the next
  // step's new window pages while the GPU runs this one). Every sequence must hold at
  // least one token.
  void begin_step();
  void append(int layer, const float* k, const float* v, int stride);
  // append() with RoPE fused in (a decode step's rotation, one launch instead of two):
  // k (unrotated) is rotated on its way into the pages and the query rows q [batch]
  // (n_heads heads, q_stride floats apart) are rotated in place, each row at the
  // position its sequence is at; inv_freq: device [head_dim / 2] (model/rope.h).
  void append_rotated(int layer, float* q, int q_stride, const float* k, const float* v, int stride,
                      const int32_t* positions, const float* inv_freq);
  void attend(int layer, const float* q, float* out, int q_stride = 0, uint16_t* out_bf16 = nullptr);
  void end_step();

  // Storage of sequence `seq` (or all with -1), counted from the chunks it holds in
  // the pool: fp16_bytes is what an fp16 cache of the same tokens takes. A window page
  // end_step() made ahead for the next token holds no token yet and is not counted
  // (the pool's used() counts it).
  kv::MemoryReport memory(int seq = -1) const;
  // Frees everything sequence `seq` holds; it can take a new prompt afterwards.
  void reset(int seq);

  // Throws zc::Error if a quantization kernel met a non-finite key or value, or a
  // ZipCache split a NaN saliency score, since the last check (synchronizes the stream;
  // nothing else in prefill or decode does).
  void check_errors();

  // What the launches of append()/attend() depend on besides device memory the cache
  // updates itself (decode attention's plan, decode_launch_key): a CUDA graph captured
  // for one key replays correctly for every step with the same key.
  long long launch_key() const;

 private:
  struct PageSpec;
  struct Seq;
  struct Scratch;

  size_t table_index(int layer, int list, int page) const;
  void set_page(int layer, int list, int page, const KvPage& pg);
  void flush_updates();
  void release_ready_page(int seq);  // frees end_step()'s page made ahead, if any
  uint32_t alloc_page(const PageSpec& spec);
  void free_page(const KvPage& pg);
  void new_fp16_page(int seq, int page, int only_layer);
  // A decode step's new window pages, (sequence, page) in sequence order, for every
  // layer and KV head: set layer by layer, so the table updates arrive in slot order.
  void new_fp16_pages(const std::vector<std::pair<int, int>>& seq_pages);
  // The step's k/v rows into their fp16 window pages (append, append_rotated).
  void write_step(int layer, const float* k, const float* v, int stride, const detail::AppendRope& rope);
  struct SetRef {  // a quantized set: rows idx[h * n + r] (null: r), r < n
    const int32_t* idx;
    int n, bits, page0;
  };
  void quantize_sets(int layer, int seq, const float* k, const float* v, int stride,
                     std::initializer_list<SetRef> sets, bool via_fp16 = false);
  // The job quantize_sets launches (its statistics words added to *words).
  detail::QuantizeJob quantize_job(int layer, int seq, const float* k, const float* v, int stride,
                                   std::initializer_list<SetRef> sets, bool via_fp16, size_t* words) const;
  void plan_set(int layer, int seq, int n, int bits, int page0);
  void zipcache_split(int layer, int seq, const float* k, const float* v, int stride, int n,
                      const float* scores_dev, int page0);
  // A step's maintenance of every due sequence at once (gpu_cache_sets.cpp).
  void kivi_compress_pages(const std::vector<int>& due);
  void zipcache_flush(const std::vector<int>& due);
  // For a group of due sequences: their (seq, win_first_page) uploaded, scratch k/v for
  // rows floats per sequence; then per layer their first n window tokens read into it,
  // and their quantize jobs (with `words` of statistics) launched.
  void stage_group(const std::vector<int>& group, size_t rows);
  void read_windows(int layer, int n_seqs, int n);
  void quantize_group(std::vector<detail::QuantizeJob> jobs, size_t words);
  void upload_ends();
  PagedKvView view(int layer) const;
  DecodeShape decode_shape() const;  // attend()'s shape (q_stride left 0)

  kv::MethodConfig method_;
  GpuKvShape shape_;
  KvPool& pool_;
  cudaStream_t stream_;
  int lists_ = 0, cap_ = 0, sums_cap_ = 0;
  bool track_ = false;  // ZipCache: window tokens accumulate the attention they receive
  std::vector<Seq> seqs_;
  std::vector<KvPage> table_;                  // host mirror [layers][lists][cap]
  std::vector<std::pair<int64_t, KvPage>> pending_;  // descriptor updates not yet uploaded
  DeviceBuffer<KvPage> table_dev_;
  DeviceBuffer<int32_t> starts_dev_, ends_dev_;
  std::vector<int32_t> ends_;
  DeviceBuffer<float> sums_;                   // [layers][lists][sums_cap]
  DeviceBuffer<float> win_scores_;             // [lists][g][window_scores_stride(sums_cap)]: decode attention's scratch
  DeviceBuffer<float> win_ml_;                 // [lists][g][2]: ditto
  DeviceBuffer<unsigned> win_arrivals_;        // [lists]: ditto, zeroed once
  std::unique_ptr<Scratch> scratch_;
  DecodeWorkspace decode_ws_;
};

}  // namespace zc::cuda
