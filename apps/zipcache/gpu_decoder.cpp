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
#include "gpu_batch.h"
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
    feed(id);
    return runner_->logits_host(0);
  }
  int32_t step_pick(int32_t id, const engine::TokenPick& pick) override {
    if (pick.kind == engine::TokenPick::Kind::kLogits) fail("a decoder's step_pick was asked for the row of logits");
    feed(id);
    picked_.reserve(1);
    if (pick.kind == engine::TokenPick::Kind::kDraw) {
      const cuda::GpuDraw draw = gpu_draw(0, pick.draw);
      runner_->pick_async(std::span<const cuda::GpuDraw>(&draw, 1), picked_.get());
    } else {
      runner_->argmax_async(picked_.get());
    }
    runner_->synchronize();
    return picked_.get()[0];
  }
  bool draws_on_device() const override { return true; }
  kv::MemoryReport memory() const override { return runner_->cache().memory(0); }

 private:
  void feed(int32_t id) {  // one decode step of the sequence
    if (tokens_ >= context_) fail("--device cuda: the sequence is full ({} tokens)", context_);
    const int32_t one[1] = {id};
    runner_->decode(std::span<const int32_t>(one, 1));
    ++tokens_;
  }

  std::unique_ptr<cuda::GpuRunner> runner_;
  std::unique_ptr<cuda::GpuRunner>& idle_;
  int context_, tokens_ = 0;
  cuda::PinnedBuffer<int32_t> picked_;  // step_pick's id
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
    return make_gpu_batch(std::make_unique<cuda::GpuRunner>(impl_->gpu, method, impl_->pool, slots, context),
                          impl_->pool, context, impl_->gpu.config().vocab_size);
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
