// `zipcache chat`: a conversation on the terminal (or over a pipe, a message per line)
// through the model's chat template, whose KV cache carries over from turn to turn
// (engine/conversation.h): each turn computes only the tokens the cache lacks.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "chat_prompt.h"
#include "commands.h"
#include "core/error.h"
#include "engine/conversation.h"
#include "gpu_decoder.h"
#include "model/forward.h"
#include "model_options.h"
#include "sampling_options.h"

namespace zc::app {

namespace {

struct ChatOptions {
  ModelOptions model;
  engine::GenerationOptions gen;
  std::string system, chat_template, device = "cpu";
  double kv_mem_gib = 0;
  bool seed_drawn = false;
};

// One message: a line, or several joined where a line ends in a backslash. False at the
// end of the input.
bool read_message(bool interactive, std::string& message) {
  message.clear();
  std::string line;
  if (interactive) std::fputs("> ", stdout), std::fflush(stdout);
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.back() != '\\') {
      message += line;
      return true;
    }
    line.pop_back();
    message += line + "\n";
    if (interactive) std::fputs(". ", stdout), std::fflush(stdout);
  }
  return !message.empty();
}

int run(ChatOptions& o) {
  if (o.gen.max_tokens < -1) fail("-n {}: tokens per reply must be 0 or more, or -1 (until EOS)", o.gen.max_tokens);
  check_gib_option("--kv-mem", o.kv_mem_gib, "0 or absent: the context in fp16");
  o.gen.sampling.validate();
  if (o.seed_drawn) fmt::print(stderr, "seed: {} (drawn for -s -1)\n", o.gen.sampling.seed);
  const std::string dir = resolve_model_dir(o.model);
  const auto methods = parse_methods(o.model.kv, {"zipcache"});
  if (methods.size() != 1) fail("chat takes one --kv method ({} given)", methods.size());
  const kv::MethodConfig& method = methods.front();
  const model::Model model = model::Model::load(dir);
  const tok::Tokenizer tokenizer = tok::Tokenizer::from_dir(dir);
  const ChatPrompter prompter = load_chat_prompter(dir, o.chat_template, tokenizer, false);
  o.gen.stop.insert(o.gen.stop.end(), prompter.stop.begin(), prompter.stop.end());

  const int max_context = model.config().max_position_embeddings;
  const int context = o.gen.context > 0 ? o.gen.context : max_context;
  if (context > max_context) fail("context {} is larger than the model's max_position_embeddings {}", context, max_context);
  std::unique_ptr<GpuSession> gpu;
  engine::DecoderFactory factory = [&model](const kv::MethodConfig& m, int ctx) {
    return engine::cpu_decoder(model, m, ctx);
  };
  if (o.device == "cuda") {
    if (const std::string why = GpuSession::unsupported(model.config(), method); !why.empty())
      fail("--device cuda: {}", why);
    gpu = std::make_unique<GpuSession>(model, context, size_t(o.kv_mem_gib * 1073741824.0));
    factory = gpu->factory();
  }
  engine::Conversation conversation(factory, method, context, model.config(), &tokenizer);

  const bool interactive = isatty(fileno(stdin)) != 0;
  if (interactive)
    fmt::print(stderr, "chat with {} (--kv {}, context {}); /reset starts over, /exit or Ctrl-D ends; "
               "end a line with \\ to go on\n", dir, method_label(method), context);
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
  const size_t first_turn = messages.size();
  std::string message;
  while (read_message(interactive, message)) {
    if (message.find_first_not_of(" \t\n") == std::string::npos) continue;
    if (message == "/exit" || message == "/quit") break;
    if (message == "/reset") {
      messages.erase(messages.begin() + long(first_turn), messages.end());
      conversation.reset();
      fmt::print(stderr, "(conversation reset)\n");
      continue;
    }
    messages.push_back({{"role", "user"}, {"content", message}});
    engine::GenerationResult r;
    try {
      r = conversation.reply(prompter.text(messages), o.gen, [](const std::string& t) {
        std::fwrite(t.data(), 1, t.size(), stdout);
        std::fflush(stdout);
      });
    } catch (const zc::Error& e) {
      messages.erase(messages.end() - 1);  // the turn did not happen
      if (!interactive) throw;
      fmt::print(stderr, "error: {}\n", e.what());
      continue;
    }
    std::fputs("\n", stdout);
    std::fflush(stdout);
    messages.push_back({{"role", "assistant"}, {"content", r.text}});
    const double tps = r.decode_seconds > 0 ? double(r.tokens.size()) / r.decode_seconds : 0.0;
    fmt::print(stderr, "[{}] {} prompt tokens computed, {} reused from the cache; {} tokens at {:.1f} tok/s; "
               "stop: {}; KV {} ({:.2f}x compression against fp16)\n",
               method_label(method), r.prompt_tokens - r.cached_prompt_tokens, r.cached_prompt_tokens, r.tokens.size(), tps,
               r.stop_reason, human_bytes(double(r.memory.total())), r.memory.ratio());
  }
  return 0;
}

}  // namespace

Command add_chat_command(CLI::App& app) {
  auto* sub = app.add_subcommand("chat", "Chat with a model through its chat template (reads messages from stdin)");
  auto o = std::make_shared<ChatOptions>();
  o->gen.max_tokens = -1;
  add_model_options(sub, o->model);
  sub->footer(kv::method_help());
  sub->add_option("--system", o->system, "system message");
  sub->add_option("--chat-template", o->chat_template, "Jinja chat template file (default: the model's, else ChatML)");
  sub->add_option("-n,--n-predict", o->gen.max_tokens, "most tokens per reply (-1: until EOS)");
  sub->add_option("-c,--ctx-size", o->gen.context, "context length (default: the model's)")
      ->check(non_negative_count());
  add_sampling_options(sub, o->gen, &o->seed_drawn);
  add_device_options(sub, o->device, o->kv_mem_gib);
  return {sub, [o] { return run(*o); }};
}

}  // namespace zc::app
