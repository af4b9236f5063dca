#include "server/server.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "core/error.h"
#include "server/server_impl.h"
#include "server/tokenize_endpoints.h"

namespace zc::server {

using nlohmann::json;

namespace {

// The routes and the methods they take, for telling 405 from 404.
const std::vector<std::pair<std::string, std::string>> kRoutes = {
    {"/health", "GET"},       {"/metrics", "GET"},        {"/v1/models", "GET"}, {"/v1/chat/completions", "POST"},
    {"/v1/completions", "POST"}, {"/tokenize", "POST"}, {"/detokenize", "POST"}};

}  // namespace

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
