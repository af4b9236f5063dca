// `zipcache perplexity`: perplexity of a text under each requested KV method, side
// by side, each with its measured compression ratio.
#include <fstream>

#include <fmt/format.h>

#include "commands.h"
#include "core/error.h"
#include "engine/perplexity.h"
#include "model/forward.h"
#include "model_options.h"
#include "tokenizer/tokenizer.h"

namespace zc::app {

namespace {

struct PerplexityCommand {
  ModelOptions model;
  std::string file;
  engine::PerplexityOptions ppl;
};

int run(PerplexityCommand& o) {
  const std::string dir = resolve_model_dir(o.model);
  const auto methods = parse_methods(o.model.kv, {"fp16"});
  std::ifstream in(o.file, std::ios::binary);
  if (!in) fail("{}: cannot read the text file", o.file);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  const model::Model model = model::Model::load(dir);
  const auto tokens = tok::Tokenizer::from_dir(dir).encode(text, false);
  const int prefix = engine::check_perplexity_options(model, tokens.size(), o.ppl);
  fmt::print("{}: {} tokens; windows of {} tokens, {} prefilled, {} decoded through the cache\n\n",
             o.file, tokens.size(), o.ppl.context, prefix, o.ppl.context - prefix);
  size_t width = 6;
  for (const auto& m : methods) width = std::max(width, method_label(m).size());
  fmt::print("{:<{}}  {:>10}  {:>8}  {:>9}  {:>8}  {:>8}\n", "method", width, "perplexity", "tokens",
             "bits/val", "ratio", "seconds");
  for (const auto& m : methods) {
    const auto r = engine::perplexity(model, m, tokens, o.ppl);
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
  return {sub, [o] { return run(*o); }};
}

}  // namespace zc::app
