// `zipcache kv`: compress K/V tensors with one or more cache methods and report the
// true size and the error each one introduces; `zipcache kv demo` does it on
// realistic synthetic data for every method side by side.
#include <fstream>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "kv_analysis.h"
#include "kv_input.h"
#include "kv_report.h"
#include "kv_synthetic.h"
#include "model_options.h"

namespace zc::app {

namespace {

struct KvOptions {
  std::string input, output, json;
  std::vector<std::string> methods;
  int tokens = 2048, heads = 8, kv_heads = 2, head_dim = 128;
  uint64_t seed = 1;
};

// The demo's line-up: every method at its defaults, the saliency-metric and
// quantizer ablations at ZipCache's bits, and H2O at ZipCache's measured budget.
std::vector<std::string> demo_methods() {
  return {"fp16",
          "kivi4",
          "kivi2",
          "zipcache",
          "zipcache:metric=accumulated",
          "zipcache:values=tokenwise",
          "zipcache:values=groupwise",
          "zipcache:block=128",
          "mikv"};
}

std::vector<KvResult> run_methods(const KvInput& input, const std::vector<std::string>& specs) {
  std::vector<KvResult> results;
  for (const auto& spec : specs) {
    results.push_back(analyse(input, kv::parse_method(spec)));
  }
  return results;
}

int run_demo(const KvOptions& o) {
  const SyntheticKv s = make_synthetic_kv(o.tokens, o.heads, o.kv_heads, o.head_dim, o.seed);
  KvInput input;
  input.L = s.L, input.n_heads = s.n_heads, input.n_kv_heads = s.n_kv_heads, input.head_dim = s.head_dim;
  input.q = s.q, input.k = s.k, input.v = s.v;
  fmt::print("Synthetic K/V: {} tokens, {} query heads, {} KV heads, head_dim {}, seed {}\n",
             s.L, s.n_heads, s.n_kv_heads, s.head_dim, o.seed);
  fmt::print("(keys after RoPE with outlier channels; {} of {} tokens strongly attended)\n\n",
             s.important.size(), s.L);
  auto specs = o.methods.empty() ? demo_methods() : o.methods;
  auto results = run_methods(input, specs);
  // H2O at the memory budget ZipCache measured (fraction of tokens kept in fp16).
  for (const auto& r : results) {
    if (r.label == "zipcache" && o.methods.empty()) {
      const double budget = 1.0 / r.memory.ratio();
      results.push_back(analyse(input, kv::parse_method(fmt::format("h2o:budget={:.4f}", budget))));
      break;
    }
  }
  print_table(results);
  print_demo_comparisons(results);
  if (!o.json.empty()) write_json(o.json, input, results, "demo");
  if (!o.output.empty()) write_output(o.output, results);
  return 0;
}

int run_file(const KvOptions& o) {
  if (o.input.empty()) fail("kv: give an input file with -i FILE (or run `zipcache kv demo`)");
  const LoadedKv loaded = load_kv_file(o.input);
  const auto specs = o.methods.empty() ? std::vector<std::string>{"zipcache"} : o.methods;
  for (const auto& spec : specs) {
    const auto config = kv::parse_method(spec);
    const bool attention_aware = config.method == kv::Method::ZipCache ||
                                 config.method == kv::Method::MiKV || config.method == kv::Method::H2O;
    if (attention_aware && loaded.input.q.empty() && loaded.salient.empty())
      fail("{}: method '{}' picks tokens by attention: add a 'q' tensor [n_heads, L, d] or a "
           "'salient' integer tensor to the file", o.input, spec);
    if (config.method == kv::Method::H2O && loaded.input.q.empty())
      fail("{}: method 'h2o' needs a 'q' tensor", o.input);
  }
  fmt::print("{}: {} tokens, {} KV heads, head_dim {}{}\n\n", o.input, loaded.input.L,
             loaded.input.n_kv_heads, loaded.input.head_dim,
             loaded.input.q.empty() ? "" : fmt::format(", {} query heads", loaded.input.n_heads));
  std::vector<KvResult> results;
  for (const auto& spec : specs) {
    kv::MethodConfig config = kv::parse_method(spec);
    if (!loaded.salient.empty() &&
        (config.method == kv::Method::ZipCache || config.method == kv::Method::MiKV))
      config.given_salient = loaded.salient;
    results.push_back(analyse(loaded.input, config));
  }
  print_table(results);
  if (!o.json.empty()) write_json(o.json, loaded.input, results, o.input);
  if (!o.output.empty()) write_output(o.output, results);
  return 0;
}

}  // namespace

Command add_kv_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "kv", "Compress K/V tensors from a safetensors file and report size and error");
  auto opts = std::make_shared<KvOptions>();
  sub->footer(kv_file_help() + "\n" + kv::method_help());
  sub->add_option("-i,--input", opts->input, "safetensors file with k, v (and q, salient)");
  sub->add_option("-o,--output", opts->output, "write the dequantized K/V here (safetensors)");
  sub->add_option("--kv", opts->methods, "cache method(s), e.g. zipcache:ratio=0.4 (repeatable)");
  sub->add_option("--json", opts->json, "write every figure and the salient tokens as JSON");
  auto* demo = sub->add_subcommand("demo", "Compare every method on realistic synthetic K/V");
  demo->add_option("--tokens", opts->tokens, "context length")->check(CLI::Range(1, 1 << 20));
  demo->add_option("--heads", opts->heads, "query heads")->check(CLI::Range(1, 256));
  demo->add_option("--kv-heads", opts->kv_heads, "KV heads")->check(CLI::Range(1, 256));
  demo->add_option("--head-dim", opts->head_dim, "head dimension")->check(CLI::Range(2, 1024));
  add_seed_option(demo, "--seed", opts->seed, "seed of the synthetic data");
  demo->add_option("--kv", opts->methods, "methods instead of the default line-up (repeatable)");
  demo->add_option("--json", opts->json, "write every figure as JSON");
  demo->add_option("-o,--output", opts->output, "write the dequantized K/V here");
  return {sub, [opts, demo] { return demo->parsed() ? run_demo(*opts) : run_file(*opts); }};
}

}  // namespace zc::app
