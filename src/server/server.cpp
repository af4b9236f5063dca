#include "server/server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "core/error.h"
#include "engine/batch_scheduler.h"
#include "engine/conversation.h"
#include "server/openai_logprobs.h"
#include "server/openai_protocol.h"
#include "server/openai_responses.h"
#include "server/server_metrics.h"
#include "server/tokenize_endpoints.h"

namespace zc::server {

using nlohmann::json;

namespace {

// One request made ready to run: everything checked and tokenized, so that errors reach
// the client as a status before a stream has started.
struct Job {
  GenerationRequest request;
  ResponseHead head;
  std::vector<int32_t> prompt;
  std::string chat_text;  // chat: the rendered messages (prompt is their tokens)
  kv::MethodConfig method;
  std::string kv_label;
  engine::GenerationOptions options;
};

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& param = "",
                const std::string& code = "") {
  res.status = status;
  const char* type = status >= 500 ? "server_error" : "invalid_request_error";
  res.set_content(dump(error_body(message, type, param, code)), "application/json");
}

void send_json(httplib::Response& res, const json& j) {
  res.status = 200;
  res.set_content(dump(j), "application/json");
}

// The routes and the methods they take, for telling 405 from 404.
const std::vector<std::pair<std::string, std::string>> kRoutes = {
    {"/health", "GET"}, {"/metrics", "GET"}, {"/v1/models", "GET"}, {"/v1/chat/completions", "POST"}, {"/v1/completions", "POST"}};

}  // namespace

struct Server::Impl {
  Engine engine;
  ServerOptions options;
  int context = 0;
  int64_t started = 0;
  httplib::Server http;
  // The engine runs one generation at a time: decoders share the model (and a GPU
  // session's memory), and one sequence per request is what the engine offers. Later
  // requests wait here, on their HTTP worker thread; the other workers keep answering
  // /health and /v1/models meanwhile.
  std::mutex engine_mutex;
  // The prompt cache (ServerOptions::prompt_cache): the last request's sequence, kept.
  std::unique_ptr<engine::Conversation> conversation;
  kv::MethodConfig conversation_method;
  // ServerOptions::parallel > 1: the requests' generations, batched. Its thread calls no
  // client: text reaches each request's HTTP thread through its ticket.
  std::unique_ptr<engine::BatchScheduler> scheduler;
  ServerMetrics metrics;
  std::atomic<int> computing{0};  // --parallel 1: generations holding the engine (0 or 1)
  std::atomic<bool> stopping{false};  // stop() was called: cancel generations, serve no more
  std::atomic<bool> running{false};   // run() is inside (or about to enter) listen_after_bind
  std::mutex bind_mutex;
  int port = -1;  // once bound

  Impl(Engine e, ServerOptions o);
  void add_routes();
  Job prepare(const json& body, Endpoint endpoint) const;
  engine::GenerationResult generate(Job& job, const engine::TextCallback& on_text,
                                    const std::function<bool()>& client_gone);
  engine::GenerationResult generate_unlogged(Job& job, const engine::TextCallback& on_text,
                                             const std::function<bool()>& client_gone);
  void answer(const httplib::Request& req, httplib::Response& res, Endpoint endpoint);
  void stream(httplib::Response& res, std::shared_ptr<Job> job);
  TokenText token_text() const;  // a token id's own text, for logprobs
};

