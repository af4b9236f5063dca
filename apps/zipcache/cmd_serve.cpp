// `zipcache serve`: the OpenAI-compatible HTTP server (src/server/) over a model folder,
// on the CPU or the GPU, with one KV cache method by default and any other per request
// ("kv" in the request body). Ctrl-C / SIGTERM stop it cleanly.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <unistd.h>

#include "chat_prompt.h"
#include "commands.h"
#include "core/error.h"
#include "engine/batch_decoder.h"
#include "gpu_decoder.h"
#include "model/forward.h"
#include "model_options.h"
#if defined(ZC_HAVE_SERVER)
#include "server/server.h"
#endif

namespace zc::app {

namespace {

struct ServeOptions {
  ModelOptions model;
  std::string host = "127.0.0.1", alias, chat_template, device = "cpu";
  int port = 8080, context = 0, max_tokens = 256, http_threads = 0, parallel = 1;
  bool no_prompt_cache = false;
  double kv_mem_gib = 0;
};

#if defined(ZC_HAVE_SERVER)
int g_signal_pipe[2] = {-1, -1};

void on_stop_signal(int signal) {
  const unsigned char byte = static_cast<unsigned char>(signal);
  [[maybe_unused]] const ssize_t n = write(g_signal_pipe[1], &byte, 1);
}

int run(ServeOptions& o) {
  if (o.max_tokens < -1) fail("-n {}: default tokens per request must be 0 or more, or -1", o.max_tokens);
  check_gib_option("--kv-mem", o.kv_mem_gib, "0 or absent: the context in fp16");
  const std::string dir = resolve_model_dir(o.model);
  const auto methods = parse_methods(o.model.kv, {"zipcache"});
  if (methods.size() != 1) fail("serve takes one default --kv method ({} given); requests may name others", methods.size());
  const model::Model model = model::Model::load(dir);
  const tok::Tokenizer tokenizer = tok::Tokenizer::from_dir(dir);
  const ChatPrompter prompter = load_chat_prompter(dir, o.chat_template, tokenizer, false);
  const int max_context = model.config().max_position_embeddings;
  const int context = o.context > 0 ? o.context : max_context;
  if (context > max_context) fail("context {} is larger than the model's max_position_embeddings {}", context, max_context);

  server::Engine engine;
  engine.config = &model.config();
  engine.tokenizer = &tokenizer;
  engine.render_chat = [&prompter](const nlohmann::json& messages, bool add_generation_prompt,
                                   const nlohmann::json& extra) {
    return prompter.bos_text + prompter.chat_template.render(messages, add_generation_prompt, extra);
  };
  engine.chat_stop = prompter.stop;
  engine.default_method = methods.front();
  engine.context = context;
  engine.model_name = o.alias.empty() ? std::filesystem::path(dir).filename().string() : o.alias;
  std::unique_ptr<GpuSession> gpu;
  if (o.device == "cuda") {
    if (const std::string why = GpuSession::unsupported(model.config(), methods.front()); !why.empty())
      fail("--device cuda: {}", why);
    gpu = std::make_unique<GpuSession>(model, context, size_t(o.kv_mem_gib * 1073741824.0), o.parallel);
    engine.make_decoder = gpu->factory();
    engine.make_batch = gpu->batch_factory();
  } else {
    engine.make_decoder = [&model](const kv::MethodConfig& m, int ctx) { return engine::cpu_decoder(model, m, ctx); };
    engine.make_batch = [&model](const kv::MethodConfig& m, int ctx, int slots) {
      return engine::cpu_batch(model, m, ctx, slots);
    };
  }
  server::ServerOptions options;
  options.host = o.host;
  options.port = o.port;
  options.default_max_tokens = o.max_tokens;
  options.threads = o.http_threads > 0 ? o.http_threads : std::max(8, o.parallel + 2);
  options.prompt_cache = !o.no_prompt_cache;
  options.parallel = o.parallel;
  options.log = [](const std::string& line) { fmt::print(stderr, "serve: {}\n", line); };
  // Each generation streams on an HTTP thread of its own, and /health needs one more.
  if (o.http_threads > 0 && o.http_threads < o.parallel + 1)
    fail("--http-threads {}: at least --parallel + 1 = {} (a thread per generation, one for /health)", o.http_threads,
         o.parallel + 1);

  // SIGINT / SIGTERM: the handler only writes the signal's number to a pipe (the one
  // async-signal-safe step; any thread may take the signal, OpenBLAS's among them), and
  // a thread of its own reads it and stops the server.
  if (pipe(g_signal_pipe) != 0) fail("serve: cannot make a pipe for signals");
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  server::Server server(std::move(engine), options);
  const int port = server.bind();
  std::thread watcher([&] {
    unsigned char signal = 0;
    while (read(g_signal_pipe[0], &signal, 1) < 0 && errno == EINTR) {
    }
    if (signal != 0) fmt::print(stderr, "\nstopping (signal {})\n", int(signal));
    server.stop();
  });
  fmt::print(stderr, "serving {} (--kv {}, context {}, {}, {} at once) at http://{}:{}/v1 ; Ctrl-C stops\n", dir,
             method_label(methods.front()), context, o.device, o.parallel, o.host, port);
  std::fflush(stderr);
  server.run();
  const unsigned char wake = 0;  // run() may end without a signal
  if (write(g_signal_pipe[1], &wake, 1) != 1) server.stop();
  watcher.join();
  if (o.parallel > 1) {
    const auto st = server.batch_stats();
    fmt::print(stderr, "batch: {} steps of {:.2f} requests on average ({} at most), {} prompts, {} waits for KV memory\n",
               st.steps, st.steps ? double(st.step_rows) / double(st.steps) : 0.0, st.max_rows, st.prefills,
               st.memory_waits);
  }
  return 0;
}
#else
int run(ServeOptions&) {
  fail("this zipcache was built without the HTTP server: install cpp-httplib (apt-get install "
       "libcpp-httplib-dev) and build again");
}
#endif

}  // namespace

Command add_serve_command(CLI::App& app) {
  auto* sub = app.add_subcommand("serve", "OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions)");
  auto o = std::make_shared<ServeOptions>();
  add_model_options(sub, o->model);
  sub->footer(kv::method_help());
  sub->add_option("--host", o->host, "address to listen on")->capture_default_str();
  sub->add_option("--port", o->port, "port (0: any free one, printed)")->check(CLI::Range(0, 65535))->capture_default_str();
  sub->add_option("-a,--alias", o->alias, "model name in responses (default: the folder's name)");
  sub->add_option("--chat-template", o->chat_template, "Jinja chat template file (default: the model's, else ChatML)");
  sub->add_option("-c,--ctx-size", o->context, "context length per request (default: the model's)")
      ->check(non_negative_count());
  sub->add_option("-n,--n-predict", o->max_tokens, "tokens per request when it sets no max_tokens (-1: until EOS)")
      ->capture_default_str();
  sub->add_option("--http-threads", o->http_threads, "HTTP worker threads (default: 8, or --parallel + 2 if more)")
      ->check(CLI::Range(2, 258));
  sub->add_option("--parallel,--np", o->parallel,
                  "generations at once: concurrent requests share a batch of this many slots (continuous "
                  "batching); 1: one at a time, with the prompt cache")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  sub->add_flag("--no-prompt-cache", o->no_prompt_cache,
                "prefill every request's whole prompt (default with --parallel 1: a request that goes on from "
                "the last one computes only its new tokens)");
  add_device_options(sub, o->device, o->kv_mem_gib);
  return {sub, [o] { return run(*o); }};
}

}  // namespace zc::app
