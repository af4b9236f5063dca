// `zipcache eval`: accuracy of every KV cache method side by side, at measured
// compression, on generated long-context tasks (line retrieval, passkey, key-value
// lookup, variable tracking in the formats the bundled model was trained on), GSM8k,
// perplexity and user JSONL sets. Results go to <out>/items.jsonl item by item (a
// rerun resumes), then tables (stdout, tables.txt), results.json and PNG plots.
// --device cuda runs the methods the GPU implements on the GPU.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include <fmt/format.h>

#include "commands.h"
#include "core/error.h"
#include "eval/plots.h"
#include "eval/progress.h"
#include "eval/report.h"
#include "eval/runner.h"
#include "eval_plan.h"
#include "gpu_decoder.h"
#include "model/forward.h"
#include "tokenizer/tokenizer.h"

namespace zc::app {

namespace {

namespace fs = std::filesystem;

std::vector<std::string> command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string a; std::getline(in, a, '\0');) args.push_back(a);
  return args;
}

// --device cuda: every method the GPU implements runs there, the others (H2O, MiKV,
// fp32, CPU-only options) on the CPU, each said once on stderr; a model the GPU cannot
// serve at all is an error. The session's pool holds the model's whole context in
// fp16 unless --kv-mem says otherwise (each item's cache is freed after it).
std::unique_ptr<GpuSession> place_methods(eval::EvalPlan& plan, const model::Model& model, double kv_mem_gib) {
  const std::string model_reason = GpuSession::unsupported(model.config(), kv::parse_method("fp16"));
  if (!model_reason.empty()) fail("--device cuda: {}", model_reason);
  for (auto& m : plan.methods) {
    const std::string why = GpuSession::unsupported(model.config(), m.config);
    m.device = why.empty() ? "cuda" : "cpu";
    if (!why.empty()) fmt::print(stderr, "zipcache eval: --kv {} runs on the CPU ({})\n", m.spec, why);
  }
  return std::make_unique<GpuSession>(model, model.config().max_position_embeddings,
                                      size_t(kv_mem_gib * 1073741824.0));
}

int run(EvalOptions& o, const std::string& version) {
  check_gib_option("--kv-mem", o.kv_mem_gib, "0 or absent: the model's context in fp16");
  const std::string dir = resolve_model_dir(o.model);
  build_methods(o);  // option errors before the model loads
  const model::Model model = model::Model::load(dir);
  const tok::Tokenizer tokenizer = tok::Tokenizer::from_dir(dir);
  eval::EvalPlan plan = build_plan(o, dir, tokenizer);
  std::unique_ptr<GpuSession> gpu;
  if (o.device == "cuda") gpu = place_methods(plan, model, o.kv_mem_gib);

  fs::create_directories(o.out);
  eval::ItemStore store((fs::path(o.out) / "items.jsonl").string());
  for (const auto& w : store.warnings()) fmt::print(stderr, "zipcache eval: warning: {}\n", w);
  const bool tty = ::isatty(2) == 1;
  eval::RunHooks hooks;
  if (gpu) {
    hooks.decoders = gpu->factory();
    // tok/s without the GPU's one-time costs of each configuration's prompt shapes.
    hooks.warm_up = [&](const kv::MethodConfig& m, std::span<const int32_t> prompt) { gpu->warm_up(m, prompt); };
  }
  bool bar_open = false;
  hooks.log = [&](const std::string& s) {
    fmt::print(stderr, "{}{}\n", bar_open ? "\r\x1b[K" : "", s);
    bar_open = false;
  };
  if (tty || o.progress)
    hooks.progress = [&](const eval::ProgressEvent& e) {
      if (tty)
        fmt::print(stderr, "\r{}\x1b[K", eval::progress_line(e));
      else
        fmt::print(stderr, "{}\n", eval::progress_line(e));
      bar_open = tty;
    };
  const eval::EvalRun result = eval::run_eval(model, tokenizer, plan, store, hooks);
  if (bar_open) fmt::print(stderr, "\n");

  const auto summaries = eval::summarize(plan, result.items);
  const std::string tables = eval::format_tables(summaries, result.matches);
  fmt::print("{}", tables);
  std::ofstream(fs::path(o.out) / "tables.txt") << tables;

  eval::RunInfo info{version, command_line(), {}};
  if (!o.no_plots) {
    const auto plots = eval::write_plots(summaries, o.out, fs::path(plan.model_dir).filename().string(), o.gnuplot);
    if (!plots.warning.empty()) fmt::print(stderr, "zipcache eval: warning: {}\n", plots.warning);
    info.plots = plots.files;
  }
  const fs::path json = fs::path(o.out) / "results.json";
  std::ofstream(json) << eval::results_json(plan, result, summaries, info)
                             .dump(1, ' ', false, nlohmann::json::error_handler_t::replace)
                      << "\n";
  fmt::print("items: {} computed, {} reused from {}\nresults: {}\n", result.computed, result.reused,
             store.path(), json.string());
  for (const auto& p : info.plots) fmt::print("plot: {}\n", p);
  return 0;
}

}  // namespace

