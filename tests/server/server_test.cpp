// The server end to end over HTTP on the bundled tiny model: answers equal the engine
// run directly on the same ids, in the OpenAI shapes, streamed or not.
#include <atomic>
#include <chrono>
#include <random>

#include "server_fixture.h"

namespace zc::server::testing {
namespace {

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new RunningServer(make_engine()); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static RunningServer* server_;
};
RunningServer* ServerTest::server_ = nullptr;

std::string random_text(std::mt19937& rng, int words) {
  static const char* vocab[] = {"the", "little", "cat", "sat", "on", "a", "mat", "and", "then", "went",
                                "home", "to", "play", "with", "her", "friend", "dog", "sun", "was", "happy"};
  std::string s;
  for (int i = 0; i < words; ++i) {
    if (i > 0) s += ' ';
    s += vocab[rng() % std::size(vocab)];
  }
  return s;
}

void expect_completion_shape(const json& j, bool chat) {
  EXPECT_EQ(j["object"], chat ? "chat.completion" : "text_completion");
  EXPECT_EQ(j["id"].get<std::string>().rfind(chat ? "chatcmpl-" : "cmpl-", 0), 0u);
  EXPECT_TRUE(j["created"].is_number_integer());
  EXPECT_EQ(j["model"], "tiny");
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  const json& u = j["usage"];
  EXPECT_EQ(u["total_tokens"].get<int>(), u["prompt_tokens"].get<int>() + u["completion_tokens"].get<int>());
  for (const char* k : {"kv", "kv_bytes", "fp16_kv_bytes", "compression_ratio", "prefill_seconds", "decode_seconds"})
    EXPECT_TRUE(j["zipcache"].contains(k)) << k;
}

TEST_F(ServerTest, HealthAndModels) {
  const Reply h = get(*server_, "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.json_body, json({{"status", "ok"}}));
  EXPECT_EQ(h.content_type, "application/json");
  const Reply m = get(*server_, "/v1/models");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.json_body["object"], "list");
  ASSERT_EQ(m.json_body["data"].size(), 1u);
  EXPECT_EQ(m.json_body["data"][0]["id"], "tiny");
  EXPECT_EQ(m.json_body["data"][0]["object"], "model");
  EXPECT_EQ(m.json_body["data"][0]["max_model_len"], bundle().model.config().max_position_embeddings);
}

// Random prompts of several lengths, as text and as ids: the greedy answer is the
// engine's own, token for token.
TEST_F(ServerTest, GreedyCompletionsEqualTheEngine) {
  std::mt19937 rng(7);
  const auto& tk = bundle().tokenizer;
  for (int words : {1, 3, 9, 40}) {
    const std::string text = random_text(rng, words);
    const auto ids = tk.encode(text, true);
    const auto want = direct(ids, 12);
    const Reply r = post(*server_, "/v1/completions", json{{"prompt", text}, {"max_tokens", 12}, {"temperature", 0}});
    ASSERT_EQ(r.status, 200) << r.body;
    expect_completion_shape(r.json_body, false);
    EXPECT_EQ(r.json_body["choices"][0]["text"], want.text) << text;
    EXPECT_EQ(r.json_body["usage"]["prompt_tokens"], ids.size());
    EXPECT_EQ(r.json_body["usage"]["completion_tokens"], want.tokens.size());
    EXPECT_EQ(r.json_body["choices"][0]["finish_reason"], want.stop_reason == "eos" ? "stop" : "length");
    EXPECT_EQ(r.json_body["zipcache"]["kv"], "fp16");
  }
  for (int n : {1, 2, 17, 90}) {
    std::vector<int32_t> ids;
    for (int i = 0; i < n; ++i) ids.push_back(int32_t(2 + rng() % 4000));
    const auto want = direct(ids, 10);
    const Reply r = post(*server_, "/v1/completions", json{{"prompt", ids}, {"max_tokens", 10}, {"temperature", 0}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json_body["choices"][0]["text"], want.text) << n << " ids";
    EXPECT_EQ(r.json_body["usage"]["prompt_tokens"], n);
    EXPECT_EQ(r.json_body["usage"]["completion_tokens"], want.tokens.size());
  }
  // A list holding one string is the same prompt as the string.
  const Reply one = post(*server_, "/v1/completions", json{{"prompt", {"the cat"}}, {"max_tokens", 5}, {"temperature", 0}});
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.json_body["choices"][0]["text"], direct(tk.encode("the cat", true), 5).text);
}

TEST_F(ServerTest, ChatCompletionRendersTheMessages) {
  const json messages = {{{"role", "system"}, {"content", "You are kind."}},
                         {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Tell me"}}, {{"type", "text"}, {"text", "a story."}}}}}};
  const json flat = {{{"role", "system"}, {"content", "You are kind."}}, {{"role", "user"}, {"content", "Tell me\na story."}}};
  const auto ids = bundle().tokenizer.encode(chatml(flat, true, json::object()), false);
  ASSERT_EQ(ids.front(), bundle().tokenizer.bos_id());  // one BOS: the template's
  ASSERT_NE(ids[1], bundle().tokenizer.bos_id());
  const auto want = direct(ids, 16);
  const Reply r = post(*server_, "/v1/chat/completions",
                       json{{"model", "anything"}, {"messages", messages}, {"max_completion_tokens", 16}, {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.body;
  expect_completion_shape(r.json_body, true);
  EXPECT_EQ(r.json_body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(r.json_body["choices"][0]["message"]["content"], want.text);
  EXPECT_EQ(r.json_body["usage"]["prompt_tokens"], ids.size());
  EXPECT_EQ(r.json_body["usage"]["completion_tokens"], want.tokens.size());
}

// Streams reassemble to the non-streamed answer, in OpenAI's chunk shapes, ending with
// the usage chunk (when asked) and [DONE].
TEST_F(ServerTest, StreamingReassemblesToTheSameText) {
  for (bool chat : {true, false}) {
    for (bool include_usage : {true, false}) {
      json body = {{"max_tokens", 24}, {"temperature", 0}};
      if (chat)
        body["messages"] = {{{"role", "user"}, {"content", "Once upon a time"}}};
      else
        body["prompt"] = "Once upon a time";
      const std::string path = chat ? "/v1/chat/completions" : "/v1/completions";
      const Reply whole = post(*server_, path, body);
      ASSERT_EQ(whole.status, 200) << whole.body;
      body["stream"] = true;
      if (include_usage) body["stream_options"] = {{"include_usage", true}};
      const Reply streamed = post(*server_, path, body);
      ASSERT_EQ(streamed.status, 200) << streamed.body;
      EXPECT_EQ(streamed.content_type, "text/event-stream");
      const auto events = sse_payloads(streamed.body);
      ASSERT_GE(events.size(), 3u);
      EXPECT_EQ(events.back(), "[DONE]");
      std::string text;
      std::string finish;
      std::optional<json> usage_seen;
      std::string id;
      for (size_t i = 0; i + 1 < events.size(); ++i) {
        const json c = json::parse(events[i]);
        EXPECT_EQ(c["object"], chat ? "chat.completion.chunk" : "text_completion");
        if (i == 0) id = c["id"];
        EXPECT_EQ(c["id"], id);  // one id for the whole stream
        if (c["choices"].empty()) {  // the usage chunk, last before [DONE]
          EXPECT_EQ(i + 2, events.size());
          usage_seen = c["usage"];
          continue;
        }
        const json& ch = c["choices"][0];
        if (chat && i == 0) {
          EXPECT_EQ(ch["delta"]["role"], "assistant");
        }
        EXPECT_TRUE(finish.empty()) << "a chunk after the one with finish_reason";
        if (!ch["finish_reason"].is_null()) {
          finish = ch["finish_reason"];
          EXPECT_TRUE(c.contains("zipcache"));
        }
        if (chat && ch["delta"].contains("content")) text += ch["delta"]["content"].get<std::string>();
        if (!chat) text += ch["text"].get<std::string>();
      }
      const json& want = whole.json_body["choices"][0];
      EXPECT_EQ(text, (chat ? want["message"]["content"] : want["text"]).get<std::string>());
      EXPECT_EQ(finish, want["finish_reason"].get<std::string>());
      EXPECT_EQ(usage_seen.has_value(), include_usage);
      if (usage_seen) {
        EXPECT_EQ(*usage_seen, whole.json_body["usage"]);
      }
    }
  }
}

TEST_F(ServerTest, StopStringsAndMaxTokens) {
  const auto ids = bundle().tokenizer.encode("Once upon a time", true);
  const auto full = direct(ids, 30, "fp16", {}, true);
  ASSERT_GT(full.text.size(), 12u);
  const std::string stop = full.text.substr(8, 3);
  const size_t cut = full.text.find(stop);
  for (bool stream : {false, true}) {
    const Reply r = post(*server_, "/v1/completions",
                         json{{"prompt", ids}, {"max_tokens", 30}, {"temperature", 0}, {"ignore_eos", true},
                              {"stop", {"\x01never", stop}}, {"stream", stream}});
    ASSERT_EQ(r.status, 200) << r.body;
    std::string text;
    std::string finish;
    if (stream) {
      for (const auto& e : sse_payloads(r.body)) {
        if (e == "[DONE]") continue;
        const json c = json::parse(e);
        text += c["choices"][0]["text"].get<std::string>();
        if (!c["choices"][0]["finish_reason"].is_null()) finish = c["choices"][0]["finish_reason"];
      }
    } else {
      text = r.json_body["choices"][0]["text"];
      finish = r.json_body["choices"][0]["finish_reason"];
      EXPECT_EQ(r.json_body["zipcache"]["stop_reason"], "stop string");
    }
    EXPECT_EQ(text, full.text.substr(0, cut)) << "stop '" << stop << "'";
    EXPECT_EQ(finish, "stop");
  }
  for (int n : {1, 5}) {
    const Reply r = post(*server_, "/v1/completions",
                         json{{"prompt", ids}, {"max_tokens", n}, {"ignore_eos", true}, {"seed", 3}, {"temperature", 0.9}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json_body["usage"]["completion_tokens"], n);
    EXPECT_EQ(r.json_body["choices"][0]["finish_reason"], "length");
  }
}

// Sampling with a seed is reproducible; the same request twice gives the same text.
TEST_F(ServerTest, SeededSamplingRepeats) {
  const json body = {{"prompt", "The dog"}, {"max_tokens", 16}, {"temperature", 1.0}, {"top_k", 50},
                     {"top_p", 0.9}, {"min_p", 0.01}, {"seed", 1234}, {"ignore_eos", true}};
  const Reply a = post(*server_, "/v1/completions", body);
  const Reply b = post(*server_, "/v1/completions", body);
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.json_body["choices"][0]["text"], b.json_body["choices"][0]["text"]);
}

// A KV method per request: the same answer as the engine with that method, and the
// cache smaller than fp16 once the prompt outgrows the methods' fp16 windows.
TEST_F(ServerTest, PerRequestKvMethod) {
  std::mt19937 rng(11);
  std::vector<int32_t> ids;
  for (int i = 0; i < 300; ++i) ids.push_back(int32_t(2 + rng() % 4000));
  for (const std::string kv : {"kivi2", "zipcache", "zipcache:ratio=0.3"}) {
    const auto want = direct(ids, 6, kv, {}, true);
    const Reply r = post(*server_, "/v1/completions",
                         json{{"prompt", ids}, {"max_tokens", 6}, {"temperature", 0}, {"ignore_eos", true}, {"kv", kv}});
    ASSERT_EQ(r.status, 200) << r.body;
    expect_completion_shape(r.json_body, false);
    const json& z = r.json_body["zipcache"];
    EXPECT_EQ(z["kv"], kv);
    EXPECT_GT(z["compression_ratio"].get<double>(), 1.0) << kv;
    EXPECT_LT(z["kv_bytes"].get<size_t>(), z["fp16_kv_bytes"].get<size_t>());
    EXPECT_EQ(z["kv_bytes"], want.memory.total());
    EXPECT_EQ(r.json_body["choices"][0]["text"], want.text) << kv;
  }
  const Reply fp16 = post(*server_, "/v1/completions", json{{"prompt", ids}, {"max_tokens", 2}, {"temperature", 0}});
  ASSERT_EQ(fp16.status, 200);
  EXPECT_DOUBLE_EQ(fp16.json_body["zipcache"]["compression_ratio"].get<double>(), 1.0);
}

// One generation at a time, but /health answers meanwhile, and requests that wait for
// the engine get their own answers.
TEST_F(ServerTest, ConcurrentRequests) {
  const auto ids = bundle().tokenizer.encode("One day", true);
  const auto want = direct(ids, 40, "fp16", {}, true);
  std::vector<std::string> texts(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      const Reply r = post(*server_, "/v1/completions",
                           json{{"prompt", ids}, {"max_tokens", 40}, {"temperature", 0}, {"ignore_eos", true}});
      texts[size_t(i)] = r.status == 200 ? r.json_body["choices"][0]["text"].get<std::string>() : r.body;
    });
  }
  const Reply h = get(*server_, "/health");
  EXPECT_EQ(h.status, 200);
  for (auto& t : threads) t.join();
  for (const auto& t : texts) EXPECT_EQ(t, want.text);
}

// A client that leaves a stream cancels its generation: the next request does not wait
// for thousands of tokens nobody reads.
TEST_F(ServerTest, ClientGoneCancelsTheStream) {
  const json body = {{"prompt", "Once"}, {"max_tokens", 3500}, {"ignore_eos", true}, {"stream", true}, {"temperature", 0}};
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(leave_stream(*server_, body, 3));
  const Reply r = post(*server_, "/v1/completions", json{{"prompt", "Once"}, {"max_tokens", 1}});
  EXPECT_EQ(r.status, 200) << r.body;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // 3500 tokens take minutes on this model; a cancelled stream ends within a few tokens.
  const auto few = direct(bundle().tokenizer.encode("Once", true), 50, "fp16", {}, true);
  EXPECT_LT(seconds, 20 * (few.decode_seconds + few.prefill_seconds) + 5.0);
}

}  // namespace
}  // namespace zc::server::testing
