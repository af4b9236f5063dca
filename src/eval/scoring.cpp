#include "eval/scoring.h"

#include <cctype>

#include "core/error.h"

namespace zc::eval {
namespace {

bool digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view s) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// The span of the number that starts with the digit at `i`: digits, commas between
// digits, and one decimal part.
size_t number_end(std::string_view t, size_t i) {
  while (i < t.size() && (digit(t[i]) || (t[i] == ',' && i + 1 < t.size() && digit(t[i + 1])))) ++i;
  if (i + 1 < t.size() && t[i] == '.' && digit(t[i + 1])) {
    ++i;
    while (i < t.size() && digit(t[i])) ++i;
  }
  return i;
}

}  // namespace

std::string task_name(TaskKind kind) {
  switch (kind) {
    case TaskKind::Lines: return "lines";
    case TaskKind::Passkey: return "passkey";
    case TaskKind::Kv: return "kv";
    case TaskKind::Vartrack: return "vartrack";
    case TaskKind::Gsm8k: return "gsm8k";
    case TaskKind::Perplexity: return "ppl";
    case TaskKind::Jsonl: return "jsonl";
  }
  return "unknown";
}

TaskKind parse_task(const std::string& name) {
  for (TaskKind k : {TaskKind::Lines, TaskKind::Passkey, TaskKind::Kv, TaskKind::Vartrack,
                     TaskKind::Gsm8k, TaskKind::Perplexity, TaskKind::Jsonl})
    if (task_name(k) == name) return k;
  fail("unknown task '{}' (expected lines, passkey, kv, vartrack, gsm8k, ppl or jsonl)", name);
}

Match parse_match(const std::string& name) {
  if (name == "exact") return Match::Exact;
  if (name == "contains") return Match::Contains;
  fail("--match '{}': expected exact or contains", name);
}

std::optional<std::string> first_integer(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (!digit(text[i])) continue;
    size_t j = i;
    while (j < text.size() && digit(text[j])) ++j;
    return std::string(text.substr(i, j - i));
  }
  return std::nullopt;
}

std::optional<std::string> last_integer(std::string_view text) {
  for (size_t j = text.size(); j-- > 0;) {
    if (!digit(text[j])) continue;
    size_t i = j;
    while (i > 0 && digit(text[i - 1])) --i;
    return std::string(text.substr(i, j + 1 - i));
  }
  return std::nullopt;
}

std::optional<std::string> lines_answer(std::string_view output) {
  const size_t at = output.find("is <");
  if (at != std::string_view::npos) {
    const size_t start = at + 4;
    size_t end = start;
    while (end < output.size() && digit(output[end])) ++end;
    if (end > start) return std::string(output.substr(start, end - start));
  }
  return first_integer(output);
}

std::optional<std::string> kv_answer(std::string_view output) {
  const size_t open = output.find('"');
  if (open != std::string_view::npos) {
    const size_t close = output.find('"', open + 1);
    return std::string(output.substr(open + 1, close == std::string_view::npos ? std::string_view::npos
                                                                              : close - open - 1));
  }
  const auto hex = [](char c) { return digit(c) || (c >= 'a' && c <= 'f'); };
  for (size_t i = 0; i < output.size(); ++i) {
    if (!hex(output[i])) continue;
    size_t j = i;
    while (j < output.size() && hex(output[j])) ++j;
    return std::string(output.substr(i, j - i));
  }
  return std::nullopt;
}

std::optional<std::string> vartrack_answer(std::string_view output) {
  constexpr std::string_view kMarker = "The answer is";
  const size_t at = output.find(kMarker);
  if (at != std::string_view::npos) {
    size_t start = at + kMarker.size();
    while (start < output.size() && output[start] == ' ') ++start;
    size_t end = start;
    while (end < output.size() && digit(output[end])) ++end;
    if (end > start) return std::string(output.substr(start, end - start));
  }
  return last_integer(output);
}

std::optional<std::string> normalize_number(std::string_view text) {
  text = trim(text);
  bool negative = false, dollar = false;
  while (!text.empty() && (text[0] == '-' || text[0] == '$')) {
    bool& seen = text[0] == '-' ? negative : dollar;
    if (seen) return std::nullopt;
    seen = true;
    text.remove_prefix(1);
  }
  if (text.empty() || !digit(text[0]) || number_end(text, 0) != text.size()) return std::nullopt;
  std::string whole, frac;
  const size_t dot = text.find('.');
  for (char c : text.substr(0, dot))
    if (c != ',') whole += c;
  if (dot != std::string_view::npos) frac = std::string(text.substr(dot + 1));
  const size_t nz = whole.find_first_not_of('0');
  whole = nz == std::string::npos ? "0" : whole.substr(nz);
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  std::string out = whole + (frac.empty() ? "" : "." + frac);
  if (negative && out != "0") out.insert(out.begin(), '-');
  return out;
}

std::optional<std::string> last_number(std::string_view output) {
  std::optional<std::string> last;
  for (size_t i = 0; i < output.size();) {
    if (!digit(output[i])) {
      ++i;
      continue;
    }
    // A sign and a dollar sign just before the digits, in either order.
    size_t start = i;
    for (int k = 0; k < 2 && start > 0 && (output[start - 1] == '-' || output[start - 1] == '$'); ++k)
      --start;
    const size_t end = number_end(output, i);
    last = normalize_number(output.substr(start, end - start));
    i = end;
  }
  return last;
}

std::optional<std::string> gsm8k_reference(std::string_view answer_field) {
  const size_t at = answer_field.rfind("####");
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = trim(answer_field.substr(at + 4));
  if (!rest.empty() && rest.back() == '.') rest.remove_suffix(1);
  return normalize_number(rest);
}

Score score_output(TaskKind kind, std::string_view output, const std::string& expected) {
  std::optional<std::string> got;
  switch (kind) {
    case TaskKind::Lines: got = lines_answer(output); break;
    case TaskKind::Passkey: got = first_integer(output); break;
    case TaskKind::Kv: got = kv_answer(output); break;
    case TaskKind::Vartrack: got = vartrack_answer(output); break;
    case TaskKind::Gsm8k: got = last_number(output); break;
    case TaskKind::Perplexity:
    case TaskKind::Jsonl: fail("score_output: task {} is not scored by extraction", task_name(kind));
  }
  Score s;
  s.extracted = got.value_or("");
  s.correct = got.has_value() && *got == expected;
  return s;
}

Score score_jsonl(std::string_view output, const std::vector<std::string>& answers, Match match) {
  const std::string_view out = trim(output);
  Score s;
  s.extracted = std::string(out);
  for (const auto& a : answers) {
    const std::string_view want = trim(a);
    if (match == Match::Exact ? out == want : (!want.empty() && out.find(want) != std::string_view::npos))
      s.correct = true;
  }
  return s;
}

}  // namespace zc::eval
