// `zipcache demo`: the bundled model answers a line-retrieval prompt of about 2000
// tokens with the fp16 cache and with ZipCache; prints both answers, KV memory,
// compression ratio and speed. The README's first command runs it.
#include <cstdio>

#include <fmt/format.h>

#include "commands.h"
#include "core/error.h"
#include "core/rng.h"
#include "engine/generator.h"
#include "eval/prompts.h"
#include "model/forward.h"
#include "model_options.h"
#include "tokenizer/tokenizer.h"

namespace zc::app {

namespace {

struct DemoOptions {
  ModelOptions model;
  int tokens = 2000;
  uint64_t seed = 2024;
  std::string words;
};

// The largest line-retrieval prompt (same seed, more lines) that fits `target` tokens.
eval::TaskItem fit_lines_prompt(const tok::Tokenizer& tok, const eval::WordLists& words, int target,
                                uint64_t seed, size_t* n_tokens, int* n_lines) {
  int lo = 2, hi = std::max(2, target / 8);
  eval::TaskItem best;
  *n_tokens = 0;
  while (lo <= hi) {
    const int mid = (lo + hi) / 2;
    Rng rng(seed);
    auto item = eval::lines_item(words, rng, mid);
    const size_t n = tok.encode(item.prompt, true).size();
    if (n <= size_t(target)) {
      best = std::move(item);
      *n_tokens = n;
      *n_lines = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (*n_tokens == 0) fail("--tokens {} is too small for a line-retrieval prompt", target);
  return best;
}

int run(DemoOptions& o) {
  const std::string dir = resolve_model_dir(o.model);
  const std::string words_path = o.words.empty() ? find_bundled("data/eval/words.json") : o.words;
  if (words_path.empty()) fail("data/eval/words.json not found (give --words FILE)");
  const auto methods = parse_methods(o.model.kv, {"fp16", "zipcache"});
  const model::Model model = model::Model::load(dir);
  const tok::Tokenizer tok = tok::Tokenizer::from_dir(dir);
  const auto words = eval::load_words(words_path);

  size_t n_tokens = 0;
  int n_lines = 0;
  const auto item = fit_lines_prompt(tok, words, o.tokens, o.seed, &n_tokens, &n_lines);
  const auto prompt = tok.encode(item.prompt, true);
  const std::string question = item.prompt.substr(item.prompt.rfind("\nNow the record is over.") + 1);
  fmt::print("model: {}\nprompt: line retrieval, {} lines, {} tokens (seed {})\n  ...\n  {}\n"
             "expected: {}\n\n",
             dir, n_lines, n_tokens, o.seed, question, item.reference);

  engine::GenerationOptions gen;
  gen.max_tokens = 32;
  gen.sampling.temperature = 0;  // greedy
  struct Row {
    std::string label, answer;
    bool correct;
    engine::GenerationResult r;
  };
  std::vector<Row> rows;
  for (const auto& method : methods) {
    fmt::print("[{}] answer:", method_label(method));
    std::fflush(stdout);
    auto r = engine::generate(model, &tok, method, prompt, gen, [](const std::string& t) {
      std::fwrite(t.data(), 1, t.size(), stdout);
      std::fflush(stdout);
    });
    const bool correct = r.text.find("<" + item.expected + ">") != std::string::npos;
    fmt::print("  -> {}\n", correct ? "correct" : "WRONG");
    rows.push_back({method_label(method), r.text, correct, std::move(r)});
  }
  fmt::print("\n{:<12} {:>8} {:>12} {:>8} {:>10} {:>15} {:>14}\n", "KV cache", "answer", "KV memory",
             "ratio", "bits/val", "prefill tok/s", "decode tok/s");
  for (const auto& row : rows) {
    const auto& m = row.r.memory;
    fmt::print("{:<12} {:>8} {:>12} {:>7.2f}x {:>10.3f} {:>15.1f} {:>14.1f}\n", row.label,
               row.correct ? "correct" : "wrong", human_bytes(double(m.total())), m.ratio(),
               m.bits_per_value(), row.r.prompt_tokens / std::max(row.r.prefill_seconds, 1e-9),
               double(row.r.tokens.size()) / std::max(row.r.decode_seconds, 1e-9));
  }
  fmt::print("\nKV memory is every stored byte of all {} layers' caches (codes, fp16 parameters, "
             "fp16 window); ratio = fp16 bytes / stored bytes.\n",
             model.config().n_layers);
  return 0;
}

}  // namespace

Command add_demo_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "demo", "The bundled model answers a ~2000-token line-retrieval prompt with fp16 and ZipCache caches");
  auto o = std::make_shared<DemoOptions>();
  add_model_options(sub, o->model);
  sub->add_option("--tokens", o->tokens, "prompt length in tokens")->check(CLI::Range(64, 1 << 20));
  add_seed_option(sub, "--seed", o->seed, "seed of the prompt");
  sub->add_option("--words", o->words, "word lists for line names (default data/eval/words.json)");
  return {sub, [o] { return run(*o); }};
}

}  // namespace zc::app
