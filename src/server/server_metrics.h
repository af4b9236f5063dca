// What `GET /metrics` reports (Prometheus' text format, as vLLM and llama.cpp's server
// expose it): counters of the requests the server ran and the tokens they took and
// gave, gauges of the requests running and waiting now, and the batch's counts.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>

#include "engine/batch_scheduler.h"
#include "engine/generator.h"

namespace zc::server {

class ServerMetrics {
 public:
  // A generation enters (it may wait for the engine or a slot) / leaves, with its result
  // or its error.
  void started() { ++in_flight_; }
  void finished(const engine::GenerationResult& r);
  void failed();

  // running: generations being computed now (the rest of in_flight wait); batch: the
  // scheduler's counts (zeros without one).
  std::string prometheus(int running, const engine::BatchScheduler::Stats& batch) const;

 private:
  std::atomic<int> in_flight_{0};
  std::atomic<long long> succeeded_{0}, failed_{0}, prompt_tokens_{0}, cached_tokens_{0}, generated_{0};
};

}  // namespace zc::server
