// `zipcache eval` options and how they become an eval::EvalPlan.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "eval/plan.h"
#include "model_options.h"
#include "tokenizer/tokenizer.h"

namespace zc::app {

struct EvalOptions {
  ModelOptions model;
  std::string tasks;  // comma-separated; empty: see resolve_tasks
  int items = 50;
  std::vector<int> lines = {50, 100, 200};
  std::vector<int> passkey_tokens = {1000, 2000, 4000};
  std::vector<int> kv_pairs = {50, 100, 200};
  std::vector<int> vartrack_tokens = {1000, 2000};
  int max_new = 0;  // 0: each task's default
  std::string gsm8k_file;
  int shots = 8;
  std::string text_file;
  int ppl_context = 512, ppl_prefix = 0;
  std::string jsonl_file, match = "exact";
  std::string words_file, filler_file;
  std::string budget_from;
  uint64_t seed = 1;
  std::string out = "eval-results";
  std::string device = "cpu";  // cuda: the methods the GPU implements run there
  double kv_mem_gib = 0;       // --device cuda: the KV block pool (0: GpuSession's default)
  bool progress = false, no_plots = false;
  std::string gnuplot = "gnuplot";
};

// The method set run when no --kv is given.
const std::vector<std::string>& default_eval_methods();

// --kv specs (or the default set) -> methods, with budget matching: "SPEC@REF" matches
// SPEC's budget to REF; --budget-from REF does so for every h2o/mikv spec that sets no
// budget itself (the default set matches h2o and mikv to zipcache). References first.
std::vector<eval::MethodEntry> build_methods(const EvalOptions& o);

// data/eval/words.json, found as the bundled model is (find_bundled).
std::string default_words_path();

// The whole plan; reads the files the tasks need.
eval::EvalPlan build_plan(const EvalOptions& o, const std::string& model_dir, const tok::Tokenizer& tokenizer);

}  // namespace zc::app
