#include "eval/datasets.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/scoring.h"

namespace zc::eval {
namespace {

// Calls fn(json, line number) for every non-blank line of a JSONL file.
template <typename Fn>
void for_each_line(const std::string& path, Fn fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read the file", path);
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      fail("{}:{}: not a JSON object on one line", path, no);
    }
    if (!j.is_object()) fail("{}:{}: not a JSON object", path, no);
    fn(j, no);
  }
}

std::string string_field(const nlohmann::json& j, const char* field, const std::string& path, int no) {
  if (!j.contains(field) || !j[field].is_string())
    fail("{}:{}: field '{}' is missing or not a string", path, no, field);
  return j[field].get<std::string>();
}

std::string trimmed(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

}  // namespace

std::vector<GsmProblem> load_gsm8k(const std::string& path) {
  std::vector<GsmProblem> out;
  for_each_line(path, [&](const nlohmann::json& j, int no) {
    GsmProblem p;
    p.question = trimmed(string_field(j, "question", path, no));
    const std::string answer = string_field(j, "answer", path, no);
    const auto ref = gsm8k_reference(answer);
    if (!ref) fail("{}:{}: field 'answer' has no number after '####'", path, no);
    p.answer = *ref;
    std::string sol = answer.substr(0, answer.rfind("####"));
    for (size_t open; (open = sol.find("<<")) != std::string::npos;) {
      const size_t close = sol.find(">>", open);
      if (close == std::string::npos) break;
      sol.erase(open, close + 2 - open);
    }
    p.solution = trimmed(sol);
    out.push_back(std::move(p));
  });
  if (out.empty()) fail("{}: no problems in the file", path);
  return out;
}

std::string gsm8k_prompt(std::span<const GsmProblem> shots, const std::string& question) {
  std::string s;
  for (const auto& p : shots)
    s += "Question: " + p.question + "\nAnswer: " + p.solution + " The answer is " + p.answer + ".\n\n";
  return s + "Question: " + question + "\nAnswer:";
}

std::vector<PromptItem> load_prompt_jsonl(const std::string& path) {
  std::vector<PromptItem> out;
  for_each_line(path, [&](const nlohmann::json& j, int no) {
    PromptItem item;
    item.prompt = string_field(j, "prompt", path, no);
    if (item.prompt.empty()) fail("{}:{}: field 'prompt' is empty", path, no);
    if (!j.contains("answer")) fail("{}:{}: field 'answer' is missing", path, no);
    const auto& a = j["answer"];
    const auto add = [&](const nlohmann::json& x) {
      if (x.is_string()) item.answers.push_back(x.get<std::string>());
      else if (x.is_number()) item.answers.push_back(x.dump());
      else fail("{}:{}: field 'answer' must be a string, a number or a list of them", path, no);
    };
    if (a.is_array()) {
      for (const auto& x : a) add(x);
    } else {
      add(a);
    }
    if (item.answers.empty()) fail("{}:{}: field 'answer' is an empty list", path, no);
    out.push_back(std::move(item));
  });
  if (out.empty()) fail("{}: no items in the file", path);
  return out;
}

}  // namespace zc::eval
