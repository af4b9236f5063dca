#include "engine/batch_scheduler.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "core/thread_pool.h"
#include "engine/sequence_generation.h"

namespace zc::engine {

// ---- BatchTicket ----

void BatchTicket::push(const std::string& text) {
  {
    std::lock_guard lock(mutex_);
    text_ += text;
  }
  changed_.notify_all();
}

void BatchTicket::end(std::optional<GenerationResult> result, std::exception_ptr error) {
  {
    std::lock_guard lock(mutex_);
    result_ = std::move(result);
    error_ = error;
    ended_ = true;
  }
  changed_.notify_all();
}

bool BatchTicket::wait_text(std::string* text) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return ended_ || !text_.empty(); });
  if (text_.empty()) return false;  // ended, nothing left
  *text = std::move(text_);
  text_.clear();
  return true;
}

GenerationResult BatchTicket::result() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return ended_; });
  if (error_) std::rethrow_exception(error_);
  return *result_;
}

// ---- BatchScheduler ----

struct BatchScheduler::Slot {
  std::shared_ptr<BatchTicket> ticket;
  std::unique_ptr<SequenceGeneration> generation;
  int32_t next = 0;  // the token to feed at the next step
};

BatchScheduler::BatchScheduler(BatchDecoderFactory make_batch, const model::ModelConfig& config,
                               const tok::Tokenizer* tokenizer, int context, int slots)
    : make_batch_(std::move(make_batch)), config_(config), tokenizer_(tokenizer), context_(context), slots_(slots) {
  if (!make_batch_) fail("batch scheduler: no batch decoder factory");
  if (slots < 1) fail("batch scheduler: {} slots; at least 1", slots);
  if (context < 2) fail("batch scheduler: a context of {} tokens; at least 2", context);
  running_.resize(size_t(slots));
  thread_ = std::thread([this] { loop(); });
}

BatchScheduler::~BatchScheduler() { stop(); }

std::shared_ptr<BatchTicket> BatchScheduler::submit(BatchJob job) {
  check_prompt(job.prompt, context_);
  auto ticket = std::make_shared<BatchTicket>();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) fail("the server is stopping");
    waiting_.push_back(Waiting{std::move(job), ticket});
  }
  wake_.notify_all();
  return ticket;
}

void BatchScheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

BatchScheduler::Stats BatchScheduler::stats() const {
  std::lock_guard lock(mutex_);
  Stats st = stats_;
  st.running = busy_;
  return st;
}

void BatchScheduler::loop() {
  for (;;) {
    bool any_running = false;
    for (const auto& s : running_) any_running = any_running || s != nullptr;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || any_running || !waiting_.empty(); });
      if (stopping_) break;
    }
    while (admit_one()) {
    }
    count_busy();
    step_all();
    count_busy();
  }
  // Stopping: running jobs end as cancelled (their text so far is theirs), waiting ones fail.
  for (int s = 0; s < slots_; ++s) {
    if (running_[size_t(s)]) {
      running_[size_t(s)]->generation->cancel();
      finish(s);
    }
  }
  std::deque<Waiting> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(waiting_);
  }
  for (Waiting& w : left) w.ticket->end(std::nullopt, std::make_exception_ptr(Error("the server is stopping")));
  batch_.reset();
}

void BatchScheduler::count_busy() {
  int n = 0;
  for (const auto& r : running_) n += r != nullptr;
  busy_ = n;
}