Server::Impl::Impl(Engine e, ServerOptions o) : engine(std::move(e)), options(std::move(o)) {
  if (!engine.config) fail("server: the engine has no model config");
  if (!engine.tokenizer) fail("server: the engine has no tokenizer");
  if (!engine.make_decoder) fail("server: the engine has no decoder factory");
  const int max_context = engine.config->max_position_embeddings;
  context = engine.context > 0 ? engine.context : max_context;
  if (context > max_context) fail("server: context {} is larger than the model's {}", context, max_context);
  if (options.default_max_tokens < -1)
    fail("server: default_max_tokens {} must be 0 or more, or -1", options.default_max_tokens);
  if (options.threads < 2) fail("server: {} threads; at least 2 (one for /health while one generates)", options.threads);
  if (options.parallel < 1) fail("server: {} parallel generations; at least 1", options.parallel);
  if (options.parallel > 1) {
    if (context < 2) fail("server: a context of {} tokens; at least 2", context);
    engine::BatchDecoderFactory make_batch = engine.make_batch;
    if (!make_batch) {
      make_batch = [make_decoder = engine.make_decoder, vocab = engine.config->vocab_size](
                       const kv::MethodConfig& m, int ctx, int slots) {
        return engine::sequential_batch(make_decoder, m, ctx, slots, vocab);
      };
    }
    scheduler = std::make_unique<engine::BatchScheduler>(std::move(make_batch), *engine.config, engine.tokenizer,
                                                         context, options.parallel);
  }
  started = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const size_t threads = size_t(options.threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(options.max_body_bytes);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a second server
  // binds the same port and silently takes half the connections.
  http.set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  add_routes();
}

Job Server::Impl::prepare(const json& body, Endpoint endpoint) const {
  Job job;
  job.request = endpoint == Endpoint::Chat ? parse_chat_request(body) : parse_completion_request(body);
  const GenerationRequest& r = job.request;
  if (r.kv) {
    try {
      job.method = kv::parse_method(*r.kv);
    } catch (const zc::Error& e) {
      throw ApiError(400, fmt::format("'kv': {}", e.what()), "kv");
    }
  } else {
    job.method = engine.default_method;
  }
  job.kv_label = job.method.label.empty() ? kv::method_name(job.method.method) : job.method.label;

  const char* prompt_param = endpoint == Endpoint::Chat ? "messages" : "prompt";
  if (endpoint == Endpoint::Chat) {
    if (!engine.render_chat) throw ApiError(400, "'messages': this server has no chat template; use /v1/completions", "messages");
    std::string text;
    try {
      text = engine.render_chat(r.messages, true, r.template_extra);
    } catch (const zc::Error& e) {
      throw ApiError(400, fmt::format("'messages': the chat template failed: {}", e.what()), "messages");
    }
    // Templates write BOS and the other special tokens themselves.
    job.prompt = engine.tokenizer->encode(text, /*add_special_tokens=*/false);
    job.chat_text = std::move(text);
  } else if (r.prompt_text) {
    try {
      job.prompt = engine.tokenizer->encode(*r.prompt_text, /*add_special_tokens=*/true);
    } catch (const zc::Error& e) {
      throw ApiError(400, fmt::format("'prompt': {}", e.what()), "prompt");
    }
  } else {
    for (size_t i = 0; i < r.prompt_ids.size(); ++i) {
      if (r.prompt_ids[i] >= engine.config->vocab_size)
        throw ApiError(400, fmt::format("'prompt[{}]': token {} is outside the vocabulary ({} tokens)", i,
                                        r.prompt_ids[i], engine.config->vocab_size),
                       fmt::format("prompt[{}]", i));
    }
    job.prompt = r.prompt_ids;
  }
  if (job.prompt.empty()) throw ApiError(400, fmt::format("'{}': the prompt has no tokens", prompt_param), prompt_param);
  // The engine needs room for at least one generated token.
  if (int(job.prompt.size()) >= context)
    throw ApiError(400,
                   fmt::format("'{}': the prompt has {} tokens but the context holds {} (at most {} prompt tokens)",
                               prompt_param, job.prompt.size(), context, context - 1),
                   prompt_param, "context_length_exceeded");

  engine::GenerationOptions& o = job.options;
  o.max_tokens = r.max_tokens ? *r.max_tokens : options.default_max_tokens;
  o.context = context;
  o.sampling = r.sampling;
  if (!r.seed_given) {  // OpenAI samples differently each time unless a seed is given
    std::random_device rd;
    o.sampling.seed = (uint64_t(rd()) << 32) ^ rd();
  }
  try {
    o.sampling.validate();
  } catch (const zc::Error& e) {
    throw ApiError(400, e.what());
  }
  o.stop = r.stop;
  if (endpoint == Endpoint::Chat) {
    for (const std::string& s : engine.chat_stop)
      if (std::find(o.stop.begin(), o.stop.end(), s) == o.stop.end()) o.stop.push_back(s);
  }
  o.ignore_eos = r.ignore_eos;
  o.logprobs = r.logprobs;
  job.head = make_head(endpoint, engine.model_name);
  return job;
}

engine::GenerationResult Server::Impl::generate(Job& job, const engine::TextCallback& on_text,
                                                const std::function<bool()>& client_gone) {
  metrics.started();
  try {
    engine::GenerationResult r = generate_unlogged(job, on_text, client_gone);
    metrics.finished(r);
    return r;
  } catch (const std::exception& e) {
    metrics.failed();
    if (options.log) options.log(fmt::format("a {}-token request failed: {}", job.prompt.size(), e.what()));
    throw;
  }
}

engine::GenerationResult Server::Impl::generate_unlogged(Job& job, const engine::TextCallback& on_text,
                                                         const std::function<bool()>& client_gone) {
  if (scheduler) {
    // The scheduler's stop() cancels what runs when the server stops.
    const auto ticket = scheduler->submit(engine::BatchJob{job.prompt, job.method, job.options});
    std::string text;
    while (ticket->wait_text(&text)) {
      if (on_text) on_text(text);
      if (client_gone && client_gone()) ticket->cancel();
    }
    return ticket->result();
  }
  std::lock_guard lock(engine_mutex);
  ++computing;
  struct Done {
    std::atomic<int>& n;
    ~Done() { --n; }
  } done{computing};
  job.options.cancelled = [&] { return stopping.load() || (client_gone && client_gone()); };
  if (options.prompt_cache) {
    // The last request's sequence stays (llama.cpp's cache_prompt): a request whose
    // prompt goes on from it, as a chat client's does when it sends the conversation
    // again with one more turn, computes only its new tokens (engine/conversation.h).
    // One sequence is kept, of the last request's KV method; another method's request
    // frees it first (its KV memory, a GPU session's runner).
    if (!conversation || !(conversation_method == job.method)) {
      conversation.reset();
      conversation = std::make_unique<engine::Conversation>(engine.make_decoder, job.method, context,
                                                            *engine.config, engine.tokenizer);
      conversation_method = job.method;
    }
    if (job.request.endpoint == Endpoint::Chat) return conversation->reply(job.chat_text, job.options, on_text);
    return conversation->reply(std::span<const int32_t>(job.prompt), job.options, on_text);
  }
  // Made per request and released before the lock: a request holds KV memory only while it runs.
  const std::unique_ptr<engine::Decoder> decoder = engine.make_decoder(job.method, context);
  if (!decoder) fail("the decoder factory gave no decoder for --kv {}", job.kv_label);
  return engine::generate_with(*decoder, *engine.config, engine.tokenizer, job.prompt, job.options, context,
                               on_text);
}

void Server::Impl::answer(const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
  auto job = std::make_shared<Job>(prepare(parse_body(req.body), endpoint));
  if (job->request.stream) return stream(res, std::move(job));
  const engine::GenerationResult r = generate(*job, {}, {});
  json logprobs = nullptr;
  if (job->options.logprobs >= 0) logprobs = logprobs_object(endpoint, r.logprobs, token_text(), nullptr);
  send_json(res, completion(job->head, r, job->kv_label, logprobs));
}

TokenText Server::Impl::token_text() const {
  const tok::Tokenizer* tokenizer = engine.tokenizer;
  return [tokenizer](int32_t id) { return tokenizer ? tokenizer->decode({id}, false) : std::to_string(id); };
}

// Server-Sent Events through httplib's chunked provider, which runs after the handler
// returned (the 200 and headers are already sent), so every failure from here on is
// reported in the stream as an error event, and nothing may throw out of it: the
// worker thread would end the process.
void Server::Impl::stream(httplib::Response& res, std::shared_ptr<Job> job) {
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream", [this, job](size_t, httplib::DataSink& sink) {
    bool gone = false;  // a failed write: the client went away
    const auto send = [&](const std::string& s) {
      if (!gone && !sink.write(s.data(), s.size())) gone = true;
    };
    const ResponseHead& head = job->head;
    // Log probabilities come from the sampling thread (a batch's scheduler) before their
    // token's text; each text chunk takes those that arrived before it, and the last
    // chunk what is left (tokens whose text a stop string cut).
    std::mutex logprobs_mutex;
    std::vector<engine::TokenLogprob> pending;
    size_t text_offset = 0;
    const TokenText text_of = token_text();
    if (job->options.logprobs >= 0) {
      job->options.on_logprob = [&](const engine::TokenLogprob& e) {
        std::lock_guard lock(logprobs_mutex);
        pending.push_back(e);
      };
    }
    const auto take_logprobs = [&]() -> json {
      if (job->options.logprobs < 0) return nullptr;
      std::lock_guard lock(logprobs_mutex);
      json out = logprobs_object(head.endpoint, pending, text_of, &text_offset);
      pending.clear();
      return out;
    };
    try {
      if (head.endpoint == Endpoint::Chat) send(sse_event(role_chunk(head)));
      const engine::GenerationResult r = generate(
          *job, [&](const std::string& text) { send(sse_event(text_chunk(head, text, take_logprobs()))); },
          [&] { return gone; });
      send(sse_event(final_chunk(head, r, job->kv_label, take_logprobs())));
      if (job->request.include_usage) send(sse_event(usage_chunk(head, r)));
    } catch (const zc::Error& e) {
      send(sse_event(error_body(e.what(), "invalid_request_error")));
    } catch (const std::exception& e) {
      send(sse_event(error_body(fmt::format("internal error: {}", e.what()), "server_error")));
    } catch (...) {
      send(sse_event(error_body("internal error", "server_error")));
    }
    send(kSseDone);
    if (gone) return false;  // httplib drops the connection
    sink.done();
    return true;
  });
}

