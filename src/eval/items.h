// One item of a task configuration: building its prompt (seeded, sized to the
// configuration) and running it through the model with one KV method.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "eval/plan.h"
#include "eval/records.h"
#include "model/forward.h"
#include "tokenizer/tokenizer.h"

namespace zc::eval {

struct PreparedItem {
  uint64_t item_seed = 0;
  TaskItem text;                     // prompt, trained answer, expected value
  std::vector<std::string> answers;  // jsonl: every accepted answer
  std::vector<int32_t> tokens;       // the prompt with BOS, or the perplexity window
};

// Item `index` of `task`. Synthetic items draw from zc::Rng(item_seed(seed, task, index));
// passkey and vartrack take the longest prompt whose token count (BOS included) is at
// most task.size, found by bisection on the filler length (as tools/train/eval.py).
// zc::Error when the prompt and the generated tokens do not fit `context`.
PreparedItem prepare_item(const EvalPlan& plan, const TaskConfig& task, const tok::Tokenizer& tokenizer,
                          int index, int context);

// Greedy generation (or one perplexity window) through `method`, scored, on a decoder
// from `decoders` (null: the CPU model's). Fills everything of the record but the key
// fields (model, task, params, method, index, seed, device).
ItemRecord run_item(const model::Model& model, const tok::Tokenizer& tokenizer, const TaskConfig& task,
                    const PreparedItem& item, const kv::MethodConfig& method,
                    const engine::DecoderFactory* decoders = nullptr);

}  // namespace zc::eval
