// Shared by the server tests: the bundled tiny model loaded once, a Server running on
// a free port in a thread, a ChatML renderer, and small HTTP helpers.
#pragma once
#include <httplib.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/generator.h"
#include "kv/method.h"
#include "model/forward.h"
#include "server/server.h"
#include "tokenizer/tokenizer.h"

namespace zc::server::testing {

using nlohmann::json;

inline const std::string kModelDir = ZC_SOURCE_DIR "/models/zipcache-tiny-19m";

struct Bundle {
  model::Model model;
  tok::Tokenizer tokenizer;
};

// Loaded on first use and kept for the process (every test reads it, none changes it).
inline const Bundle& bundle() {
  static const Bundle b{model::Model::load(kModelDir), tok::Tokenizer::from_dir(kModelDir)};
  return b;
}

// ChatML, as a model without its own template would get it; BOS written by the template.
inline std::string chatml(const json& messages, bool add_generation_prompt, const json& /*extra*/) {
  std::string s = "<|begin_of_text|>";
  for (const auto& m : messages) {
    const std::string content = m.contains("content") && m["content"].is_string() ? m["content"].get<std::string>() : "";
    s += "<|im_start|>" + m["role"].get<std::string>() + "\n" + content + "<|im_end|>\n";
  }
  if (add_generation_prompt) s += "<|im_start|>assistant\n";
  return s;
}

inline Engine make_engine(int context = 0) {
  const Bundle& b = bundle();
  Engine e;
  e.config = &b.model.config();
  e.tokenizer = &b.tokenizer;
  e.render_chat = chatml;
  e.make_decoder = [&b](const kv::MethodConfig& method, int ctx) { return engine::cpu_decoder(b.model, method, ctx); };
  e.default_method = kv::parse_method("fp16");
  e.context = context;
  e.model_name = "tiny";
  return e;
}

// A server on a free port, served from a thread; stopped and joined on destruction.
class RunningServer {
 public:
  explicit RunningServer(Engine engine, ServerOptions options = {}) {
    options.port = 0;
    server_ = std::make_unique<Server>(std::move(engine), options);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~RunningServer() {
    server_->stop();
    thread_.join();
  }
  int port() const { return port_; }
  Server& server() { return *server_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(600, 0);  // generations under sanitizers are slow
    c.set_write_timeout(60, 0);
    return c;
  }

 private:
  std::unique_ptr<Server> server_;
  int port_ = 0;
  std::thread thread_;
};

struct Reply {
  int status = 0;
  std::string body;
  json json_body;  // null when the body is not JSON
  std::string content_type;
};

inline Reply to_reply(const httplib::Result& res) {
  Reply r;
  if (!res) {
    ADD_FAILURE() << "no HTTP response: " << httplib::to_string(res.error());
    return r;
  }
  r.status = res->status;
  r.body = res->body;
  r.content_type = res->get_header_value("Content-Type");
  r.json_body = json::parse(r.body, nullptr, false);
  if (r.json_body.is_discarded()) r.json_body = nullptr;
  return r;
}

inline Reply post(const RunningServer& s, const std::string& path, const std::string& body) {
  auto c = s.client();
  return to_reply(c.Post(path.c_str(), body, "application/json"));
}
inline Reply post(const RunningServer& s, const std::string& path, const json& body) {
  return post(s, path, body.dump());
}
inline Reply get(const RunningServer& s, const std::string& path) {
  auto c = s.client();
  return to_reply(c.Get(path.c_str()));
}

// The "data: ..." payloads of an event stream, in order ("[DONE]" included).
inline std::vector<std::string> sse_payloads(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "unterminated event at " << pos;
    if (end == std::string::npos) break;
    const std::string event = body.substr(pos, end - pos);
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    out.push_back(event.substr(6));
    pos = end + 2;
  }
  return out;
}

// Sends a streamed request and leaves after `chunks` chunks, as a client that goes away;
// true when the client ended it (not the server).
inline bool leave_stream(const RunningServer& s, const json& body, int chunks) {
  auto c = s.client();
  int seen = 0;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++seen < chunks; };
  return !c.send(req);
}

// Greedy generation run directly on the engine, the reference the server must equal.
inline engine::GenerationResult direct(const std::vector<int32_t>& ids, int max_tokens,
                                       const std::string& kv = "fp16", std::vector<std::string> stop = {},
                                       bool ignore_eos = false) {
  engine::GenerationOptions o;
  o.max_tokens = max_tokens;
  o.sampling.temperature = 0;
  o.stop = std::move(stop);
  o.ignore_eos = ignore_eos;
  const Bundle& b = bundle();
  return engine::generate(b.model, &b.tokenizer, kv::parse_method(kv), ids, o);
}

}  // namespace zc::server::testing
