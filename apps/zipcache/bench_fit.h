// The largest-batch run of `zipcache bench --budget` (cmd_bench.cpp): the batch that the
// allocator's figures predict from a small run (its peak pool bytes per sequence) is
// only an estimate: the small run had room to spare, while a full pool strands the
// remains of split chunks and, before the pool learned to split (chunk_allocator.h),
// refused quantized pages while freed fp16 ones sat idle (a 60 GiB budget with 128
// decode steps: 536 ZipCache sequences estimated, out of memory at the first streaming
// chunk). So the run itself is the test: a batch whose run exhausts the pool gives way
// to 2% fewer sequences, and the table reports the batch that ran.
#pragma once
#include <algorithm>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"

namespace zc::app {

// Whether e is the KV pool's refusal ("kv pool: out of memory", cuda/kv/kv_pool.cpp).
inline bool is_pool_exhausted(const std::exception& e) {
  return std::string(e.what()).find("kv pool: out of memory") != std::string::npos;
}

struct FitTry {
  int batch = 0;
  std::string error;  // why it did not fit
};

// run(batch) from `estimate` down: after each run that exhausts the pool, 2% fewer
// sequences (at least one fewer), at most max_runs runs. Returns the first result that
// fitted; the batches that did not are appended to *failed. Any other error
// propagates; when no run fits, throws zc::Error naming the batches tried.
template <typename Result>
Result run_largest_fit(int estimate, int max_runs, const std::function<Result(int)>& run, std::vector<FitTry>* failed) {
  if (estimate < 1) fail("bench: the budget holds no sequence (estimated batch {})", estimate);
  int batch = estimate;
  std::string tried;
  for (int n = 0; n < std::max(1, max_runs) && batch >= 1; ++n) {
    try {
      return run(batch);
    } catch (const std::exception& e) {
      if (!is_pool_exhausted(e)) throw;
      if (failed != nullptr) failed->push_back(FitTry{batch, e.what()});
      tried += (tried.empty() ? "" : ", ") + std::to_string(batch);
      batch -= std::max(1, batch / 50);
    }
  }
  fail("bench: no batch fitted the budget (tried {}); the KV pool ran out of memory each time", tried);
}

}  // namespace zc::app
