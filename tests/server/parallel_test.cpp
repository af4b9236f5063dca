// The server with ServerOptions::parallel > 1 (continuous batching) on the bundled tiny
// model: concurrent requests, streamed or not, chat or completion, of several KV
// methods, each get the answer the engine gives them alone, while the batch steps
// several of them at once.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <sstream>
#include <mutex>
#include <random>

#include "server_fixture.h"

namespace zc::server::testing {
namespace {

// GET /metrics as name -> value (Prometheus' text format; comment lines skipped).
std::map<std::string, double> metrics(const RunningServer& server) {
  const Reply r = get(server, "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type.rfind("text/plain", 0), 0u) << r.content_type;
  std::map<std::string, double> m;
  std::istringstream lines(r.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.find(' ');
    m[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return m;
}

struct Case {
  json body;
  std::string path;
  std::string want;
  int want_tokens = 0;
};

std::string streamed_text(const std::string& body, bool chat) {
  std::string text;
  for (const std::string& p : sse_payloads(body)) {
    if (p == "[DONE]") continue;
    const json j = json::parse(p);
    if (!j.contains("choices") || j["choices"].empty()) continue;
    const json& c = j["choices"][0];
    if (chat && c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
    if (!chat && c.contains("text")) text += c["text"].get<std::string>();
  }
  return text;
}

TEST(ServerParallel, ConcurrentRequestsEqualTheEngineAlone) {
  ServerOptions options;
  options.parallel = 3;
  RunningServer server(make_engine(256), options);
  std::mt19937 rng(5);
  const auto& tk = bundle().tokenizer;
  std::vector<Case> cases;
  const char* methods[] = {"fp16", "fp16", "kivi2", "fp16", "zipcache", "fp16", "fp16", "fp16"};
  for (int i = 0; i < 8; ++i) {
    Case c;
    const int n = 1 + int(rng() % 60), max_tokens = 1 + int(rng() % 40);
    std::vector<int32_t> ids;
    for (int k = 0; k < n; ++k) ids.push_back(int32_t(2 + rng() % 4000));
    const bool chat = i % 4 == 3, stream = i % 2 == 1;
    if (chat) {
      const json messages = {{{"role", "user"}, {"content", "Tell me about the cat number " + std::to_string(i)}}};
      ids = tk.encode(chatml(messages, true, json::object()), false);
      c.body = {{"messages", messages}};
      c.path = "/v1/chat/completions";
    } else {
      c.body = {{"prompt", ids}};
      c.path = "/v1/completions";
    }
    c.body["max_tokens"] = max_tokens;
    c.body["temperature"] = 0;
    c.body["ignore_eos"] = true;
    c.body["stream"] = stream;
    c.body["kv"] = methods[i];
    const auto want = direct(ids, max_tokens, methods[i], {}, true);
    c.want = want.text;
    c.want_tokens = int(want.tokens.size());
    cases.push_back(std::move(c));
  }
  std::vector<Reply> replies(cases.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < cases.size(); ++i)
    clients.emplace_back([&, i] { replies[i] = post(server, cases[i].path, cases[i].body); });
  EXPECT_EQ(get(server, "/health").status, 200);
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i) + ": " + cases[i].body.dump());
    const Reply& r = replies[i];
    ASSERT_EQ(r.status, 200) << r.body;
    const bool chat = cases[i].path == "/v1/chat/completions";
    if (cases[i].body["stream"].get<bool>()) {
      EXPECT_EQ(streamed_text(r.body, chat), cases[i].want);
    } else {
      const json& c = r.json_body["choices"][0];
      EXPECT_EQ(chat ? c["message"]["content"] : c["text"], cases[i].want);
      EXPECT_EQ(r.json_body["usage"]["completion_tokens"].get<int>(), cases[i].want_tokens);
      EXPECT_EQ(r.json_body["zipcache"]["kv"], cases[i].body["kv"]);
    }
  }
  const engine::BatchScheduler::Stats st = server.server().batch_stats();
  EXPECT_GE(st.max_rows, 2) << "no step ran two requests together";
  EXPECT_LE(st.max_rows, 3);
  EXPECT_EQ(st.prefills, 8);
  auto m = metrics(server);
  int generated = 0;
  for (const Case& c : cases) generated += c.want_tokens;
  EXPECT_EQ(m["zipcache_requests_succeeded_total"], 8);
  EXPECT_EQ(m["zipcache_requests_failed_total"], 0);
  EXPECT_EQ(m["zipcache_requests_running"], 0);
  EXPECT_EQ(m["zipcache_requests_waiting"], 0);
  EXPECT_EQ(m["zipcache_generation_tokens_total"], generated);
  EXPECT_EQ(m["zipcache_batch_steps_total"], double(st.steps));
  EXPECT_EQ(m["zipcache_batch_rows_total"], double(st.step_rows));
  // Time counters: every prefill and step took some, and they are the scheduler's.
  EXPECT_GT(m["zipcache_batch_prefill_seconds_total"], 0.0);
  EXPECT_GT(m["zipcache_batch_step_seconds_total"], 0.0);
  EXPECT_GT(m["zipcache_batch_sample_seconds_total"], 0.0);
  const engine::BatchScheduler::Stats later = server.server().batch_stats();
  EXPECT_NEAR(m["zipcache_batch_step_seconds_total"], later.step_seconds, 1e-6 * later.step_seconds + 1e-9);
  EXPECT_NEAR(m["zipcache_batch_prefill_seconds_total"], later.prefill_seconds, 1e-6 * later.prefill_seconds + 1e-9);
}

// /metrics while requests run, the decoders held at their first step by a gate: one
// generating and two waiting for the engine (--parallel 1), or three between the slots
// and the queue (--parallel 3: the first one's step holds the scheduler before the others
// are admitted); once the gate opens, every counter adds up.
TEST(ServerParallel, MetricsCountRunningAndWaiting) {
  struct Gate {
    std::mutex mutex;
    std::condition_variable opened;
    bool open = false;
  };
  struct Gated final : engine::Decoder {
    std::unique_ptr<engine::Decoder> inner;
    Gate* gate = nullptr;
    std::vector<float> prefill(std::span<const int32_t> p) override { return inner->prefill(p); }
    std::vector<float> step(int32_t id) override {
      std::unique_lock lock(gate->mutex);
      gate->opened.wait(lock, [&] { return gate->open; });
      return inner->step(id);
    }
    kv::MemoryReport memory() const override { return inner->memory(); }
  };
  for (const int parallel : {1, 3}) {
    SCOPED_TRACE("parallel " + std::to_string(parallel));
    Gate gate;
    Engine e = make_engine();
    e.make_decoder = [&gate](const kv::MethodConfig& m, int ctx) {
      auto d = std::make_unique<Gated>();
      d->inner = engine::cpu_decoder(bundle().model, m, ctx);
      d->gate = &gate;
      return d;
    };
    ServerOptions options;
    options.parallel = parallel;
    options.prompt_cache = false;
    RunningServer server(std::move(e), options);
    std::vector<std::thread> clients;
    std::vector<int> status(3, 0);
    for (int i = 0; i < 3; ++i) {
      clients.emplace_back([&, i] {
        status[size_t(i)] = post(server, "/v1/completions",
                                 json{{"prompt", {5, 6, 7}}, {"max_tokens", 5}, {"ignore_eos", true}})
                                .status;
      });
    }
    std::map<std::string, double> m;
    for (int i = 0; i < 2000; ++i) {
      m = metrics(server);
      if (m["zipcache_requests_running"] >= 1 && m["zipcache_requests_running"] + m["zipcache_requests_waiting"] == 3)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(m["zipcache_requests_running"] + m["zipcache_requests_waiting"], 3);
    if (parallel == 1) {
      EXPECT_EQ(m["zipcache_requests_running"], 1);
    } else {
      EXPECT_GE(m["zipcache_requests_running"], 1);
    }
    {
      std::lock_guard lock(gate.mutex);
      gate.open = true;
    }
    gate.opened.notify_all();
    for (auto& t : clients) t.join();
    EXPECT_EQ(status, std::vector<int>(3, 200));
    m = metrics(server);
    EXPECT_EQ(m["zipcache_requests_succeeded_total"], 3);
    EXPECT_EQ(m["zipcache_requests_failed_total"], 0);
    EXPECT_EQ(m["zipcache_requests_running"], 0);
    EXPECT_EQ(m["zipcache_requests_waiting"], 0);
    EXPECT_EQ(m["zipcache_prompt_tokens_total"], 9);
    EXPECT_EQ(m["zipcache_generation_tokens_total"], 15);
  }
}

// A client that leaves a stream frees its slot: the requests behind it do not wait for
// thousands of tokens nobody reads.
TEST(ServerParallel, ClientGoneFreesItsSlot) {
  ServerOptions options;
  options.parallel = 2;
  RunningServer server(make_engine(), options);
  const json body = {{"prompt", "Once"}, {"max_tokens", 3500}, {"ignore_eos", true}, {"stream", true}, {"temperature", 0}};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> leavers;
  for (int i = 0; i < 2; ++i) {
    leavers.emplace_back([&] { EXPECT_TRUE(leave_stream(server, body, 3)); });
  }
  for (auto& t : leavers) t.join();
  const Reply r = post(server, "/v1/completions", json{{"prompt", "Once"}, {"max_tokens", 1}});
  EXPECT_EQ(r.status, 200) << r.body;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto few = direct(bundle().tokenizer.encode("Once", true), 50, "fp16", {}, true);
  EXPECT_LT(seconds, 20 * (few.decode_seconds + few.prefill_seconds) + 5.0);
}

// A generation that fails after its request was accepted reaches the client as an
// error and the operator's log, for both ways of running requests.
TEST(ServerParallel, FailedGenerationsAreLogged) {
  struct Failing final : engine::Decoder {
    std::vector<float> prefill(std::span<const int32_t>) override { zc::fail("device lost"); }
    std::vector<float> step(int32_t) override { zc::fail("device lost"); }
    kv::MemoryReport memory() const override { return {}; }
  };
  for (const int parallel : {1, 2}) {
    SCOPED_TRACE("parallel " + std::to_string(parallel));
    Engine e = make_engine();
    e.make_decoder = [](const kv::MethodConfig&, int) { return std::make_unique<Failing>(); };
    ServerOptions options;
    options.parallel = parallel;
    options.prompt_cache = false;
    std::mutex mutex;
    std::vector<std::string> lines;
    options.log = [&](const std::string& line) {
      std::lock_guard lock(mutex);
      lines.push_back(line);
    };
    RunningServer server(std::move(e), options);
    const Reply r = post(server, "/v1/completions", json{{"prompt", "Once"}, {"max_tokens", 3}});
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find("device lost"), std::string::npos) << r.body;
    std::lock_guard lock(mutex);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("device lost"), std::string::npos) << lines[0];
  }
}

TEST(ServerParallel, RefusesNoSlots) {
  ServerOptions options;
  options.parallel = 0;
  EXPECT_THROW(Server(make_engine(), options), zc::Error);
}

}  // namespace
}  // namespace zc::server::testing