bool BatchScheduler::admit_one() {
  int free_slot = -1, busy = 0;
  for (int s = 0; s < slots_; ++s) {
    if (running_[size_t(s)])
      ++busy;
    else if (free_slot < 0)
      free_slot = s;
  }
  if (free_slot < 0) return false;
  Waiting w;
  {
    std::lock_guard lock(mutex_);
    if (waiting_.empty() || stopping_ || memory_wait_) return false;
    // First come, first served: a job of another method than the batch's waits for the
    // running jobs to end, and holds back the jobs behind it.
    if (batch_ && busy > 0 && !(waiting_.front().job.method == batch_method_)) return false;
    w = std::move(waiting_.front());
    waiting_.pop_front();
  }
  if (w.ticket->cancelled()) {  // gone before it started
    GenerationResult r;
    r.prompt_tokens = int(w.job.prompt.size());
    r.stop_reason = "cancelled";
    w.ticket->end(std::move(r), nullptr);
    return true;
  }
  if (!batch_ || !(batch_method_ == w.job.method)) {
    batch_.reset();  // every slot is free here: its memory goes before the next batch's
    try {
      batch_ = make_batch_(w.job.method, context_, slots_);
      if (!batch_) fail("the batch decoder factory gave no batch");
      batch_method_ = w.job.method;
    } catch (...) {
      batch_.reset();
      w.ticket->end(std::nullopt, std::current_exception());
      return true;
    }
  }
  start(free_slot, std::move(w));
  return true;
}

void BatchScheduler::start(int slot, Waiting w) {
  auto run = std::make_unique<Slot>();
  run->ticket = w.ticket;
  std::vector<float> logits;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    const int room = context_ - int(w.job.prompt.size());  // tokens the sequence may still take
    const int max_tokens = w.job.options.max_tokens;
    logits = batch_->prefill(slot, w.job.prompt, max_tokens < 0 ? room : std::min(max_tokens, room));
  } catch (const OutOfMemory&) {
    release(slot);
    bool others = false;
    for (const auto& r : running_) others = others || r != nullptr;
    if (others) {
      // The KV memory is taken by the running jobs: this one waits, first in line,
      // until one of them ends and frees its memory (vLLM's admission by free blocks).
      std::lock_guard lock(mutex_);
      waiting_.push_front(std::move(w));
      memory_wait_ = true;
      ++stats_.memory_waits;
      return;
    }
    w.ticket->end(std::nullopt, std::current_exception());  // it does not fit even alone
    return;
  } catch (...) {
    w.ticket->end(std::nullopt, std::current_exception());
    release(slot);
    return;
  }
  const double prefill_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  {
    std::lock_guard lock(mutex_);
    ++stats_.prefills;
    stats_.prefill_seconds += prefill_seconds;
  }
  const DecodeStart start_at{w.job.prompt, int(w.job.prompt.size()), prefill_seconds};
  GenerationOptions options = std::move(w.job.options);
  std::function<bool()> client_cancelled = std::move(options.cancelled);
  BatchTicket* ticket = run->ticket.get();
  options.cancelled = [this, ticket, client_cancelled] {
    if (ticket->cancelled() || (client_cancelled && client_cancelled())) return true;
    std::lock_guard lock(mutex_);
    return stopping_;
  };
  run->generation = std::make_unique<SequenceGeneration>(
      start_at, config_, tokenizer_, options, context_, [ticket](const std::string& text) { ticket->push(text); });
  running_[size_t(slot)] = std::move(run);
  try {
    const std::optional<int32_t> next = running_[size_t(slot)]->generation->advance(logits);
    if (next) {
      running_[size_t(slot)]->next = *next;
      return;
    }
  } catch (...) {  // e.g. NaN logits
    const std::unique_ptr<Slot> s = std::move(running_[size_t(slot)]);
    count_busy();
    s->ticket->end(std::nullopt, std::current_exception());
    release(slot);
    return;
  }
  finish(slot);
}

