#include "eval/runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "core/error.h"
#include "eval/calibrate.h"
#include "eval/items.h"

namespace zc::eval {

EvalRun run_eval(const model::Model& model, const tok::Tokenizer& tokenizer, const EvalPlan& plan,
                 ItemStore& store, const RunHooks& hooks) {
  EvalRun run;
  const int context = model.config().max_position_embeddings;
  int total = 0;
  for (const auto& t : plan.tasks) total += t.items * int(plan.methods.size());
  int done = 0;
  double seconds = 0;
  const auto log = [&](const std::string& s) {
    if (hooks.log) hooks.log(s);
  };

  for (const auto& task : plan.tasks) {
    const std::string name = task_name(task.kind);
    std::map<int, PreparedItem> prepared;  // built once, shared by the methods
    const auto item = [&](int index) -> const PreparedItem& {
      auto it = prepared.find(index);
      if (it == prepared.end())
        it = prepared.emplace(index, prepare_item(plan, task, tokenizer, index, context)).first;
      return it->second;
    };
    const auto key = [&](const MethodEntry& m, int index) {
      return item_key(plan.model_dir, name, task.params, m.spec, index, plan.seed, m.device);
    };
    const auto timed_run = [&](const MethodEntry& m, const kv::MethodConfig& cfg, int index) {
      const bool cpu = m.device == "cpu";
      if (!cpu && !hooks.decoders) fail("--kv '{}': no decoders for device '{}'", m.spec, m.device);
      const auto start = std::chrono::steady_clock::now();
      ItemRecord r = run_item(model, tokenizer, task, item(index), cfg, cpu ? nullptr : &hooks.decoders);
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      return r;
    };

    for (const auto& m : plan.methods) {
      kv::MethodConfig cfg = m.config;
      if (!m.match_to.empty()) {
        BudgetMatch match{name, task.params, m.spec, m.match_to, "", 0, 0, false, 0};
        const auto ref_entry = std::find_if(plan.methods.begin(), plan.methods.end(),
                                            [&](const MethodEntry& e) { return e.spec == m.match_to; });
        if (ref_entry == plan.methods.end()) fail("--kv '{}': the reference '{}' is not in the plan", m.spec, m.match_to);
        const ItemRecord* ref = store.find(key(*ref_entry, 0));
        if (!ref) fail("--kv '{}': the reference '{}' has no result for {} {} item 0", m.spec, m.match_to, name, task.params);
        match.target_ratio = ref->ratio;
        for (int i = 0; i < task.items && match.resolved.empty(); ++i)
          if (const ItemRecord* r = store.find(key(m, i))) match.resolved = r->resolved;
        if (match.resolved.empty()) {
          log(fmt::format("{} {}: matching {} to the measured {:.3f}x of {} ...", name, task.params,
                          m.spec, ref->ratio, m.match_to));
          const std::string base = m.spec.substr(0, m.spec.find('@'));
          const Calibration cal = match_budget(base, m.config, ref->ratio, [&](const kv::MethodConfig& c) {
            return timed_run(m, c, 0).ratio;
          });
          match.resolved = cal.resolved;
          match.calibration_runs = cal.runs;
          log(fmt::format("{} {}: {} runs as {} ({:.3f}x; target {:.3f}x{}) after {} runs", name,
                          task.params, m.spec, cal.resolved, cal.achieved_ratio, cal.target_ratio,
                          cal.reached ? "" : ", not reachable: nearest end", cal.runs));
        }
        cfg = kv::parse_method(match.resolved);
        run.matches.push_back(match);
      } else {
        cfg.label = m.spec;
      }

      bool warm = m.device == "cpu" || !hooks.warm_up;
      for (int i = 0; i < task.items; ++i) {
        const std::string k = key(m, i);
        if (const ItemRecord* stored = store.find(k)) {
          run.items.push_back(*stored);
          ++run.reused;
        } else {
          if (!warm) {
            hooks.warm_up(cfg, item(i).tokens);
            warm = true;
          }
          ItemRecord r = timed_run(m, cfg, i);
          r.model = plan.model_dir, r.task = name, r.params = task.params, r.method = m.spec, r.device = m.device;
          r.index = i, r.seed = plan.seed;
          store.append(r);
          run.items.push_back(std::move(r));
          ++run.computed;
        }
        if (!m.match_to.empty() && i == 0) {
          auto& match = run.matches.back();
          match.achieved_ratio = run.items.back().ratio;
          match.reached = std::abs(match.achieved_ratio - match.target_ratio) <= 0.01 * match.target_ratio;
        }
        ++done;
        if (hooks.progress)
          hooks.progress({done, total, run.computed, seconds, fmt::format("{} {} {} #{}", name, task.params, m.spec, i)});
      }
    }
  }
  return run;
}

}  // namespace zc::eval