void Server::Impl::add_routes() {
  // Every handler answers errors in OpenAI's shape; nothing escapes to httplib.
  const auto guarded = [](std::function<void(const httplib::Request&, httplib::Response&)> fn) {
    return [fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
      try {
        fn(req, res);
      } catch (const ApiError& e) {
        send_error(res, e.status(), e.what(), e.param(), e.code());
      } catch (const zc::Error& e) {
        send_error(res, 400, e.what());
      } catch (const std::exception& e) {
        send_error(res, 500, fmt::format("internal error: {}", e.what()));
      } catch (...) {
        send_error(res, 500, "internal error");
      }
    };
  };
  http.Post("/tokenize", guarded([this](const httplib::Request& req, httplib::Response& res) {
    send_json(res, tokenize_response(parse_body(req.body), engine, context));
  }));
  http.Post("/detokenize", guarded([this](const httplib::Request& req, httplib::Response& res) {
    send_json(res, detokenize_response(parse_body(req.body), engine));
  }));
  http.Get("/health", guarded([](const httplib::Request&, httplib::Response& res) {
    send_json(res, {{"status", "ok"}});
  }));
  http.Get("/metrics", guarded([this](const httplib::Request&, httplib::Response& res) {
    const engine::BatchScheduler::Stats st = scheduler ? scheduler->stats() : engine::BatchScheduler::Stats{};
    const int running = scheduler ? st.running : computing.load();
    res.status = 200;
    res.set_content(metrics.prometheus(running, st), "text/plain; version=0.0.4");
  }));
  http.Get("/v1/models", guarded([this](const httplib::Request&, httplib::Response& res) {
    send_json(res, model_list(engine.model_name, started, context));
  }));
  http.Post("/v1/chat/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
    answer(req, res, Endpoint::Chat);
  }));
  http.Post("/v1/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
    answer(req, res, Endpoint::Completion);
  }));

  // httplib's own errors (no route, body too large, a malformed request line) and the
  // handlers' (which already carry a JSON body) all pass here.
  http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                      httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message;
    if (res.status == 404) {
      message = fmt::format("unknown path: {} {}", req.method, req.path);
      for (const auto& [path, method] : kRoutes) {
        if (path == req.path) {  // the path exists, for another method
          res.status = 405;
          res.set_header("Allow", method);
          message = fmt::format("{} {}: method not allowed (use {})", req.method, req.path, method);
        }
      }
    } else if (res.status == 413) {
      message = fmt::format("the body is larger than {} bytes", options.max_body_bytes);
    } else {
      message = fmt::format("the request could not be read (HTTP {})", res.status);
    }
    send_error(res, res.status, message);
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, 500, "internal error");
  });
}

