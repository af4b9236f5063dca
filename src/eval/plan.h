// What an eval run does: task configurations (a task at one size) times KV methods
// times items. The command line builds it (apps/zipcache/cmd_eval.cpp); run_eval
// executes it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eval/datasets.h"
#include "eval/prompts.h"
#include "eval/scoring.h"
#include "kv/method.h"

namespace zc::eval {

struct TaskConfig {
  TaskKind kind = TaskKind::Lines;
  // lines: number of lines; kv: number of key draws; passkey, vartrack: the prompt's
  // target length in tokens (BOS included; the longest prompt that fits is used).
  int size = 0;
  int items = 0;    // items scored
  int max_new = 0;  // tokens generated per item (not used by ppl)
  std::string params;  // identifies the configuration in keys and tables: "lines=100"
  // Read from files, shared by the configurations of one task.
  std::shared_ptr<const std::vector<GsmProblem>> gsm8k;  // shots first, then scored items
  int shots = 0;
  std::shared_ptr<const std::vector<PromptItem>> jsonl;
  Match match = Match::Exact;
  std::shared_ptr<const std::vector<int32_t>> ppl_tokens;  // the whole text, no BOS
  int ppl_context = 512, ppl_prefix = 0;                   // windows, as engine::perplexity
  std::shared_ptr<const Filler> filler;                   // vartrack
};

// Default tokens generated per item: enough for the trained answers (as
// tools/train/eval.py), and for a GSM8k chain of thought.
int default_max_new(TaskKind kind);

struct MethodEntry {
  std::string spec;         // as written; the key of its results
  kv::MethodConfig config;  // parsed (without the "@REF" suffix)
  // The spec of the method whose measured compression this one is matched to: the H2O
  // budget or the MiKV saliency ratio is searched so that the measured ratio on the
  // first item equals the reference's ratio on that item. Empty: run as given.
  std::string match_to;
  // Where its items run: "cpu", or "cuda" (RunHooks::decoders makes the decoders).
  std::string device = "cpu";
};

struct EvalPlan {
  std::string model_dir;  // absolute; part of every item key
  uint64_t seed = 1;
  std::vector<TaskConfig> tasks;
  std::vector<MethodEntry> methods;  // references before the methods matched to them
  std::shared_ptr<const WordLists> words;  // lines
};

}  // namespace zc::eval
