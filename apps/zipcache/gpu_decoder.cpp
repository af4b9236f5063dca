// The GPU decoder of `zipcache generate --device cuda` (gpu_decoder.h).
#include "gpu_decoder.h"

#include <algorithm>
#include <vector>

#include "core/error.h"

#ifdef ZC_HAVE_CUDA
#include "cuda/core/device.h"
#include "cuda/engine/gpu_model.h"
#include "cuda/engine/gpu_runner.h"
#include "cuda/kv/gpu_cache.h"
#include "cuda/kv/kv_page.h"
#include "cuda/kv/kv_pool.h"
#endif

namespace zc::app {

#ifdef ZC_HAVE_CUDA

namespace {

// Takes `runner` over and gives it back into `idle` (the session's) when it ends.
class GpuDecoder final : public engine::Decoder {
 public:
  GpuDecoder(std::unique_ptr<cuda::GpuRunner> runner, std::unique_ptr<cuda::GpuRunner>& idle, int context)
      : runner_(std::move(runner)), idle_(idle), context_(context) {}
  ~GpuDecoder() override {
    // Back to the session with its sequence freed (its pages may serve another
    // method's runner). The stream is drained first: no kernel may still read pages
    // that the pool hands out again.
    try {
      runner_->synchronize();
      runner_->cache().reset(0);
      idle_ = std::move(runner_);
    } catch (...) {
      // A runner in an unknown state is not reused.
    }
  }
  std::vector<float> prefill(std::span<const int32_t> prompt) override {
    if (int(prompt.size()) > context_) {
      fail("--device cuda: a prompt of {} tokens in a sequence of at most {}", prompt.size(), context_);
    }
    runner_->prefill(0, prompt);
    tokens_ = int(prompt.size());
    return runner_->logits_host(0);
  }
  std::vector<float> step(int32_t id) override {
    if (tokens_ >= context_) fail("--device cuda: the sequence is full ({} tokens)", context_);
    const int32_t one[1] = {id};
    runner_->decode(std::span<const int32_t>(one, 1));
    ++tokens_;
    return runner_->logits_host(0);
  }
  kv::MemoryReport memory() const override { return runner_->cache().memory(0); }

 private:
  std::unique_ptr<cuda::GpuRunner> runner_;
  std::unique_ptr<cuda::GpuRunner>& idle_;
  int context_, tokens_ = 0;
};

// Slots over one GpuRunner of `slots` sequences. The runner steps every sequence and
// needs each to hold a token, so a free slot holds a one-token placeholder that the
// steps feed and nobody reads, started over before it fills its context.
class GpuBatch final : public engine::BatchDecoder {
 public:
  GpuBatch(std::unique_ptr<cuda::GpuRunner> runner, const cuda::KvPool& pool, int context, int vocab)
      : runner_(std::move(runner)), pool_(pool), context_(context), vocab_(size_t(vocab)),
        busy_(size_t(runner_->batch()), false), length_(size_t(runner_->batch()), 0) {
    const cuda::GpuKvShape& shape = runner_->cache().shape();
    page_bytes_ = size_t(cuda::kPageTokens) * size_t(shape.head_dim) * 2 * sizeof(uint16_t) * size_t(shape.n_kv_heads) *
                  size_t(shape.n_layers);
    for (int s = 0; s < slots(); ++s) park(s);
  }
  ~GpuBatch() override {
    try {
      runner_->synchronize();  // no kernel may still read pages the pool hands out again
    } catch (...) {
    }
  }
  int slots() const override { return runner_->batch(); }
  int vocab() const override { return int(vocab_); }

  std::vector<float> prefill(int slot, std::span<const int32_t> prompt) override {
    check_slot(slot);
    if (busy_[size_t(slot)]) fail("batch slot {} is busy", slot);
    if (prompt.empty() || int(prompt.size()) > context_)
      fail("--device cuda: a prompt of {} tokens in a sequence of at most {}", prompt.size(), context_);
    clear(slot);
    try {
      runner_->prefill(slot, prompt);
      // The running sequences need room to grow (new window pages, ZipCache's and
      // KIVI's compressed chunks): a prompt that leaves less than two fp16 pages per
      // layer and KV head for each of them waits (engine::BatchScheduler) rather than
      // make a later step run out.
      const int others = busy_count();
      if (others > 0 && pool_.free_bytes() < size_t(2 * (others + 1)) * page_bytes_) {
        throw OutOfMemory(fmt::format("kv pool: a {}-token prompt leaves too little room for {} running sequences",
                                      prompt.size(), others));
      }
    } catch (...) {
      park(slot);  // the slot holds its placeholder again: the runner steps every sequence
      throw;
    }
    busy_[size_t(slot)] = true;
    length_[size_t(slot)] = int(prompt.size());
    return runner_->logits_host(slot);
  }

