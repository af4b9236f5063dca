// An OpenAI-compatible HTTP server over the engine (cpp-httplib): GET /health,
// GET /metrics, GET /v1/models, POST /v1/chat/completions and POST /v1/completions,
// streamed as Server-Sent Events on request, and POST /tokenize and /detokenize. HTTP
// requests are served by a thread pool, so /health answers while generations run. With
// ServerOptions::parallel = 1 the engine runs one generation at a time (later requests
// wait); with more, concurrent requests share a batch of that many slots
// (engine/batch_scheduler.h: continuous batching), a request's "n" choices among them.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/batch_scheduler.h"
#include "engine/generator.h"
#include "kv/method.h"
#include "model/config.h"
#include "tokenizer/tokenizer.h"

namespace zc::server {

// Turns chat messages into prompt text (a chat template). `extra` holds the request's
// chat_template_kwargs ({} when none). A zc::Error it throws (e.g. the template's
// raise_exception) becomes a 400 naming "messages". Must be thread-safe.
using ChatRenderer = std::function<std::string(const nlohmann::json& messages, bool add_generation_prompt,
                                               const nlohmann::json& extra)>;

// What the server drives. The caller owns everything it points to, for the server's life.
struct Engine {
  const model::ModelConfig* config = nullptr;   // vocabulary size and context limit
  const tok::Tokenizer* tokenizer = nullptr;     // required
  ChatRenderer render_chat;                      // empty: /v1/chat/completions answers 400
  // Stop strings every chat request gets besides its own (e.g. the ChatML markers when
  // ChatML stands in for a model trained without them, which emits them as text).
  std::vector<std::string> chat_stop;
  engine::DecoderFactory make_decoder;           // one decoder per request, released after it
  // Batches for ServerOptions::parallel > 1; empty: engine::sequential_batch over
  // make_decoder (slots stepped one after another: the CPU's).
  engine::BatchDecoderFactory make_batch;
  kv::MethodConfig default_method;               // when a request has no "kv"
  int context = 0;                               // tokens per sequence; 0: max_position_embeddings
  std::string model_name = "zipcache";           // "model" in responses and /v1/models
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port (bind() says which)
  int default_max_tokens = 256;     // when a request gives none; -1: until EOS or a full context
  size_t max_body_bytes = size_t(8) << 20;  // larger bodies are answered 413
  int threads = 8;                  // HTTP worker threads (requests beyond wait in a queue)
  // Keep the last request's sequence and reuse it for a request whose prompt goes on
  // from it (a chat's next turn); off: every request prefills its whole prompt in a
  // sequence of its own, freed after it.
  // (parallel = 1 only.)
  bool prompt_cache = true;
  // Generations at once: concurrent requests take the slots of one batch, each step
  // feeding every busy slot, and wait for a free slot beyond that (vLLM's and
  // llama.cpp's continuous batching). 1: one at a time, with the prompt cache.
  int parallel = 1;
  // Told of every generation that failed after its request was accepted (the KV pool
  // out of memory, NaN logits, a device error): the operator's log. Empty: none.
  std::function<void(const std::string&)> log;
};

class Server {
 public:
  // Throws zc::Error for an Engine without config, tokenizer or make_decoder, a context
  // over the model's max_position_embeddings, default_max_tokens < -1, threads < 2 or
  // parallel < 1.
  Server(Engine engine, ServerOptions options);
  ~Server();  // stops the server if it runs; the thread in run() must be joined first
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket and returns its port (the one chosen for port 0).
  // Throws zc::Error when the address cannot be bound.
  int bind();
  // Serves until stop() (from another thread); binds first when bind() was not called.
  // A server runs once: after stop() it does not serve again.
  void run();
  // Thread-safe, idempotent: ends run() and cancels a generation in progress.
  void stop();
  // What the batch has run so far (ServerOptions::parallel > 1; zeros otherwise).
  engine::BatchScheduler::Stats batch_stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace zc::server
