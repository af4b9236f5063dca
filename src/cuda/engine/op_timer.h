// GPU time of named operations on a stream (issue 4: which operations of the forward
// pass eat the time, without Nsight Systems). begin(name, stream) and end(stream)
// record a pair of cudaEvents around the work enqueued between them; collect()
// waits for the recorded events, adds their elapsed times to per-name totals and
// returns the events to a pool that later calls reuse; report() gives the totals
// (op_report.h).
//
// Rules:
//  - Disabled (set_enabled(false)), begin/end/collect create and record no events:
//    code instrumented with a timer costs one branch.
//  - Operations do not nest: begin while one is open is an error.
//  - Never inside CUDA graph capture (events recorded into a graph would time the
//    capture, not the replay): begin on a capturing stream throws zc::Error. Code that
//    replays graphs (GpuRunner::decode) runs its eager path while a timer is set.
//  - An operation's time is end event minus start event on the GPU: its kernels plus,
//    when the GPU drained the queue and waited for the host, that launch latency (the
//    eager path of small decode kernels). Time between operations is not counted in
//    any operation; the region's wall time shows it.
#pragma once
#include <cuda_runtime.h>

#include <string>
#include <string_view>
#include <vector>

#include "cuda/engine/op_report.h"

namespace zc::cuda {

class OpTimer {
 public:
  explicit OpTimer(bool enabled = true) : enabled_(enabled) {}
  ~OpTimer();
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

  bool enabled() const { return enabled_; }
  // Turning it off drops any operation still open (collected ones are kept).
  void set_enabled(bool on);

  // Creates events until `pairs` operations can be recorded without creating any (so
  // that the first timed region does not pay for cudaEventCreate).
  void reserve(int pairs);

  void begin(std::string_view name, cudaStream_t stream);
  void end(cudaStream_t stream);
  // Drops the open operation (an exception between begin and end).
  void abandon();

  // Waits for the operations recorded since the last collect, adds them to the totals
  // and their span (first start to last end) as one region; reuses their events.
  void collect();
  // collect(), then the totals.
  OpReport report();
  // Forgets the totals (the event pool stays).
  void clear();

  int events_created() const { return created_; }
  int pending() const { return int(records_.size()); }  // operations not collected yet

 private:
  struct Record {
    std::string name;
    cudaEvent_t start = nullptr, stop = nullptr;
  };
  cudaEvent_t take_event();

  bool enabled_;
  bool open_ = false;
  std::vector<cudaEvent_t> free_;
  std::vector<Record> records_;  // the last one is open while open_
  OpTally tally_;
  int created_ = 0;
};

// Times `f` as operation `name` on `stream` when `timer` is set (else just runs it).
template <typename F>
void timed_op(OpTimer* timer, const char* name, cudaStream_t stream, F&& f) {
  if (timer == nullptr || !timer->enabled()) {
    f();
    return;
  }
  timer->begin(name, stream);
  try {
    f();
  } catch (...) {
    timer->abandon();
    throw;
  }
  timer->end(stream);
}

}  // namespace zc::cuda