  void step(std::span<const int> slots, std::span<const int32_t> ids, std::vector<float>& logits) override {
    if (slots.size() != ids.size()) fail("a batch step of {} slots with {} ids", slots.size(), ids.size());
    std::vector<int32_t> all(size_t(this->slots()), kPlaceholder);
    std::vector<bool> fed(all.size(), false);
    for (size_t i = 0; i < slots.size(); ++i) {
      const int s = slots[i];
      check_slot(s);
      if (!busy_[size_t(s)] || fed[size_t(s)]) fail("batch slot {} is free or given twice", s);
      if (length_[size_t(s)] >= context_) fail("--device cuda: the sequence is full ({} tokens)", context_);
      all[size_t(s)] = ids[i];
      fed[size_t(s)] = true;
    }
    // A placeholder about to fill its context starts over.
    for (int s = 0; s < this->slots(); ++s) {
      if (!busy_[size_t(s)] && length_[size_t(s)] >= context_) park(s);
    }
    runner_->decode(all);
    for (int s = 0; s < this->slots(); ++s) ++length_[size_t(s)];
    const size_t v = vocab_;
    logits.resize(slots.size() * v);
    for (size_t i = 0; i < slots.size(); ++i) {
      cuda::check(cudaMemcpyAsync(logits.data() + i * v, runner_->logits() + size_t(slots[i]) * v, v * sizeof(float),
                                  cudaMemcpyDeviceToHost, runner_->stream()),
                  "cudaMemcpyAsync logits");
    }
    runner_->synchronize();
  }

  kv::MemoryReport memory(int slot) const override {
    if (slot < 0 || slot >= slots() || !busy_[size_t(slot)]) return {};
    return runner_->cache().memory(slot);
  }
  void release(int slot) override {
    check_slot(slot);
    if (busy_[size_t(slot)]) park(slot);
  }

 private:
  static constexpr int32_t kPlaceholder = 0;
  int busy_count() const { return int(std::count(busy_.begin(), busy_.end(), true)); }
  void check_slot(int slot) const {
    if (slot < 0 || slot >= slots()) fail("batch slot {} of {}", slot, slots());
  }
  // Frees the slot's sequence. The stream is drained first: pages a queued kernel still
  // reads must not be handed out again.
  void clear(int slot) {
    runner_->synchronize();
    runner_->cache().reset(slot);
    busy_[size_t(slot)] = false;
    length_[size_t(slot)] = 0;
  }
  void park(int slot) {
    clear(slot);
    const int32_t one[1] = {kPlaceholder};
    runner_->prefill(slot, std::span<const int32_t>(one, 1));
    length_[size_t(slot)] = 1;
  }

