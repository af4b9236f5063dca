// Continuous batching: generations of concurrent requests share one BatchDecoder
// (engine/batch_decoder.h). A thread of the scheduler's own runs the loop: a waiting
// job takes a free slot (its prompt prefilled there while the other slots wait), then
// one step feeds every busy slot its next token, and a slot whose generation ended is
// freed at once for the next job. Jobs are admitted in arrival order. The batch serves
// one KV method at a time; a job of another method waits until the running ones end,
// and then the batch is made again for it (nothing behind it is admitted first, so no
// job waits forever).
//
// A prompt that the batch's KV memory cannot take while other jobs hold it
// (zc::OutOfMemory from the prefill) waits, first in line, until one of them ends; one
// that does not fit even alone fails with that error.
//
// A job's text comes to its BatchTicket as it is generated; the client thread takes it
// from there, so a slow client never holds the batch up.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/batch_decoder.h"
#include "engine/generator.h"

namespace zc::engine {

struct BatchJob {
  std::vector<int32_t> prompt;  // 1 to context - 1 tokens (checked at submit)
  kv::MethodConfig method;
  GenerationOptions options;    // options.cancelled is asked before each of the job's steps
};

// A submitted job, as its client sees it. Thread-safe.
class BatchTicket {
 public:
  // Waits for text or the end: moves the text generated since the last call into
  // *text and returns true, or returns false once the job has ended and all its text
  // was taken.
  bool wait_text(std::string* text);
  // Waits for the end; the result, or the job's error rethrown.
  GenerationResult result();
  // The client is gone: the job ends before its next step (stop reason "cancelled").
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

 private:
  friend class BatchScheduler;
  void push(const std::string& text);
  void end(std::optional<GenerationResult> result, std::exception_ptr error);

  std::mutex mutex_;
  std::condition_variable changed_;
  std::string text_;
  bool ended_ = false;
  std::optional<GenerationResult> result_;
  std::exception_ptr error_;
  std::atomic<bool> cancelled_{false};
};

class BatchScheduler {
 public:
  // make_batch makes a batch of `slots` slots for a method (sequences of `context`
  // tokens); config and tokenizer (may be null) must outlive the scheduler.
  BatchScheduler(BatchDecoderFactory make_batch, const model::ModelConfig& config, const tok::Tokenizer* tokenizer,
                 int context, int slots);
  ~BatchScheduler();  // stop()
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  // Queues a job; throws zc::Error for a prompt that is empty or does not fit the
  // context, and after stop().
  std::shared_ptr<BatchTicket> submit(BatchJob job);
  // Ends every job (running ones with stop reason "cancelled", waiting ones with an
  // error) and the scheduler's thread. Idempotent.
  void stop();

  struct Stats {
    long long steps = 0;       // batch steps run
    long long step_rows = 0;   // busy slots summed over the steps (mean batch = step_rows / steps)
    int max_rows = 0;          // the largest step
    long long prefills = 0;
    long long memory_waits = 0;  // prefills put back to wait for KV memory the running jobs held
    // Where the scheduler's thread spent its time, in seconds: prompts (the batch's
    // prefills, the others' steps waiting meanwhile), batch steps (the decoder's step,
    // the copy of its rows included), and sampling and streaming the steps' rows.
    double prefill_seconds = 0, step_seconds = 0, sample_seconds = 0;
    int running = 0;             // jobs in slots now
  };
  Stats stats() const;

 private:
  struct Waiting {
    BatchJob job;
    std::shared_ptr<BatchTicket> ticket;
  };
  struct Slot;
  void loop();
  bool admit_one();  // takes the first waiting job into a free slot; false: none could be
  void start(int slot, Waiting w);
  void step_all();
  void finish(int slot);   // ends the slot's job with its result and frees the slot
  void release(int slot);  // frees the slot; a failure fails every running job
  void fail_running(std::exception_ptr error);
  void count_busy();  // busy_ from running_

  BatchDecoderFactory make_batch_;
  const model::ModelConfig& config_;
  const tok::Tokenizer* tokenizer_;
  int context_, slots_;

  mutable std::mutex mutex_;  // waiting_, stopping_, stats_
  std::condition_variable wake_;
  std::deque<Waiting> waiting_;
  bool stopping_ = false;
  bool memory_wait_ = false;  // the first waiting job needs memory a running job must free
  Stats stats_;

  // The scheduler thread's own state.
  std::unique_ptr<BatchDecoder> batch_;
  kv::MethodConfig batch_method_;
  std::vector<std::unique_ptr<Slot>> running_;  // [slots_], null: free
  std::atomic<int> busy_{0};                     // non-null entries of running_, for stats()
  std::thread thread_;
};

}  // namespace zc::engine
