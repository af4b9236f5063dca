// The GPU batch of `serve --parallel` (gpu_batch.h).
#ifdef ZC_HAVE_CUDA
#include "gpu_batch.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "cuda/core/device.h"
#include "cuda/engine/gpu_runner.h"
#include "cuda/kv/gpu_cache.h"
#include "cuda/kv/kv_page.h"
#include "cuda/kv/kv_pool.h"

namespace zc::app {

namespace {

// Slots over one GpuRunner of `slots` sequences. The runner steps every sequence and
// needs each to hold a token, so a free slot holds a one-token placeholder that the
// steps feed and nobody reads, started over every page (32 tokens).
class GpuBatch final : public engine::BatchDecoder {
 public:
  GpuBatch(std::unique_ptr<cuda::GpuRunner> runner, const cuda::KvPool& pool, int context, int vocab)
      : runner_(std::move(runner)), pool_(pool), context_(context), vocab_(size_t(vocab)),
        busy_(size_t(runner_->batch()), false), length_(size_t(runner_->batch()), 0),
        growth_(size_t(runner_->batch())) {
    const cuda::GpuKvShape& shape = runner_->cache().shape();
    fp16_token_bytes_ = double(shape.head_dim) * 2 * sizeof(uint16_t) * double(shape.n_kv_heads) * double(shape.n_layers);
    const kv::MethodConfig& m = runner_->cache().method();
    // Tokens a sequence may hold in fp16 beyond its compressed rate: KIVI's residual
    // window and the block being filled, ZipCache's stream window (decode tokens gather
    // there until a chunk is compressed), and a partly filled page for every method.
    window_tokens_ = cuda::kPageTokens + (m.method == kv::Method::Kivi       ? m.residual + m.group
                                          : m.method == kv::Method::ZipCache ? m.stream_gap + cuda::kPageTokens
                                                                             : 0);
    const size_t row = size_t(std::max(shape.n_heads, shape.n_kv_heads)) * size_t(shape.head_dim);
    zeros_.resize(row);
    zeros_bf16_.resize(row);
    cuda::check(cudaMemsetAsync(zeros_.get(), 0, row * sizeof(float), runner_->stream()), "placeholder rows");
    cuda::check(cudaMemsetAsync(zeros_bf16_.get(), 0, row * sizeof(uint16_t), runner_->stream()), "placeholder rows");
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

  std::vector<float> prefill(int slot, std::span<const int32_t> prompt, int max_new_tokens) override {
    check_slot(slot);
    if (busy_[size_t(slot)]) fail("batch slot {} is busy", slot);
    if (prompt.empty() || int(prompt.size()) > context_)
      fail("--device cuda: a prompt of {} tokens in a sequence of at most {}", prompt.size(), context_);
    clear(slot);
    try {
      runner_->prefill(slot, prompt);
      // Room for every running sequence to take its remaining tokens (growth_) must stay
      // free: a prompt that would leave less waits (engine::BatchScheduler) for a running
      // one to end, rather than make a later step run out of pages for all of them.
      // Alone, a prompt runs whatever it may need (as with --parallel 1).
      Growth& g = growth_[size_t(slot)];
      g.remaining = std::max(0, max_new_tokens);
      const double held = double(runner_->cache().memory(slot).total());
      // The compressed rate as the prompt measured it, with a margin for chunk padding.
      g.token_bytes = std::min(fp16_token_bytes_, 1.5 * held / double(prompt.size()));
      size_t need = this->need(g);
      for (int s = 0; s < slots(); ++s) {
        if (busy_[size_t(s)]) need += this->need(growth_[size_t(s)]);
      }
      if (busy_count() > 0 && need > pool_.free_bytes()) {
        throw OutOfMemory(fmt::format("kv pool: {:.1f} MiB free, {:.1f} MiB kept for the running sequences' next "
                                      "tokens and this prompt's",
                                      double(pool_.free_bytes()) / 1048576.0, double(need) / 1048576.0));
      }
    } catch (...) {
      park(slot);  // the slot holds its placeholder again: the runner steps every sequence
      throw;
    }
    busy_[size_t(slot)] = true;
    length_[size_t(slot)] = int(prompt.size());
    return runner_->logits_host(slot);
  }

  std::span<const float> step(std::span<const int> slots, std::span<const int32_t> ids) override {
    run(slots, ids);
    copy_rows(slots, {});
    runner_->synchronize();
    return {logits_.get(), slots.size() * vocab_};
  }

  std::span<const float> step_pick(std::span<const int> slots, std::span<const int32_t> ids,
                                   std::span<const engine::TokenPick> picks, std::span<int32_t> tokens) override {
    check_pick_args(slots, picks, tokens);
    run(slots, ids);
    // Every row's argmax in one launch (placeholders' too: a few microseconds), the
    // draws in another, and only the other rows' logits copied.
    std::vector<cuda::GpuDraw> draws;
    std::vector<uint8_t> skip(slots.size(), 0);
    for (size_t i = 0; i < slots.size(); ++i) {
      skip[i] = picks[i].kind != engine::TokenPick::Kind::kLogits;
      if (picks[i].kind == engine::TokenPick::Kind::kDraw) draws.push_back(gpu_draw(slots[i], picks[i].draw));
    }
    picked_.reserve(size_t(this->slots()));
    runner_->pick_async(draws, picked_.get());
    copy_rows(slots, skip);
    runner_->synchronize();
    for (size_t i = 0; i < slots.size(); ++i) {
      if (skip[i]) tokens[i] = picked_.get()[slots[i]];
    }
    return {logits_.get(), slots.size() * vocab_};
  }
  bool draws_on_device() const override { return true; }

  kv::MemoryReport memory(int slot) const override {
    if (slot < 0 || slot >= slots() || !busy_[size_t(slot)]) return {};
    return runner_->cache().memory(slot);
  }
  void release(int slot) override {
    check_slot(slot);
    if (busy_[size_t(slot)]) park(slot);
  }

 private:
  static constexpr int32_t kPlaceholder = 0;  // the id free slots are fed
  struct Growth {
    int remaining = 0;        // tokens the sequence may still take
    double token_bytes = 0;   // pool bytes per token at its method's rate
  };
  // Pool bytes a sequence may still allocate: its remaining tokens at its rate, and its
  // fp16 window's worth at the fp16 rate.
  size_t need(const Growth& g) const {
    if (g.remaining == 0) return 0;
    return size_t(g.token_bytes * double(g.remaining) + fp16_token_bytes_ * double(window_tokens_));
  }
  // Checks a step's slots and ids and queues the runner's step of every sequence (the
  // free slots' placeholders too).
  void run(std::span<const int> slots, std::span<const int32_t> ids) {
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
    // A placeholder starts over every page, so that free slots hold almost no memory.
    for (int s = 0; s < this->slots(); ++s) {
      if (!busy_[size_t(s)] && length_[size_t(s)] >= std::min(context_, cuda::kPageTokens)) park(s);
    }
    runner_->decode(all);
    for (int s = 0; s < this->slots(); ++s) ++length_[size_t(s)];
    for (const int s : slots) growth_[size_t(s)].remaining = std::max(0, growth_[size_t(s)].remaining - 1);
  }
  // Queues the copy of row i of the step (slot slots[i]) to logits_ row i for every i
  // not marked in skip (empty: none is): one copy per run of consecutive slots (all of
  // them in a full batch), into pinned memory.
  void copy_rows(std::span<const int> slots, std::span<const uint8_t> skip) {
    const size_t v = vocab_;
    logits_.reserve(size_t(this->slots()) * v);
    const auto skipped = [&](size_t i) { return !skip.empty() && skip[i] != 0; };
    for (size_t i = 0; i < slots.size();) {
      if (skipped(i)) {
        ++i;
        continue;
      }
      size_t run = 1;
      while (i + run < slots.size() && !skipped(i + run) && slots[i + run] == slots[i] + int(run)) ++run;
      cuda::check(cudaMemcpyAsync(logits_.get() + i * v, runner_->logits() + size_t(slots[i]) * v,
                                  run * v * sizeof(float), cudaMemcpyDeviceToHost, runner_->stream()),
                  "cudaMemcpyAsync logits");
      i += run;
    }
  }
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
  // The placeholder: one token of zero keys and values written into every layer's cache
  // directly, no forward pass (whose weight reads would cost a decode step each time).
  void park(int slot) {
    clear(slot);
    cuda::GpuKvCache& cache = runner_->cache();
    const cuda::GpuKvShape& sh = cache.shape();
    for (int l = 0; l < sh.n_layers; ++l) {
      cache.prefill(l, slot, zeros_.get(), zeros_.get(), sh.n_kv_heads * sh.head_dim, 1, zeros_bf16_.get(),
                    zeros_bf16_.get());
    }
    length_[size_t(slot)] = 1;
  }

  std::unique_ptr<cuda::GpuRunner> runner_;
  const cuda::KvPool& pool_;
  int context_;
  size_t vocab_;
  double fp16_token_bytes_ = 0;  // one token of every layer and KV head in fp16
  int window_tokens_ = 0;
  std::vector<bool> busy_;
  std::vector<int> length_;     // tokens each sequence holds (placeholders included)
  std::vector<Growth> growth_;  // of busy slots
  cuda::DeviceBuffer<float> zeros_;          // a placeholder token's k / v row
  cuda::DeviceBuffer<uint16_t> zeros_bf16_;  // and its q / k row for ZipCache's probe pass
  cuda::PinnedBuffer<float> logits_;         // the last step's rows (step)
  cuda::PinnedBuffer<int32_t> picked_;       // the last step's token of every sequence (step_pick)
};

}  // namespace

cuda::GpuDraw gpu_draw(int row, const engine::DrawSpec& d) {
  return cuda::GpuDraw{row, d.temperature, d.top_k, d.top_p, d.min_p, d.u};
}

std::unique_ptr<engine::BatchDecoder> make_gpu_batch(std::unique_ptr<cuda::GpuRunner> runner,
                                                     const cuda::KvPool& pool, int context, int vocab) {
  return std::make_unique<GpuBatch>(std::move(runner), pool, context, vocab);
}

}  // namespace zc::app
#endif
