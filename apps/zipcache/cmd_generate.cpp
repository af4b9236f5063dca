// `zipcache generate`: stream a completion, then report speed and KV memory. Several
// --kv methods run one after the other on the same prompt, for a side-by-side look.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "commands.h"
#include "core/error.h"
#include "engine/generator.h"
#include "gpu_decoder.h"
#include "model/forward.h"
#include "model_options.h"
#include "sampling_options.h"
#include "tokenizer/tokenizer.h"

namespace zc::app {

namespace {

struct GenerateOptions {
  ModelOptions model;
  std::string prompt, prompt_file, token_ids;
  engine::GenerationOptions gen;
  bool no_bos = false;
  std::string device = "cpu";
  double kv_mem_gib = 0;
  bool seed_drawn = false;  // -s -1
};

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      const long v = std::stol(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(int32_t(v));
    } catch (const std::exception&) {
      fail("--ids: '{}' is not a token id (give comma-separated non-negative integers)", item);
    }
  }
  return ids;
}

int run(GenerateOptions& o) {
  if (o.gen.max_tokens < -1) {
    fail("-n {}: tokens to generate must be 0 or more, or -1 (until EOS or a full context)", o.gen.max_tokens);
  }
  check_gib_option("--kv-mem", o.kv_mem_gib, "0 or absent: the context in fp16");
  if (o.seed_drawn) fmt::print(stderr, "seed: {} (drawn for -s -1)\n", o.gen.sampling.seed);
  const std::string dir = resolve_model_dir(o.model);
  const auto methods = parse_methods(o.model.kv, {"fp16"});
  const model::Model model = model::Model::load(dir);
  // A folder without tokenizer.json still runs on token ids (--ids): the output is ids.
  std::optional<tok::Tokenizer> tokenizer;
  if (o.token_ids.empty() || std::filesystem::exists(std::filesystem::path(dir) / "tokenizer.json"))
    tokenizer.emplace(tok::Tokenizer::from_dir(dir));

  std::vector<int32_t> prompt;
  if (!o.token_ids.empty()) {
    prompt = parse_ids(o.token_ids);
  } else {
    std::string text = o.prompt;
    if (!o.prompt_file.empty()) {
      std::ifstream in(o.prompt_file, std::ios::binary);
      if (!in) fail("{}: cannot read the prompt file", o.prompt_file);
      text.assign(std::istreambuf_iterator<char>(in), {});
    }
    if (text.empty()) fail("no prompt: give -p TEXT, -f FILE or --ids 1,2,3");
    prompt = tokenizer->encode(text, !o.no_bos);
  }
  for (int32_t id : prompt)
    if (id >= model.config().vocab_size)
      fail("prompt token {} is outside the model's vocabulary ({} tokens)", id, model.config().vocab_size);

  const auto print_text = [](const std::string& t) {
    std::fwrite(t.data(), 1, t.size(), stdout);
    std::fflush(stdout);
  };
  std::unique_ptr<GpuSession> gpu;
  const int max_context = model.config().max_position_embeddings;
  const int context = o.gen.context > 0 ? o.gen.context : max_context;
  if (o.device == "cuda") {
    if (context > max_context) fail("context {} is larger than the model's max_position_embeddings {}", context, max_context);
    gpu = std::make_unique<GpuSession>(model, context, size_t(o.kv_mem_gib * 1073741824.0));
  }
  for (const auto& method : methods) {
    if (methods.size() > 1) fmt::print("=== --kv {} ===\n", kv::describe(method));
    std::fflush(stdout);
    const tok::Tokenizer* tk = tokenizer ? &*tokenizer : nullptr;
    engine::GenerationResult r;
    if (gpu) {
      gpu->warm_up(method);  // tok/s without the GPU's one-time costs
      const auto decoder = gpu->decoder(method);
      r = engine::generate_with(*decoder, model.config(), tk, prompt, o.gen, context, print_text);
    } else {
      r = engine::generate(model, tk, method, prompt, o.gen, print_text);
    }
    const double decode_tps =
        r.decode_seconds > 0 ? double(r.tokens.size()) / r.decode_seconds : 0.0;
    fmt::print(stderr,
               "\n\n[{}] prompt {} tokens, prefill {:.1f} tok/s ({:.3f} s); generated {} tokens, "
               "decode {:.1f} tok/s; stop: {}\n"
               "[{}] KV cache {} for {} tokens (fp16 would be {}): {:.2f}x, {:.2f} bits/value\n",
               method_label(method), r.prompt_tokens, r.prompt_tokens / std::max(r.prefill_seconds, 1e-9),
               r.prefill_seconds, r.tokens.size(), decode_tps, r.stop_reason, method_label(method),
               human_bytes(double(r.memory.total())), r.prompt_tokens + r.tokens.size(),
               human_bytes(double(r.memory.fp16_bytes)), r.memory.ratio(), r.memory.bits_per_value());
  }
  return 0;
}

}  // namespace

Command add_generate_command(CLI::App& app) {
  auto* sub = app.add_subcommand("generate", "Generate text from a prompt");
  auto o = std::make_shared<GenerateOptions>();
  add_model_options(sub, o->model);
  sub->footer(kv::method_help());
  sub->add_option("-p,--prompt", o->prompt, "prompt text");
  sub->add_option("-f,--file", o->prompt_file, "read the prompt from a file");
  sub->add_option("--ids", o->token_ids, "prompt as comma-separated token ids");
  sub->add_flag("--no-bos", o->no_bos, "do not add the BOS / special tokens to the prompt");
  sub->add_option("-n,--n-predict", o->gen.max_tokens, "tokens to generate (-1: until EOS)");
  sub->add_option("-c,--ctx-size", o->gen.context, "context length (default: the model's)")
      ->check(non_negative_count());
  add_sampling_options(sub, o->gen, &o->seed_drawn);
  add_device_options(sub, o->device, o->kv_mem_gib);
  return {sub, [o] { return run(*o); }};
}

}  // namespace zc::app