Server::Server(Engine engine, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(engine), std::move(options))) {}

Server::~Server() { stop(); }

int Server::bind() {
  std::lock_guard lock(impl_->bind_mutex);
  if (impl_->port >= 0) return impl_->port;
  const ServerOptions& o = impl_->options;
  if (o.port == 0)
    impl_->port = impl_->http.bind_to_any_port(o.host);
  else if (impl_->http.bind_to_port(o.host, o.port))
    impl_->port = o.port;
  if (impl_->port < 0) fail("server: cannot listen on {}:{} (in use, or not an address of this machine)", o.host, o.port);
  return impl_->port;
}

void Server::run() {
  bind();
  // running before the stopping check, and stop() the other way round: whichever
  // comes second sees the other, so a stop() racing with run() is never lost.
  impl_->running = true;
  if (!impl_->stopping) impl_->http.listen_after_bind();
  impl_->running = false;
}

engine::BatchScheduler::Stats Server::batch_stats() const {
  return impl_->scheduler ? impl_->scheduler->stats() : engine::BatchScheduler::Stats{};
}

void Server::stop() {
  impl_->stopping = true;
  if (impl_->scheduler) impl_->scheduler->stop();
  // httplib's stop() acts only once listening has begun; wait for that if run() is on its way.
  while (impl_->running && !impl_->http.is_running()) std::this_thread::yield();
  impl_->http.stop();
}

}  // namespace zc::server