  std::unique_ptr<cuda::GpuRunner> runner_;
  const cuda::KvPool& pool_;
  int context_;
  size_t vocab_;
  size_t page_bytes_ = 0;  // an fp16 page (32 tokens) of every layer and KV head
  std::vector<bool> busy_;
  std::vector<int> length_;  // tokens each sequence holds (placeholders included)
};

}  // namespace

struct GpuSession::Impl {
  cuda::GpuModel gpu;
  cuda::KvPool pool;
  int context;
  // The runner a finished decoder gave back. Eval runs one method's items one after
  // another, and a new runner per item cost its stream, its cache's page tables, its
  // activation buffers (sized on its first prompt) and a CUDA graph capture; a decoder
  // for the same method takes this one over instead. After the pool and the model:
  // destroyed before them.
  std::unique_ptr<cuda::GpuRunner> idle;
};

namespace {
size_t pool_size(const model::ModelConfig& c, int context, size_t requested, int sequences) {
  if (requested > 0) return requested;
  // fp16 caches of the whole context (compressed methods need less), plus slack for
  // partly filled pages.
  const size_t fp16 = size_t(2) * 2 * size_t(c.n_kv_heads) * size_t(c.head_dim) * size_t(c.n_layers) *
                      (size_t(context) + 64) * size_t(std::max(1, sequences));
  size_t free_mem = 0, total = 0;
  cuda::check(cudaMemGetInfo(&free_mem, &total), "cudaMemGetInfo");
  return std::min(fp16 + fp16 / 8 + (size_t(16) << 20), free_mem / 10 * 9);
}
}  // namespace

GpuSession::GpuSession(const model::Model& model, int context, size_t kv_mem_bytes, int sequences) {
  std::string why;
  if (!cuda::device_available(&why)) fail("--device cuda: no usable GPU ({})", why);
  auto gpu = cuda::GpuModel::upload(model.config(), model.weights());
  cuda::KvPool pool(pool_size(model.config(), context, kv_mem_bytes, sequences));
  impl_ = std::make_unique<Impl>(Impl{std::move(gpu), std::move(pool), context, nullptr});
}

std::unique_ptr<engine::Decoder> GpuSession::decoder(const kv::MethodConfig& method) {
  return decoder(method, impl_->context);
}

std::unique_ptr<engine::Decoder> GpuSession::decoder(const kv::MethodConfig& method, int context) {
  if (context < 1 || context > impl_->context) {
    fail("--device cuda: a sequence of {} tokens, the GPU session holds at most {}", context, impl_->context);
  }
  std::unique_ptr<cuda::GpuRunner> runner = std::move(impl_->idle);
  // Runners hold sequences of up to the session's context, so that one serves every
  // item of its method; another method's idle runner goes before a new one is made
  // (its activation buffers).
  if (runner == nullptr || runner->cache().method() != method) {
    runner.reset();
    runner = std::make_unique<cuda::GpuRunner>(impl_->gpu, method, impl_->pool, 1, impl_->context);
  }
  return std::make_unique<GpuDecoder>(std::move(runner), impl_->idle, context);
}

engine::BatchDecoderFactory GpuSession::batch_factory() {
  return [this](const kv::MethodConfig& method, int context, int slots) -> std::unique_ptr<engine::BatchDecoder> {
    if (context < 2 || context > impl_->context) {
      fail("--device cuda: sequences of {} tokens, the GPU session holds at most {}", context, impl_->context);
    }
    impl_->idle.reset();  // a single-sequence runner's buffers go first
    return std::make_unique<GpuBatch>(
        std::make_unique<cuda::GpuRunner>(impl_->gpu, method, impl_->pool, slots, context), impl_->pool, context,
        impl_->gpu.config().vocab_size);
  };
}

void GpuSession::warm_up(const kv::MethodConfig& method) {
  const int vocab = impl_->gpu.config().vocab_size;
  std::vector<int32_t> ids(8);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i % size_t(vocab));
  warm_up(method, ids);
}

void GpuSession::warm_up(const kv::MethodConfig& method, std::span<const int32_t> prompt) {
  const size_t n = std::min(prompt.size(), size_t(std::max(0, impl_->context - 2)));
  if (n < 1) return;
  const auto d = decoder(method, int(n) + 2);
  d->prefill(prompt.first(n));
  d->step(prompt[0]);
  d->step(prompt[0]);
}

std::string GpuSession::unsupported(const model::ModelConfig& c, const kv::MethodConfig& method) {
  cuda::GpuKvShape shape;
  shape.n_layers = c.n_layers, shape.batch = 1, shape.n_heads = c.n_heads, shape.n_kv_heads = c.n_kv_heads;
  shape.head_dim = c.head_dim, shape.max_context = std::max(1, c.max_position_embeddings);
  try {
    cuda::GpuKvCache::check_supported(method, shape);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#else

struct GpuSession::Impl {};
GpuSession::GpuSession(const model::Model&, int, size_t, int) {
  fail("--device cuda: this zipcache was built without CUDA (nvcc was not found at configure time)");
}
std::unique_ptr<engine::Decoder> GpuSession::decoder(const kv::MethodConfig&) { return nullptr; }
std::unique_ptr<engine::Decoder> GpuSession::decoder(const kv::MethodConfig&, int) { return nullptr; }
void GpuSession::warm_up(const kv::MethodConfig&) {}
void GpuSession::warm_up(const kv::MethodConfig&, std::span<const int32_t>) {}
std::string GpuSession::unsupported(const model::ModelConfig&, const kv::MethodConfig&) {
  return "this zipcache was built without CUDA (nvcc was not found at configure time)";
}
engine::BatchDecoderFactory GpuSession::batch_factory() { return {}; }

#endif

GpuSession::~GpuSession() = default;

engine::DecoderFactory GpuSession::factory() {
  return [this](const kv::MethodConfig& method, int context) { return decoder(method, context); };
}

}  // namespace zc::app
