// Tasks read from files: GSM8k's official test.jsonl (few-shot chain of thought) and
// user JSONL sets of {"prompt": ..., "answer": ...}.
#pragma once
#include <span>
#include <string>
#include <vector>

namespace zc::eval {

struct GsmProblem {
  std::string question;
  std::string solution;  // the worked solution, calculator annotations <<...>> removed
  std::string answer;    // the normalized number after "####"
};

// Reads one {"question": ..., "answer": "... #### N"} object per line (blank lines
// skipped). zc::Error names file:line and the field for anything else.
std::vector<GsmProblem> load_gsm8k(const std::string& path);

// The chain-of-thought few-shot prompt: for each shot
//   "Question: {q}\nAnswer: {solution} The answer is {N}.\n\n"
// then "Question: {question}\nAnswer:". Generation stops at a blank line.
std::string gsm8k_prompt(std::span<const GsmProblem> shots, const std::string& question);

struct PromptItem {
  std::string prompt;
  std::vector<std::string> answers;  // any of them counts
};

// {"prompt": string, "answer": string | number | [string | number, ...]} per line.
std::vector<PromptItem> load_prompt_jsonl(const std::string& path);

}  // namespace zc::eval
