// Building the paged GPU layout of kv_page.h on the host, from what the CPU caches
// hold (quant::QuantizedMatrix blocks and fp16 rows), and uploading it. Used by tests
// (the byte-for-byte reference of the GPU cache's own page writer, quantize_pages.cu)
// and benchmarks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuda/core/device.h"
#include "cuda/kv/kv_page.h"
#include "quant/quantizer.h"

namespace zc::cuda {

class PagedKvBuilder {
 public:
  explicit PagedKvBuilder(int head_dim);  // 64, 128 or 256; throws zc::Error otherwise

  // Starts the page list of the next (sequence, KV head) pair. Decode attention reads
  // list b * n_kv_heads + h for sequence b, KV head h.
  void begin_list();
  // A quantized block (ZipCache / KIVI / MiKV storage): keys channelwise at 2 or 4 bits;
  // values tokenwise, CSTQ or groupwise (even group dividing d, at most 8 groups) at 2
  // or 4 bits; same rows, d columns. Throws zc::Error naming the unsupported field.
  void add_block(const quant::QuantizedMatrix& k, const quant::QuantizedMatrix& v);
  // fp16 rows: row r of keys at k + r * stride (d halves), same for v.
  void add_fp16(const uint16_t* k, const uint16_t* v, size_t stride, int rows);
  // Appends `copies - 1` copies of everything built so far (lists, pages and bytes),
  // so that a benchmark gets distinct memory per pair without re-converting.
  void replicate(int copies);

  int head_dim() const { return d_; }
  int lists() const { return static_cast<int>(offsets_.size()) - 1; }
  int max_pages() const;                 // longest list
  int min_pages() const;                 // shortest list
  int max_value_groups() const { return max_groups_; }
  bool quantized() const { return blocks_ > 0; }
  // Every quantized block fits one page (KIVI's 32-token blocks): PagedKvView::page_key_blocks.
  bool page_key_blocks() const { return blocks_ > 0 && !multi_page_block_; }
  size_t tokens(int list) const;         // valid tokens of a list
  const std::vector<uint8_t>& pool() const { return pool_; }
  const std::vector<KvPage>& pages() const { return pages_; }
  const std::vector<int32_t>& offsets() const { return offsets_; }  // lists + 1 entries

 private:
  uint32_t alloc(size_t bytes);  // zeroed, 16-byte aligned; returns the 16-byte unit
  void check_list(const char* where) const;

  int d_;
  int max_groups_ = 1;
  size_t blocks_ = 0;
  bool multi_page_block_ = false;
  std::vector<uint8_t> pool_;
  std::vector<KvPage> pages_;
  std::vector<int32_t> offsets_{0};
};

// What decode attention reads: page descriptors of `lists` (sequence, KV head) pairs,
// list i being pages[starts[i] .. ends[i]) (device pointers), their codes in pool.
// Built by DevicePagedKv::view() or by the GPU cache (cuda/kv/gpu_cache.h).
struct PagedKvView {
  int head_dim = 0, lists = 0;
  int max_pages = 0;         // longest list (sizes the splits)
  int min_pages = 0;         // shortest list (0 is an error for decode attention)
  int max_value_groups = 1;  // most value groups of any page (sizes shared memory)
  const uint8_t* pool = nullptr;
  const KvPage* pages = nullptr;
  const int32_t* starts = nullptr;
  const int32_t* ends = nullptr;
  // Whether any page holds codes (false: fp16 pages only, which the tensor-core kernel
  // then accumulates without per-block value sums).
  bool quantized = true;
  // Whether every quantized page is a key block of its own (KIVI): the tensor-core kernel
  // then copies each page's key parameters with its codes, ahead, instead of waiting for
  // them when it folds the query (decode_mma.cuh).
  bool page_key_blocks = false;
};

// The built layout in device memory.
struct DevicePagedKv {
  int head_dim = 0, lists = 0, max_pages = 0, min_pages = 0, max_value_groups = 1;
  bool quantized = true, page_key_blocks = false;
  DeviceBuffer<uint8_t> pool;
  DeviceBuffer<KvPage> pages;
  DeviceBuffer<int32_t> offsets;

  // Bytes a decode step must read: the whole pool plus the page descriptors and offsets.
  size_t bytes() const { return pool.bytes() + pages.bytes() + offsets.bytes(); }

  // offsets holds lists + 1 entries: list i runs from offsets[i] to offsets[i + 1].
  PagedKvView view() const {
    return {head_dim, lists, max_pages, min_pages, max_value_groups, pool.get(), pages.get(),
            offsets.get(), lists > 0 ? offsets.get() + 1 : nullptr, quantized, page_key_blocks};
  }
};

DevicePagedKv upload(const PagedKvBuilder& b);

}  // namespace zc::cuda
