// OpTimer (op_timer.h): cudaEvent pairs around named operations, pooled.
#include "cuda/engine/op_timer.h"

#include <algorithm>

#include "core/error.h"
#include "cuda/core/device.h"

namespace zc::cuda {

OpTimer::~OpTimer() {
  // Destroying an event whose work is still pending is allowed (released on completion).
  for (cudaEvent_t e : free_) cudaEventDestroy(e);
  for (const Record& r : records_) {
    cudaEventDestroy(r.start);
    cudaEventDestroy(r.stop);
  }
}

void OpTimer::set_enabled(bool on) {
  if (!on && open_) abandon();
  enabled_ = on;
}

cudaEvent_t OpTimer::take_event() {
  if (free_.empty()) {
    cudaEvent_t e = nullptr;
    check(cudaEventCreate(&e), "op timer: cudaEventCreate");
    ++created_;
    return e;
  }
  cudaEvent_t e = free_.back();
  free_.pop_back();
  return e;
}

void OpTimer::reserve(int pairs) {
  if (!enabled_) return;
  while (int(free_.size() + 2 * records_.size()) < 2 * pairs) {
    cudaEvent_t e = nullptr;
    check(cudaEventCreate(&e), "op timer: cudaEventCreate");
    ++created_;
    free_.push_back(e);
  }
}

void OpTimer::begin(std::string_view name, cudaStream_t stream) {
  if (!enabled_) return;
  if (open_) fail("op timer: '{}' begins while '{}' is still open (operations do not nest)", name, records_.back().name);
  if (name.empty()) fail("op timer: an operation without a name");
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(stream, &capture), "op timer: cudaStreamIsCapturing");
  if (capture != cudaStreamCaptureStatusNone) {
    fail("op timer: '{}' on a stream being captured into a CUDA graph (profile the eager path)", name);
  }
  Record r;
  r.name = std::string(name);
  r.start = take_event();
  r.stop = take_event();
  const cudaError_t e = cudaEventRecord(r.start, stream);
  if (e != cudaSuccess) {
    free_.push_back(r.start);
    free_.push_back(r.stop);
    check(e, "op timer: cudaEventRecord");
  }
  records_.push_back(std::move(r));
  open_ = true;
}

void OpTimer::end(cudaStream_t stream) {
  if (!enabled_) return;
  if (!open_) fail("op timer: end() without an open operation");
  open_ = false;
  const cudaError_t e = cudaEventRecord(records_.back().stop, stream);
  if (e != cudaSuccess) {
    open_ = true;
    abandon();
    check(e, "op timer: cudaEventRecord");
  }
}

void OpTimer::abandon() {
  if (!open_) return;
  free_.push_back(records_.back().start);
  free_.push_back(records_.back().stop);
  records_.pop_back();
  open_ = false;
}

void OpTimer::collect() {
  if (!enabled_ || records_.empty()) return;
  if (open_) fail("op timer: collect() while '{}' is still open", records_.back().name);
  // Every pair is waited for (operations may sit on different streams); the region's
  // span runs from the first start to the latest end.
  double span_ms = 0;
  for (const Record& r : records_) {
    check(cudaEventSynchronize(r.stop), "op timer: cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, r.start, r.stop), "op timer: cudaEventElapsedTime");
    tally_.add(r.name, double(ms));
    float to_end = 0;
    check(cudaEventElapsedTime(&to_end, records_.front().start, r.stop), "op timer: cudaEventElapsedTime");
    span_ms = std::max(span_ms, double(to_end));
  }
  tally_.add_region(span_ms);
  for (const Record& r : records_) {
    free_.push_back(r.start);
    free_.push_back(r.stop);
  }
  records_.clear();
}

OpReport OpTimer::report() {
  collect();
  return tally_.report();
}

void OpTimer::clear() { tally_.clear(); }

}  // namespace zc::cuda
