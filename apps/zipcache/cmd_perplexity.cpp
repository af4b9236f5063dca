// `zipcache perplexity`: perplexity of a text under each requested KV method, side
// by side, each with its measured compression ratio; on the CPU or (--device cuda) the GPU.
#include <fstream>
#include <memory>

#include <fmt/format.h>

#include "commands.h"
#include "core/error.h"
#include "engine/perplexity.h"
#include "model/forward.h"
#include "gpu_decoder.h"
#include "model_options.h"
#include "tokenizer/tokenizer.h"

namespace zc::app {

namespace {

struct PerplexityCommand {
  ModelOptions model;
  std::string file;
  engine::PerplexityOptions ppl;
  std::string device = "cpu";
  double kv_mem_gib = 0;
};

int run(PerplexityCommand& o) {
  check_gib_option("--kv-mem", o.kv_mem_gib, "0 or absent: a window in fp16");
  const std::string dir = resolve_model_dir(o.model);
  const auto methods = parse_methods(o.model.kv, {"fp16"});
  std::ifstream in(o.file, std::ios::binary);
  if (!in) fail("{}: cannot read the text file", o.file);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  const model::Model model = model::Model::load(dir);
  const auto tokens = tok::Tokenizer::from_dir(dir).encode(text, false);
  const int prefix = engine::check_perplexity_options(model, tokens.size(), o.ppl);
  std::unique_ptr<GpuSession> gpu;
  engine::DecoderFactory decoders;
  if (o.device == "cuda") {
    for (const auto& m : methods) {  // before the weights go to the GPU
      const std::string why = GpuSession::unsupported(model.config(), m);
      if (!why.empty()) fail("--device cuda: {}", why);
    }
    gpu = std::make_unique<GpuSession>(model, o.ppl.context, size_t(o.kv_mem_gib * 1073741824.0));
    decoders = gpu->factory();
    for (const auto& m : methods) gpu->warm_up(m);  // seconds without the GPU's one-time costs
  }
  fmt::print("{}: {} tokens; windows of {} tokens, {} prefilled, {} decoded through the cache\n\n",
             o.file, tokens.size(), o.ppl.context, prefix, o.ppl.context - prefix);
  size_t width = 6;
  for (const auto& m : methods) width = std::max(width, method_label(m).size());
  fmt::print("{:<{}}  {:>10}  {:>8}  {:>9}  {:>8}  {:>8}\n", "method", width, "perplexity", "tokens",
             "bits/val", "ratio", "seconds");
  for (const auto& m : methods) {
    const auto r = engine::perplexity(model, m, tokens, o.ppl, gpu ? &decoders : nullptr);
    fmt::print("{:<{}}  {:>10.4f}  {:>8}  {:>9.3f}  {:>7.2f}x  {:>8.1f}\n", method_label(m), width,
               r.perplexity(), r.scored_tokens, r.memory.bits_per_value(), r.memory.ratio(), r.seconds);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

Command add_perplexity_command(CLI::App& app) {
  auto* sub = app.add_subcommand("perplexity", "Perplexity of a text under each KV method");
  auto o = std::make_shared<PerplexityCommand>();
  add_model_options(sub, o->model);
  sub->footer(kv::method_help());
  sub->add_option("-f,--file", o->file, "text file")->required();
  sub->add_option("--ctx,-c", o->ppl.context, "tokens per window")->check(CLI::Range(2, 1 << 20));
  sub->add_option("--prefix", o->ppl.prefix, "prefilled tokens per window (default: half)")
      ->check(non_negative_count());
  sub->add_option("--windows", o->ppl.max_windows, "at most this many windows (0: all)")
      ->check(non_negative_count());
  sub->add_option("--device", o->device, "cpu, or cuda (bf16 weights on the GPU; fp16, kivi2/4, zipcache)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--kv-mem", o->kv_mem_gib, "--device cuda: GiB for the KV block pool (default: a window in fp16)");
  return {sub, [o] { return run(*o); }};
}

}  // namespace zc::app
