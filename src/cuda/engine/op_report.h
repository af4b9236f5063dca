// What OpTimer (op_timer.h) reports: per operation name the number of calls, the
// total GPU time, the mean per call and the share of all timed operations, plus the
// wall time of the timed regions. Plain C++ with no CUDA and header-only, so that
// `zipcache bench` can carry and print a profile in builds without the CUDA backend
// (it is never filled there) and the aggregation is tested on machines without a GPU.
#pragma once
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace zc::cuda {

struct OpStat {
  std::string name;
  long long calls = 0;
  double total_ms = 0;
  double mean_us() const { return calls > 0 ? total_ms * 1e3 / double(calls) : 0.0; }
};

struct OpReport {
  std::vector<OpStat> ops;  // longest total first (ties: by name)
  double wall_ms = 0;       // summed over regions: first op's start to last op's end
  long long regions = 0;    // batches of events collected (e.g. one per decode step)

  double timed_ms() const {
    double t = 0;
    for (const OpStat& op : ops) t += op.total_ms;
    return t;
  }
  // Fraction of all timed operations' time (0 when nothing was timed).
  double share(const OpStat& op) const {
    const double t = timed_ms();
    return t > 0 ? op.total_ms / t : 0.0;
  }
  const OpStat* find(std::string_view name) const {
    for (const OpStat& op : ops) {
      if (op.name == name) return &op;
    }
    return nullptr;
  }
  bool empty() const { return ops.empty(); }
};

// Accumulates timings by name.
class OpTally {
 public:
  void add(std::string_view name, double ms) {
    if (name.empty()) fail("op timer: an operation without a name");
    if (!std::isfinite(ms) || ms < 0) fail("op timer: operation '{}' took {} ms (must be finite and >= 0)", name, ms);
    auto it = stats_.find(name);
    if (it == stats_.end()) it = stats_.emplace(std::string(name), OpStat{std::string(name), 0, 0.0}).first;
    ++it->second.calls;
    it->second.total_ms += ms;
  }
  // One timed region: its wall time (first start to last end).
  void add_region(double wall_ms) {
    if (!std::isfinite(wall_ms) || wall_ms < 0) fail("op timer: region wall time {} ms (must be finite and >= 0)", wall_ms);
    wall_ms_ += wall_ms;
    ++regions_;
  }
  OpReport report() const {
    OpReport r;
    r.wall_ms = wall_ms_;
    r.regions = regions_;
    for (const auto& [name, st] : stats_) r.ops.push_back(st);
    std::stable_sort(r.ops.begin(), r.ops.end(),
                     [](const OpStat& a, const OpStat& b) { return a.total_ms > b.total_ms; });
    return r;
  }
  void clear() {
    stats_.clear();
    wall_ms_ = 0;
    regions_ = 0;
  }

 private:
  std::map<std::string, OpStat, std::less<>> stats_;  // by name, so ties sort by name
  double wall_ms_ = 0;
  long long regions_ = 0;
};

// A markdown table of a report, longest first, then the timed sum against the wall:
//   | op | calls | total ms | mean us | share |  (+ "ms/pass" when passes > 1: the total
// divided by the number of passes, e.g. decode steps, to set against one pass's time)
// The difference between wall and timed time is what ran between operations (launch
// gaps, copies and work outside any named operation).
inline std::string format_op_table(const OpReport& r, int passes = 1) {
  if (r.empty()) return "(no operations timed)\n";
  size_t w = 9;  // "timed ops"
  for (const OpStat& op : r.ops) w = std::max(w, op.name.size());
  const bool per = passes > 1;
  const auto per_pass = [&](double ms) { return per ? fmt::format(" {:>8.3f} |", ms / passes) : std::string(); };
  std::string s = fmt::format("| {:<{}} | {:>7} | {:>10} | {:>10} | {:>6} |{}\n", "op", w, "calls", "total ms", "mean us",
                              "share", per ? fmt::format(" {:>8} |", "ms/pass") : "");
  s += fmt::format("|{:-<{}}|---------|------------|------------|--------|{}\n", "", w + 2, per ? "----------|" : "");
  for (const OpStat& op : r.ops) {
    s += fmt::format("| {:<{}} | {:>7} | {:>10.3f} | {:>10.2f} | {:>5.1f}% |{}\n", op.name, w, op.calls, op.total_ms,
                     op.mean_us(), 100.0 * r.share(op), per_pass(op.total_ms));
  }
  long long calls = 0;
  for (const OpStat& op : r.ops) calls += op.calls;
  s += fmt::format("| {:<{}} | {:>7} | {:>10.3f} | {:>10} | {:>5.1f}% |{}\n", "timed ops", w, calls, r.timed_ms(), "",
                   100.0, per_pass(r.timed_ms()));
  s += fmt::format("wall {:.3f} ms over {} region{}{}; the timed operations cover {:.1f}% of it\n", r.wall_ms,
                   r.regions, r.regions == 1 ? "" : "s",
                   per ? fmt::format(" ({:.3f} ms per pass of {})", r.wall_ms / passes, passes) : "",
                   r.wall_ms > 0 ? 100.0 * r.timed_ms() / r.wall_ms : 0.0);
  return s;
}

}  // namespace zc::cuda
