#include "eval/report.h"

#include <cmath>
#include <map>

#include <fmt/format.h>

#include "core/error.h"
#include "eval/stats.h"

namespace zc::eval {

std::vector<Summary> summarize(const EvalPlan& plan, const std::vector<ItemRecord>& items) {
  std::map<std::string, const ItemRecord*> by_key;
  for (const auto& r : items) by_key[r.key()] = &r;
  std::vector<Summary> out;
  for (const auto& task : plan.tasks) {
    const std::string name = task_name(task.kind);
    for (const auto& m : plan.methods) {
      Summary s;
      s.task = name, s.params = task.params, s.method = m.spec, s.device = m.device, s.size = task.size;
      double tokens = 0, secs = 0, nll = 0, prompt = 0;
      for (int i = 0; i < task.items; ++i) {
        const auto it = by_key.find(item_key(plan.model_dir, name, task.params, m.spec, i, plan.seed, m.device));
        if (it == by_key.end()) fail("summary: {} {} {} item {} has no result", name, task.params, m.spec, i);
        const ItemRecord& r = *it->second;
        s.resolved = r.resolved;
        ++s.n;
        s.correct += r.correct ? 1 : 0;
        s.ratio += r.ratio, s.bits_per_value += r.bits_per_value;
        tokens += r.prompt_tokens + r.generated_tokens;
        secs += r.prefill_seconds + r.decode_seconds;
        prompt += r.prompt_tokens;
        nll += r.nll, s.scored_tokens += r.scored_tokens;
      }
      if (s.n > 0) {
        s.accuracy = double(s.correct) / s.n;
        s.ratio /= s.n, s.bits_per_value /= s.n, s.mean_prompt_tokens = prompt / s.n;
      }
      const Interval ci = wilson(s.correct, s.n);
      s.ci_lo = ci.lo, s.ci_hi = ci.hi;
      s.tokens_per_second = secs > 0 ? tokens / secs : 0;
      s.perplexity = s.scored_tokens > 0 ? std::exp(nll / double(s.scored_tokens)) : 0;
      out.push_back(s);
    }
  }
  return out;
}

std::string format_tables(const std::vector<Summary>& summaries, const std::vector<BudgetMatch>& matches) {
  std::string text;
  for (size_t start = 0; start < summaries.size();) {
    size_t end = start;
    while (end < summaries.size() && summaries[end].task == summaries[start].task &&
           summaries[end].params == summaries[start].params)
      ++end;
    const Summary& first = summaries[start];
    const bool ppl = first.task == "ppl";
    size_t width = 6;
    bool devices = false;  // a method off the CPU: say where each ran
    for (size_t i = start; i < end; ++i) {
      width = std::max(width, summaries[i].method.size());
      devices = devices || summaries[i].device != "cpu";
    }
    text += fmt::format("{} {}: {} {}, {:.0f} prompt tokens on average\n", first.task, first.params, first.n,
                        ppl ? "windows" : "items", first.mean_prompt_tokens);
    text += fmt::format("{:<{}}  {:>8}  {:>7}  {:>10}  {:>15}  {:>9}{}\n", "method", width, "bits/val", "ratio",
                        ppl ? "perplexity" : "accuracy", ppl ? "scored tokens" : "95% CI", "tok/s",
                        devices ? "  device" : "");
    for (size_t i = start; i < end; ++i) {
      const Summary& s = summaries[i];
      const std::string score = ppl ? fmt::format("{:.4f}", s.perplexity) : fmt::format("{:.1f}%", 100 * s.accuracy);
      const std::string ci = ppl ? std::to_string(s.scored_tokens)
                                 : fmt::format("[{:.1f}, {:.1f}]", 100 * s.ci_lo, 100 * s.ci_hi);
      text += fmt::format("{:<{}}  {:>8.3f}  {:>6.2f}x  {:>10}  {:>15}  {:>9.1f}{}\n", s.method, width,
                          s.bits_per_value, s.ratio, score, ci, s.tokens_per_second,
                          devices ? "  " + s.device : "");
    }
    for (const auto& m : matches)
      if (m.task == first.task && m.params == first.params)
        text += fmt::format("  {} ran as {}: {:.3f}x on item 0, matched to {} at {:.3f}x{}\n", m.method,
                            m.resolved, m.achieved_ratio, m.reference, m.target_ratio,
                            m.reached ? "" : " (not reachable within 1%: nearest setting)");
    text += "\n";
    start = end;
  }
  return text;
}

nlohmann::json results_json(const EvalPlan& plan, const EvalRun& run, const std::vector<Summary>& summaries,
                            const RunInfo& info) {
  nlohmann::json j;
  j["version"] = info.version;
  j["command_line"] = info.command_line;
  j["model"] = plan.model_dir;
  j["seed"] = plan.seed;
  j["tasks"] = nlohmann::json::array();
  for (const auto& t : plan.tasks)
    j["tasks"].push_back({{"task", task_name(t.kind)}, {"params", t.params}, {"size", t.size},
                          {"items", t.items}, {"max_new", t.max_new}});
  j["methods"] = nlohmann::json::array();
  for (const auto& m : plan.methods)
    j["methods"].push_back({{"spec", m.spec}, {"description", kv::describe(m.config)}, {"match_to", m.match_to},
                            {"device", m.device}});
  j["budget_matches"] = nlohmann::json::array();
  for (const auto& m : run.matches)
    j["budget_matches"].push_back({{"task", m.task}, {"params", m.params}, {"method", m.method},
                                   {"reference", m.reference}, {"resolved", m.resolved},
                                   {"target_ratio", m.target_ratio}, {"achieved_ratio", m.achieved_ratio},
                                   {"reached", m.reached}, {"calibration_runs", m.calibration_runs}});
  j["summaries"] = nlohmann::json::array();
  for (const auto& s : summaries) {
    nlohmann::json x = {{"task", s.task}, {"params", s.params}, {"size", s.size}, {"method", s.method},
                        {"resolved", s.resolved}, {"device", s.device}, {"items", s.n}, {"ratio", s.ratio},
                        {"bits_per_value", s.bits_per_value}, {"tokens_per_second", s.tokens_per_second},
                        {"mean_prompt_tokens", s.mean_prompt_tokens}};
    if (s.task == "ppl") {
      x["perplexity"] = s.perplexity;
      x["scored_tokens"] = s.scored_tokens;
    } else {
      x["correct"] = s.correct;
      x["accuracy"] = s.accuracy;
      x["ci95"] = {s.ci_lo, s.ci_hi};
    }
    j["summaries"].push_back(x);
  }
  j["computed_items"] = run.computed;
  j["reused_items"] = run.reused;
  j["plots"] = info.plots;
  j["items"] = nlohmann::json::array();
  for (const auto& r : run.items) j["items"].push_back(to_json(r));
  return j;
}

}  // namespace zc::eval
