// Summaries of an eval run: per task configuration and method, the accuracy with its
// Wilson 95% interval (or the perplexity), the measured compression averaged over the
// items, and throughput; as text tables and as one JSON document.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/plan.h"
#include "eval/records.h"
#include "eval/runner.h"

namespace zc::eval {

struct Summary {
  std::string task, params, method, resolved;
  std::string device = "cpu";  // MethodEntry::device
  int size = 0;  // TaskConfig::size (lines: number of lines)
  int n = 0, correct = 0;
  double accuracy = 0, ci_lo = 0, ci_hi = 0;  // fractions
  double ratio = 0, bits_per_value = 0;       // means over the items
  double tokens_per_second = 0;               // (prompt + generated) / (prefill + decode) time
  double mean_prompt_tokens = 0;
  double perplexity = 0;                      // ppl: exp(sum nll / sum scored tokens)
  long scored_tokens = 0;
};

// One summary per task configuration and method, in plan order. Every item of the plan
// must be in `items` (zc::Error otherwise).
std::vector<Summary> summarize(const EvalPlan& plan, const std::vector<ItemRecord>& items);

// A table per task configuration; methods matched to a budget get a note below. A
// device column appears where a method ran on another device than the CPU.
std::string format_tables(const std::vector<Summary>& summaries, const std::vector<BudgetMatch>& matches);

struct RunInfo {
  std::string version;                    // "zipcache 0.1.0"
  std::vector<std::string> command_line;  // argv
  std::vector<std::string> plots;         // files written
};
nlohmann::json results_json(const EvalPlan& plan, const EvalRun& run, const std::vector<Summary>& summaries,
                            const RunInfo& info);

}  // namespace zc::eval
