// Runs an eval plan: every task configuration, every method, every item, reusing the
// items already in the store and appending each new one as soon as it is scored.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "eval/plan.h"
#include "eval/records.h"
#include "model/forward.h"
#include "tokenizer/tokenizer.h"

namespace zc::eval {

struct ProgressEvent {
  int done = 0, total = 0;  // items finished (computed or reused) and in the plan
  int computed = 0;         // items run in this process
  double seconds = 0;       // time spent running them
  std::string label;        // "lines=100 zipcache #12"
};

struct RunHooks {
  std::function<void(const ProgressEvent&)> progress;
  std::function<void(const std::string&)> log;  // one-line notes (budget matching)
  // The decoders of the methods whose MethodEntry::device is not "cpu" (a GPU
  // session's); run_eval fails for such a method when this is empty.
  engine::DecoderFactory decoders;
  // Called (when set) before the first item that a method off the CPU computes in each
  // task configuration, with that item's prompt: a GPU loads kernels and plans on the
  // first use of a shape, which would otherwise count in that method's tok/s.
  std::function<void(const kv::MethodConfig& method, std::span<const int32_t> prompt)> warm_up;
};

// A method whose budget was matched to a reference, per task configuration.
struct BudgetMatch {
  std::string task, params, method, reference, resolved;
  double target_ratio = 0;    // the reference's ratio on item 0
  double achieved_ratio = 0;  // this method's ratio on item 0
  bool reached = false;       // within 1%
  int calibration_runs = 0;   // 0 when taken from an earlier run's records
};

struct EvalRun {
  std::vector<ItemRecord> items;  // every item of the plan, in plan order
  std::vector<BudgetMatch> matches;
  int computed = 0, reused = 0;
};

EvalRun run_eval(const model::Model& model, const tok::Tokenizer& tokenizer, const EvalPlan& plan,
                 ItemStore& store, const RunHooks& hooks = {});

}  // namespace zc::eval
