// `zipcache bench`: speed and memory of the KV methods on the GPU, in the spirit of
// llama-bench (issue 4). A model folder or a preset's shape with random weights
// (--synthetic llama3-8b, ...); sweeps of batch size and context; for each method the
// prefill time, decode ms per step, tokens/s, KV bytes from the pool's allocator,
// compression and peak memory; optionally the largest batch whose KV cache fits a
// budget and the throughput there. Output as a table, JSON or CSV. --profile adds,
// per run, the GPU time of each operation of one prefill and a few eager decode steps
// (cuda/engine/op_timer.h; the largest-batch runs: the decode steps only): tables, or a
// "profile" object per run in JSON.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench_cpu.h"
#include "bench_fit.h"
#include "bench_gpu.h"
#include "commands.h"
#include "core/error.h"
#include "model/presets.h"
#include "model_options.h"

namespace zc::app {

namespace {

struct BenchCommand {
  ModelOptions model;
  std::string synthetic;
  std::vector<int> batches = {1, 8};
  std::vector<int> contexts = {4096};
  int gen = 32, reps = 1;
  double kv_mem_gib = 0;     // 0: 90% of the free memory once weights are loaded
  double budget_gib = 0;     // 0: no largest-batch search
  std::string format = "table", out;
  uint64_t seed = 0;
  std::string device = "auto";
  bool profile = false;
  int profile_steps = 5;
  std::vector<std::string> argv;
};

nlohmann::json to_json(const cuda::OpReport& r) {
  nlohmann::json ops = nlohmann::json::array();
  for (const cuda::OpStat& op : r.ops) {
    ops.push_back({{"name", op.name}, {"calls", op.calls}, {"total_ms", op.total_ms}, {"mean_us", op.mean_us()},
                   {"share", r.share(op)}});
  }
  return {{"wall_ms", r.wall_ms}, {"timed_ms", r.timed_ms()}, {"regions", r.regions}, {"ops", ops}};
}

nlohmann::json to_json(const BenchResult& r) {
  nlohmann::json j = {{"method", r.method}, {"batch", r.batch}, {"context", r.context}, {"gen", r.gen},
                      {"decode_ms", r.decode_ms}, {"decode_p10_ms", r.decode_p10_ms},
                      {"decode_p90_ms", r.decode_p90_ms}, {"decode_mean_ms", r.decode_mean_ms},
                      {"tokens_per_s", r.tokens_per_s},
                      {"decode_eager_ms", r.decode_eager_ms}, {"decode_samples_ms", r.decode_samples_ms},
                      {"kv_bytes", r.kv_bytes}, {"kv_fp16_bytes", r.kv_fp16_bytes}, {"kv_peak_bytes", r.kv_peak_bytes},
                      {"kv_peak_timed_bytes", r.kv_peak_timed_bytes},
                      {"compression", r.compression()}, {"weight_bytes", r.weight_bytes},
                      {"workspace_bytes", r.workspace_bytes}, {"peak_bytes", r.peak_bytes},
                      {"cache_filled_by", r.synthetic_fill ? "random k/v quantized (no prefill)" : "prefill"}};
  j["prefill_s"] = r.prefill_s >= 0 ? nlohmann::json(r.prefill_s) : nlohmann::json(nullptr);
  if (r.profile) {
    nlohmann::json prefill = to_json(r.profile->prefill), decode = to_json(r.profile->decode);
    prefill["tokens"] = r.profile->prefill_tokens;
    decode["steps"] = r.profile->decode_steps;
    decode["batch"] = r.batch;
    decode["cuda_graphs"] = false;
    j["profile"] = {{"decode", decode}};
    if (r.profile->prefill_tokens > 0) j["profile"]["prefill"] = prefill;  // none at a largest batch
  }
  return j;
}

std::string csv(const std::vector<BenchResult>& rows, const std::string& kind) {
  std::string s = "kind,method,batch,context,gen,prefill_s,decode_ms,decode_p10_ms,decode_p90_ms,decode_mean_ms,"
                  "decode_eager_ms,tokens_per_s,kv_bytes,kv_fp16_bytes,compression,peak_bytes\n";
  for (const auto& r : rows) {
    s += fmt::format("{},{},{},{},{},{},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.2f},{},{},{:.4f},{}\n", kind, r.method,
                     r.batch, r.context, r.gen, r.prefill_s >= 0 ? fmt::format("{:.4f}", r.prefill_s) : "", r.decode_ms,
                     r.decode_p10_ms, r.decode_p90_ms, r.decode_mean_ms, r.decode_eager_ms, r.tokens_per_s, r.kv_bytes,
                     r.kv_fp16_bytes, r.compression(), r.peak_bytes);
  }
  return s;
}

std::string table(const std::vector<BenchResult>& rows) {
  // decode ms: the median step; mean ms: every step (tok/s comes from it); no-graph ms:
  // the median step without CUDA graphs.
  std::string s =
      fmt::format("| {:<24} | {:>5} | {:>7} | {:>9} | {:>9} | {:>9} | {:>11} | {:>9} | {:>10} | {:>6} | {:>9} |\n",
                  "method", "batch", "context", "prefill s", "decode ms", "mean ms", "no-graph ms", "tok/s", "KV",
                  "ratio", "peak mem");
  s += "|--------------------------|-------|---------|-----------|-----------|-----------|-------------|-----------|------------|--------|-----------|\n";
  for (const auto& r : rows) {
    s += fmt::format("| {:<24} | {:>5} | {:>7} | {:>9} | {:>9.2f} | {:>9.2f} | {:>11} | {:>9.1f} | {:>10} | {:>5.2f}x | {:>9} |\n",
                     r.method, r.batch, r.context, r.prefill_s >= 0 ? fmt::format("{:.3f}", r.prefill_s) : "-",
                     r.decode_ms, r.decode_mean_ms, r.decode_eager_ms > 0 ? fmt::format("{:.2f}", r.decode_eager_ms) : "-",
                     r.tokens_per_s, human_bytes(double(r.kv_bytes)), r.compression(), human_bytes(double(r.peak_bytes)));
  }
  return s;
}

int write_results(const BenchCommand& o, const std::string& model_name, const std::vector<BenchResult>& rows,
                  const std::vector<BenchResult>& fits);

// The two op tables of each profiled run (longest operation first).
std::string profile_tables(const std::vector<BenchResult>& rows) {
  std::string s;
  for (const auto& r : rows) {
    if (!r.profile) continue;
    const BenchProfile& p = *r.profile;
    s += fmt::format("\nprofile: {}, batch {}, context {}{}\n", r.method, r.batch, r.context,
                     r.synthetic_fill ? " (largest batch)" : "");
    if (p.prefill_tokens > 0) {
      s += fmt::format("prefill of one sequence ({} tokens), GPU time per operation:\n", p.prefill_tokens);
      s += cuda::format_op_table(p.prefill);
    }
    s += fmt::format("\ndecode, {} eager steps of batch {} (no CUDA graph: small kernels include launch latency; "
                     "a pass is one step):\n",
                     p.decode_steps, r.batch);
    s += cuda::format_op_table(p.decode, p.decode_steps);
  }
  return s;
}

// One run per (context, batch, method) of the sweep, in that order; run_one(method,
// config) measures it and the row gets the method's label.
template <typename RunOne>
std::vector<BenchResult> sweep(const BenchCommand& o, const std::vector<kv::MethodConfig>& methods,
                               RunOne&& run_one) {
  std::vector<BenchResult> rows;
  for (int ctx : o.contexts) {
    for (int b : o.batches) {
      for (const auto& m : methods) {
        std::cerr << fmt::format("{} batch {} context {}...\n", method_label(m), b, ctx);
        BenchConfig bc;
        bc.batch = b, bc.context = ctx, bc.gen = o.gen, bc.reps = o.reps;
        rows.push_back(run_one(m, bc));
        rows.back().method = method_label(m);
      }
    }
  }
  return rows;
}

// The CPU path: the fp32 model and the kv::Cache policies (no synthetic weights, no
// largest-batch search: both are GPU-sized).
int run_on_cpu(const BenchCommand& o, const std::vector<kv::MethodConfig>& methods) {
  const std::string dir = resolve_model_dir(o.model);
  std::cerr << "loading " << dir << " (CPU, fp32)...\n";
  const model::Model model = model::Model::load(dir);
  const std::vector<BenchResult> rows =
      sweep(o, methods, [&](const kv::MethodConfig& m, const BenchConfig& bc) { return run_cpu_bench(model, m, bc); });
  return write_results(o, dir + " (CPU)", rows, {});
}

int run(BenchCommand& o) {
  if (o.format != "table" && o.format != "json" && o.format != "csv") {
    fail("--format '{}' (table, json or csv)", o.format);
  }
  for (int b : o.batches) {
    if (b < 1) fail("--batch {}: batch sizes must be positive", b);
  }
  for (int c : o.contexts) {
    if (c < 1) fail("--context {}: contexts must be positive", c);
  }
  if (o.gen < 4) fail("--gen {}: at least 4 decode steps (3 are warm-up)", o.gen);
  if (o.profile_steps < 1) fail("--profile-steps {}: at least one decode step", o.profile_steps);
  if (o.reps < 1) fail("--reps {}: at least one prefill", o.reps);
  check_gib_option("--kv-mem", o.kv_mem_gib, "0 or absent: 90% of the free memory");
  check_gib_option("--budget", o.budget_gib, "absent: no largest-batch search");
  if (o.profile && o.format == "csv") std::cerr << "note: csv output leaves the --profile tables out (use json)\n";
  std::string why;
  const bool gpu_ok = gpu_bench_available(&why);
  const bool on_gpu = o.device == "cuda" || (o.device == "auto" && gpu_ok);
  if (on_gpu && !gpu_ok) fail("--device cuda needs an NVIDIA GPU: {}", why);
  if (!on_gpu && !o.synthetic.empty()) {
    fail("--synthetic needs an NVIDIA GPU (the random weights are made there; on the CPU use -m DIR): {}",
         gpu_ok ? "--device cpu was given" : why);
  }
  if (!on_gpu && o.budget_gib > 0) fail("--budget needs an NVIDIA GPU (it runs hundreds of sequences)");
  if (!on_gpu && o.profile) fail("--profile times GPU operations (CUDA events); it needs an NVIDIA GPU: {}",
                                 gpu_ok ? "--device cpu was given" : why);
  const auto methods = parse_methods(o.model.kv, {"fp16", "kivi2", "zipcache"});
  if (!on_gpu) return run_on_cpu(o, methods);
  std::cerr << "loading " << (o.synthetic.empty() ? "model" : "synthetic " + o.synthetic) << " onto the GPU...\n";
  BenchModel model = o.synthetic.empty() ? BenchModel::from_dir(resolve_model_dir(o.model))
                                         : BenchModel::synthetic(o.synthetic, o.seed);
  constexpr size_t kMaxPoolBytes = size_t(16) << 32;  // cuda::KvPool::kMaxBytes (64 GiB)
  constexpr int kMaxFitRuns = 6;  // the estimate and five smaller batches (~10% fewer)
  // The default leaves 10% + 2 GiB for activations and stays within what one pool can
  // address (an 80 GB card with a small model has more free memory than that).
  const size_t pool_bytes =
      o.kv_mem_gib > 0 ? size_t(o.kv_mem_gib * 1073741824.0)
                       : std::min(size_t(double(gpu_free_bytes()) * 0.9) - (size_t(2) << 30), kMaxPoolBytes);
  const std::vector<BenchResult> rows = sweep(o, methods, [&](const kv::MethodConfig& m, BenchConfig bc) {
    bc.profile_steps = o.profile ? o.profile_steps : 0;
    return model.run(m, bc, pool_bytes);
  });
  std::vector<BenchResult> fits;
  // Largest batch whose KV cache fits the budget at the first context, from the
  // bytes per sequence the allocator reported; its caches are filled by quantizing
  // random k/v (prefilling hundreds of sequences would dominate the run).
  if (o.budget_gib > 0) {
    const size_t budget = size_t(o.budget_gib * 1073741824.0);
    for (const auto& m : methods) {
      const BenchResult* ref = nullptr;
      for (const auto& r : rows) {
        if (r.method == method_label(m) && r.context == o.contexts.front()) ref = &r;
      }
      if (ref == nullptr) continue;
      // Bytes per sequence of context + gen tokens: the small run's peak before its eager
      // steps (the largest-batch runs have none).
      const double per_seq = double(ref->kv_peak_timed_bytes) / ref->batch;
      int fit = int(double(budget) / per_seq);
      // Decode attention serves at most 65535 (sequence, KV head) pairs per launch.
      fit = std::min(fit, 65535 / model.config().n_kv_heads);
      std::cerr << fmt::format("{}: {:.1f} MiB per sequence -> batch {} in {:.1f} GiB\n", method_label(m),
                               per_seq / 1048576.0, fit, o.budget_gib);
      // The estimate is tried first; a run that exhausts the pool gives way to a
      // smaller batch (bench_fit.h).
      const std::function<BenchResult(int)> run_batch = [&](int batch) {
        BenchConfig bc;
        bc.batch = batch, bc.context = o.contexts.front(), bc.gen = o.gen, bc.synthetic_fill = true;
        bc.eager_steps = false;
        bc.profile_steps = o.profile ? o.profile_steps : 0;  // decode steps only: nothing was prefilled
        return model.run(m, bc, budget);
      };
      std::vector<FitTry> failed;
      fits.push_back(run_largest_fit(fit, kMaxFitRuns, run_batch, &failed));
      fits.back().method = method_label(m);
      for (const FitTry& t : failed) {
        std::cerr << fmt::format("{}: batch {} did not fit ({})\n", method_label(m), t.batch, t.error);
      }
      if (!failed.empty()) std::cerr << fmt::format("{}: batch {} fits\n", method_label(m), fits.back().batch);
    }
  }

  return write_results(o, model.name(), rows, fits);
}

int write_results(const BenchCommand& o, const std::string& model_name, const std::vector<BenchResult>& rows,
                  const std::vector<BenchResult>& fits) {
  std::string text;
  if (o.format == "json") {
    nlohmann::json j;
    j["model"] = model_name;
    j["command"] = o.argv;
    j["runs"] = nlohmann::json::array();
    for (const auto& r : rows) j["runs"].push_back(to_json(r));
    if (!fits.empty()) {
      j["budget_gib"] = o.budget_gib;
      j["largest_batch"] = nlohmann::json::array();
      for (const auto& r : fits) j["largest_batch"].push_back(to_json(r));
    }
    text = j.dump(2) + "\n";
  } else if (o.format == "csv") {
    text = csv(rows, "sweep") + (fits.empty() ? "" : csv(fits, "largest_batch").substr(csv({}, "").size()));
  } else {
    text = fmt::format("model: {}\n\n", model_name) + table(rows) + profile_tables(rows);
    if (!fits.empty()) {
      text += fmt::format("\nlargest batch whose KV cache fits {:.1f} GiB at context {} + {} decode steps (caches "
                          "filled by quantizing random k/v; no eager steps):\n",
                          o.budget_gib, o.contexts.front(), o.gen);
      text += table(fits) + profile_tables(fits);
      const BenchResult* fp16 = nullptr;
      for (const auto& r : fits) {
        if (r.method == "fp16") fp16 = &r;
      }
      if (fp16 != nullptr) {
        for (const auto& r : fits) {
          text += fmt::format("  {:<24} throughput {:.2f}x fp16\n", r.method, r.tokens_per_s / fp16->tokens_per_s);
        }
      }
    }
  }
  if (o.out.empty()) {
    std::cout << text;
  } else {
    std::ofstream f(o.out);
    if (!f) fail("cannot write {}", o.out);
    f << text;
    std::cerr << "wrote " << o.out << "\n";
  }
  return 0;
}

}  // namespace

Command add_bench_command(CLI::App& app) {
  auto* sub = app.add_subcommand("bench", "Speed and memory of KV methods: prefill, decode, largest batch (GPU or CPU)");
  auto o = std::make_shared<BenchCommand>();
  add_model_options(sub, o->model);
  sub->add_option("--synthetic", o->synthetic, "Random weights of a known shape instead of -m: " +
                                                   fmt::format("{}", fmt::join(model::preset_names(), ", ")))
      ->check(CLI::IsMember(model::preset_names()));
  sub->add_option("-b,--batch", o->batches, "Batch sizes to sweep")->delimiter(',');
  sub->add_option("-c,--context", o->contexts, "Prompt lengths to sweep")->delimiter(',');
  sub->add_option("-n,--gen", o->gen, "Decode steps per run (the first 3 are warm-up)");
  sub->add_option("--reps", o->reps, "Prefill repetitions (median)");
  sub->add_option("--kv-mem", o->kv_mem_gib, "GiB of GPU memory for the KV block pool (default: 90% of free)");
  sub->add_option("--budget", o->budget_gib, "Also find the largest batch whose KV cache fits this many GiB");
  sub->add_option("--format", o->format, "table, json or csv");
  sub->add_option("-o,--out", o->out, "Write the results to this file");
  add_seed_option(sub, "--seed", o->seed, "Seed of the synthetic weights");
  sub->add_option("--device", o->device, "auto (the GPU when there is one), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  sub->add_flag("--profile", o->profile,
                "GPU time per operation (rmsnorm, gemm qkv, attention, cache, ...) of one extra prefill and a few "
                "eager decode steps per run, and of a few decode steps at each --budget's largest batch: tables "
                "(table format) or a \"profile\" object per run (json); csv leaves it out");
  sub->add_option("--profile-steps", o->profile_steps, "Decode steps the profile times (default 5)");
  return {sub, [o, sub] {
            o->argv = {"zipcache", "bench"};
            for (const auto& r : sub->remaining()) o->argv.push_back(r);
            return run(*o);
          }};
}

}  // namespace zc::app
