// Exact scoring: what each task takes from the model's output, and the comparison.
//   lines     the number after the first "is <" (the trained answer reads
//             " The <REGISTER_CONTENT> in line x is <N>."), else the first integer
//   passkey   the first integer of the output
//   kv        the text inside the first pair of double quotes, else the first run of
//             hex digits; compared exactly with the 8-digit value
//   vartrack  the integer after "The answer is", else the last integer of the output
//   gsm8k     the last number of the output (commas, a leading $ or minus sign and
//             decimals allowed), compared as a normalized number with the number after
//             "####" in the data
//   jsonl     the output trimmed equals an answer trimmed (exact), or contains it
// An output from which nothing can be extracted is wrong.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zc::eval {

enum class TaskKind { Lines, Passkey, Kv, Vartrack, Gsm8k, Perplexity, Jsonl };
std::string task_name(TaskKind kind);  // "lines", "passkey", "kv", "vartrack", "gsm8k", "ppl", "jsonl"
TaskKind parse_task(const std::string& name);  // zc::Error for an unknown name

enum class Match { Exact, Contains };
Match parse_match(const std::string& name);  // "exact" or "contains"

struct Score {
  bool correct = false;
  std::string extracted;  // what was taken from the output ("" when nothing)
};

std::optional<std::string> first_integer(std::string_view text);
std::optional<std::string> last_integer(std::string_view text);
std::optional<std::string> lines_answer(std::string_view output);
std::optional<std::string> kv_answer(std::string_view output);
std::optional<std::string> vartrack_answer(std::string_view output);

// "1,234.50" -> "1234.5", "$-3" and "-$3" -> "-3", "007" -> "7", "-0.0" -> "0";
// nullopt when the text is not a number of that form.
std::optional<std::string> normalize_number(std::string_view text);
// The last number of a model's output, normalized.
std::optional<std::string> last_number(std::string_view output);
// The normalized number after "####" of a GSM8k answer field; nullopt when absent.
std::optional<std::string> gsm8k_reference(std::string_view answer_field);

// Scores a generated output against the expected value of the synthetic tasks and
// GSM8k (expected: the value, e.g. "38125" or a normalized number).
Score score_output(TaskKind kind, std::string_view output, const std::string& expected);
// The JSONL task: any of the answers.
Score score_jsonl(std::string_view output, const std::vector<std::string>& answers, Match match);

}  // namespace zc::eval