void BatchScheduler::step_all() {
  std::vector<int> slots;
  std::vector<int32_t> ids;
  for (int s = 0; s < slots_; ++s) {
    if (running_[size_t(s)]) slots.push_back(s), ids.push_back(running_[size_t(s)]->next);
  }
  if (slots.empty()) return;
  // Greedy rows need only their argmax, and sampled rows without penalty or logprobs a
  // draw, which the GPU batch makes on the device instead of copying the row (0.5 MB
  // at Llama 3's vocabulary) for the host to scan.
  const bool device_draws = batch_->draws_on_device();
  std::vector<TokenPick> picks(slots.size());
  bool any_pick = false;
  for (size_t i = 0; i < slots.size(); ++i) {
    picks[i] = running_[size_t(slots[i])]->generation->next_pick(device_draws);
    any_pick = any_pick || picks[i].kind != TokenPick::Kind::kLogits;
  }
  std::vector<int32_t> picked(slots.size(), -1);
  std::span<const float> logits;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    logits = any_pick ? batch_->step_pick(slots, ids, picks, picked) : batch_->step(slots, ids);
  } catch (...) {
    // The batch's state is not known after a failed step: every running job fails with
    // the error, and the batch is made again for the next job.
    fail_running(std::current_exception());
    return;
  }
  const auto t1 = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex_);
    stats_.step_seconds += std::chrono::duration<double>(t1 - t0).count();
    ++stats_.steps;
    stats_.step_rows += static_cast<long long>(slots.size());
    stats_.max_rows = std::max(stats_.max_rows, int(slots.size()));
  }
  // Each row's sampling and streaming is its own, and sampling a row of a 128k-token
  // vocabulary is a pass or two over it (~1-2 ms of one core at temperature > 0), so
  // the rows advance in parallel; what ends a job follows, on this thread.
  const size_t vocab = size_t(batch_->vocab());
  struct Advanced {
    std::optional<int32_t> next;
    std::exception_ptr error;
  };
  std::vector<Advanced> advanced(slots.size());
  parallel_for(slots.size(), [&](size_t i) {
    try {
      SequenceGeneration& generation = *running_[size_t(slots[i])]->generation;
      advanced[i].next = picks[i].kind != TokenPick::Kind::kLogits
                             ? generation.advance_picked(picked[i], vocab)
                             : generation.advance(logits.subspan(i * vocab, vocab));
    } catch (...) {
      advanced[i].error = std::current_exception();
    }
  });
  for (size_t i = 0; i < slots.size(); ++i) {
    if (!running_[size_t(slots[i])]) continue;  // failed with the batch (release)
    if (advanced[i].error) {
      const std::unique_ptr<Slot> failed = std::move(running_[size_t(slots[i])]);
      count_busy();
      failed->ticket->end(std::nullopt, advanced[i].error);
      release(slots[i]);
    } else if (advanced[i].next) {
      running_[size_t(slots[i])]->next = *advanced[i].next;
    } else {
      finish(slots[i]);
    }
  }
  const double sample_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  std::lock_guard lock(mutex_);
  stats_.sample_seconds += sample_seconds;
}

void BatchScheduler::finish(int slot) {
  std::unique_ptr<Slot> s = std::move(running_[size_t(slot)]);
  count_busy();  // before the client hears of the end
  try {
    GenerationResult r = s->generation->finish(batch_ ? batch_->memory(slot) : kv::MemoryReport{});
    s->ticket->end(std::move(r), nullptr);
  } catch (...) {
    s->ticket->end(std::nullopt, std::current_exception());
  }
  release(slot);
}

void BatchScheduler::release(int slot) {
  {
    std::lock_guard lock(mutex_);
    memory_wait_ = false;  // memory was freed: a job waiting for it may try again
  }
  if (!batch_) return;
  try {
    batch_->release(slot);
  } catch (...) {
    // A batch that cannot free a slot is not used again.
    fail_running(std::current_exception());
  }
}

void BatchScheduler::fail_running(std::exception_ptr error) {
  {
    std::lock_guard lock(mutex_);
    memory_wait_ = false;  // the batch and its memory go
  }
  std::vector<std::unique_ptr<Slot>> failed;
  for (auto& s : running_) failed.push_back(std::move(s));
  count_busy();
  for (auto& s : failed) {
    if (s) s->ticket->end(std::nullopt, error);
  }
  batch_.reset();
}

}  // namespace zc::engine
