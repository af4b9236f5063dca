// The server's inside (server.h), shared by its two source files: server.cpp (set-up,
// routes, run and stop) and server_requests.cpp (a request made ready, generated and
// answered, whole or streamed).
#pragma once
#include <httplib.h>

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/batch_scheduler.h"
#include "engine/conversation.h"
#include "server/openai_logprobs.h"
#include "server/openai_protocol.h"
#include "server/openai_responses.h"
#include "server/server.h"
#include "server/server_metrics.h"

namespace zc::server {

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

inline void send_error(httplib::Response& res, int status, const std::string& message, const std::string& param = "",
                       const std::string& code = "") {
  res.status = status;
  const char* type = status >= 500 ? "server_error" : "invalid_request_error";
  res.set_content(dump(error_body(message, type, param, code)), "application/json");
}

inline void send_json(httplib::Response& res, const nlohmann::json& j) {
  res.status = 200;
  res.set_content(dump(j), "application/json");
}

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
  Job prepare(const nlohmann::json& body, Endpoint endpoint) const;
  // Without a batch (--parallel 1): one generation on the engine, counted in the
  // metrics; generate_unlogged runs it under the engine's lock.
  engine::GenerationResult generate(Job& job, const engine::TextCallback& on_text,
                                    const std::function<bool()>& client_gone);
  void failed(const Job& job, const std::exception& e);  // metrics and the failure log
  engine::GenerationResult generate_unlogged(Job& job, const engine::TextCallback& on_text,
                                             const std::function<bool()>& client_gone);
  // The request's n choices (OpenAI's "n"): generations of its prompt, choice i with
  // seed + i, side by side in a batch, else one after another. Each callback gets the
  // choice's index; a choice's text and end come after the previous choice's end.
  struct Choices {
    std::function<void(int, const std::string&)> on_text;
    std::function<void(int, const engine::TokenLogprob&)> on_logprob;  // from the sampling thread
    std::function<void(int, const engine::GenerationResult&)> on_end;
    std::function<bool()> client_gone;
  };
  std::vector<engine::GenerationResult> generate_choices(Job& job, const Choices& to);
  void answer(const httplib::Request& req, httplib::Response& res, Endpoint endpoint);
  void stream(httplib::Response& res, std::shared_ptr<Job> job);
  TokenText token_text() const;  // a token id's own text, for logprobs
};

}  // namespace zc::server
