#include "eval_plan.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "eval/calibrate.h"

namespace zc::app {

namespace fs = std::filesystem;

const std::vector<std::string>& default_eval_methods() {
  static const std::vector<std::string> m = {"fp16", "kivi2", "kivi4", "zipcache", "h2o", "mikv"};
  return m;
}

std::vector<eval::MethodEntry> build_methods(const EvalOptions& o) {
  const auto& specs = o.model.kv.empty() ? default_eval_methods() : o.model.kv;
  const std::string budget_from = !o.budget_from.empty() ? o.budget_from : o.model.kv.empty() ? "zipcache" : "";
  std::vector<eval::MethodEntry> plain, matched;
  std::set<std::string> seen;
  for (const auto& spec : specs) {
    if (!seen.insert(spec).second) fail("--kv '{}' is given twice", spec);
    const size_t at = spec.find('@');
    eval::MethodEntry e;
    e.spec = spec;
    const std::string base = spec.substr(0, at);
    e.config = kv::parse_method(base);
    const bool sets_knob = eval::has_budget_knob(e.config) &&
                           base.find(eval::knob_option(e.config) + "=") != std::string::npos;
    if (at != std::string::npos) {
      e.match_to = spec.substr(at + 1);
      eval::knob_option(e.config);  // an error for methods without a budget
      if (sets_knob)
        fail("--kv '{}': '{}=' is what matching to '{}' sets; leave it out", spec, eval::knob_option(e.config), e.match_to);
    } else if (!budget_from.empty() && eval::has_budget_knob(e.config) && !sets_knob) {
      e.match_to = budget_from;
    }
    (e.match_to.empty() ? plain : matched).push_back(std::move(e));
  }
  for (const auto& m : matched) {
    const bool found = std::any_of(plain.begin(), plain.end(), [&](const auto& p) { return p.spec == m.match_to; });
    if (!found)
      fail("--kv '{}': the method to match, '{}', is not among the --kv methods (or is itself matched)", m.spec,
           m.match_to);
  }
  plain.insert(plain.end(), matched.begin(), matched.end());
  return plain;
}

std::string default_words_path() {
  const std::string path = find_bundled("data/eval/words.json");
  if (path.empty()) fail("the word lists data/eval/words.json were not found beside the program; give --words FILE");
  return path;
}

namespace {

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read the {}", path, what);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

eval::EvalPlan build_plan(const EvalOptions& o, const std::string& model_dir, const tok::Tokenizer& tokenizer) {
  eval::EvalPlan plan;
  plan.model_dir = fs::weakly_canonical(fs::absolute(model_dir)).string();
  plan.seed = o.seed;
  plan.methods = build_methods(o);

  std::vector<std::string> names = split_list(o.tasks);
  if (o.tasks.empty()) {
    if (!o.gsm8k_file.empty()) names.push_back("gsm8k");
    if (!o.text_file.empty()) names.push_back("ppl");
    if (!o.jsonl_file.empty()) names.push_back("jsonl");
    if (names.empty()) names = {"lines", "passkey", "kv", "vartrack"};
  }
  if (names.empty()) fail("--tasks names no task");
  const std::string new_suffix = o.max_new > 0 ? fmt::format(",new={}", o.max_new) : "";
  std::set<eval::TaskKind> done;
  for (const auto& name : names) {
    const eval::TaskKind kind = eval::parse_task(name);
    if (!done.insert(kind).second) fail("--tasks names '{}' twice", name);
    eval::TaskConfig base;
    base.kind = kind;
    base.max_new = o.max_new > 0 ? o.max_new : eval::default_max_new(kind);
    const bool from_file = kind == eval::TaskKind::Gsm8k || kind == eval::TaskKind::Jsonl ||
                           kind == eval::TaskKind::Perplexity;
    if (!from_file && o.items < 1) fail("--items must be at least 1 for the generated task {}", name);
    // Up to --items of what the file holds (all of it with --items 0).
    const auto cap = [&](size_t available) { return int(o.items > 0 ? std::min(available, size_t(o.items)) : available); };
    const auto sizes = [&](const std::vector<int>& list, const char* option, const char* prefix) {
      if (list.empty()) fail("{} is empty", option);
      for (int v : list) {
        if (v < 1) fail("{}: {} is not a positive size", option, v);
        eval::TaskConfig t = base;
        t.size = v, t.items = o.items;
        t.params = fmt::format("{}={}", prefix, v) + new_suffix;
        plan.tasks.push_back(t);
      }
    };
    switch (kind) {
      case eval::TaskKind::Lines: {
        const std::string words = o.words_file.empty() ? default_words_path() : o.words_file;
        plan.words = std::make_shared<eval::WordLists>(eval::load_words(words));
        sizes(o.lines, "--lines", "lines");
        break;
      }
      case eval::TaskKind::Passkey: sizes(o.passkey_tokens, "--passkey-tokens", "tokens"); break;
      case eval::TaskKind::Kv: sizes(o.kv_pairs, "--pairs", "pairs"); break;
      case eval::TaskKind::Vartrack: {
        const size_t first = plan.tasks.size();
        sizes(o.vartrack_tokens, "--vartrack-tokens", "tokens");
        if (!o.filler_file.empty()) {
          auto filler = std::make_shared<eval::Filler>(eval::load_filler(o.filler_file));
          for (size_t i = first; i < plan.tasks.size(); ++i)
            plan.tasks[i].filler = filler, plan.tasks[i].params += ",filler=" + o.filler_file;
        }
        break;
      }
      case eval::TaskKind::Gsm8k: {
        if (o.gsm8k_file.empty()) fail("task gsm8k needs --gsm8k FILE (the official test.jsonl)");
        base.gsm8k = std::make_shared<std::vector<eval::GsmProblem>>(eval::load_gsm8k(o.gsm8k_file));
        base.shots = o.shots;
        if (base.gsm8k->size() <= size_t(o.shots))
          fail("{}: {} problems leave none to score after --shots {}", o.gsm8k_file, base.gsm8k->size(), o.shots);
        base.items = cap(base.gsm8k->size() - size_t(o.shots));
        base.params = fmt::format("shots={},file={}", o.shots, o.gsm8k_file) + new_suffix;
        plan.tasks.push_back(base);
        break;
      }
      case eval::TaskKind::Jsonl: {
        if (o.jsonl_file.empty()) fail("task jsonl needs --jsonl FILE");
        base.jsonl = std::make_shared<std::vector<eval::PromptItem>>(eval::load_prompt_jsonl(o.jsonl_file));
        base.match = eval::parse_match(o.match);
        base.items = cap(base.jsonl->size());
        base.params = fmt::format("match={},file={}", o.match, o.jsonl_file) + new_suffix;
        plan.tasks.push_back(base);
        break;
      }
      case eval::TaskKind::Perplexity: {
        if (o.text_file.empty()) fail("task ppl needs --text FILE");
        base.ppl_tokens = std::make_shared<std::vector<int32_t>>(tokenizer.encode(read_file(o.text_file, "text file"), false));
        base.ppl_context = o.ppl_context;
        base.ppl_prefix = o.ppl_prefix > 0 ? o.ppl_prefix : o.ppl_context / 2;
        if (base.ppl_prefix >= base.ppl_context)
          fail("--ppl-prefix {} must be smaller than --ppl-ctx {}", base.ppl_prefix, base.ppl_context);
        const size_t windows = base.ppl_tokens->size() / size_t(o.ppl_context);
        if (windows == 0)
          fail("{}: {} tokens, fewer than one window of --ppl-ctx {}", o.text_file, base.ppl_tokens->size(), o.ppl_context);
        base.items = cap(windows);
        base.max_new = 0;
        base.params = fmt::format("ctx={},prefix={},file={}", base.ppl_context, base.ppl_prefix, o.text_file);
        plan.tasks.push_back(base);
        break;
      }
    }
  }
  return plan;
}

}  // namespace zc::app