Command add_eval_command(CLI::App& app) {
  auto* sub = app.add_subcommand("eval", "Accuracy of KV cache methods side by side, at measured compression");
  auto o = std::make_shared<EvalOptions>();
  add_model_options(sub, o->model);
  sub->footer(
      "Default methods: fp16 kivi2 kivi4 zipcache h2o mikv, with h2o and mikv matched to zipcache's "
      "measured compression. --kv SPEC@REF matches SPEC's budget (h2o budget, mikv ratio) to REF.\n"
      "Default tasks: lines,passkey,kv,vartrack, or the file tasks whose file is given.\n\n" +
      kv::method_help());
  sub->add_option("--tasks", o->tasks, "comma-separated: lines,passkey,kv,vartrack,gsm8k,ppl,jsonl");
  sub->add_option("-n,--items", o->items, "items per task configuration (default 50; file tasks: at most, 0: all)")
      ->check(non_negative_count());
  sub->add_option("--lines", o->lines, "line retrieval: numbers of lines (default 50,100,200)")->delimiter(',');
  sub->add_option("--passkey-tokens", o->passkey_tokens, "passkey: prompt lengths in tokens (default 1000,2000,4000)")->delimiter(',');
  sub->add_option("--pairs", o->kv_pairs, "key-value lookup: numbers of pairs (default 50,100,200)")->delimiter(',');
  sub->add_option("--vartrack-tokens", o->vartrack_tokens, "variable tracking: prompt lengths in tokens (default 1000,2000)")
      ->delimiter(',');
  sub->add_option("--filler", o->filler_file, "variable tracking: filler paragraphs, one per line "
                                               "(default: the passkey garbage sentences)");
  sub->add_option("--words", o->words_file, "line names: {\"adj\": [...], \"noun\": [...]} "
                                             "(default: data/eval/words.json)");
  sub->add_option("--gsm8k", o->gsm8k_file, "GSM8k test.jsonl (question, answer with '#### N')");
  sub->add_option("--shots", o->shots, "GSM8k: few-shot examples, the first items of the file (default 8)")
      ->check(CLI::Range(0, 100));
  sub->add_option("--text", o->text_file, "perplexity: a text file");
  sub->add_option("--ppl-ctx", o->ppl_context, "perplexity: tokens per window (default 512)")->check(CLI::Range(2, 1 << 20));
  sub->add_option("--ppl-prefix", o->ppl_prefix, "perplexity: prefilled tokens per window (default: half)")
      ->check(non_negative_count());
  sub->add_option("--jsonl", o->jsonl_file, "JSONL of {\"prompt\": ..., \"answer\": ...}");
  sub->add_option("--match", o->match, "jsonl scoring: exact or contains")->check(CLI::IsMember({"exact", "contains"}));
  sub->add_option("--max-new", o->max_new, "tokens generated per item (0: the task's default)")
      ->check(non_negative_count());
  sub->add_option("--budget-from", o->budget_from, "match every h2o/mikv budget to this --kv method's compression");
  add_seed_option(sub, "-s,--seed", o->seed, "base seed of the generated items (default 1)");
  sub->add_option("-o,--out", o->out, "output folder (items.jsonl, results.json, tables.txt, plots; default "
                                       "eval-results); a rerun resumes");
  sub->add_option("--device", o->device, "cpu, or cuda: the methods the GPU implements (fp16, kivi2/4, zipcache) "
                                         "run there with bf16 weights, the others on the CPU")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--kv-mem", o->kv_mem_gib, "--device cuda: GiB for the KV block pool (default: the model's "
                                             "context in fp16)");
  sub->add_flag("--progress", o->progress, "progress lines on stderr even when it is not a terminal");
  sub->add_flag("--no-plots", o->no_plots, "do not run gnuplot");
  sub->add_option("--gnuplot", o->gnuplot, "gnuplot program");
  const std::string version = app.version();
  return {sub, [o, version] { return run(*o, version); }};
}

}  // namespace zc::app
