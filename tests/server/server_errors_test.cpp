// Bad requests get OpenAI's error object with the right status and a message naming
// the field; the server keeps serving after each.
#include <atomic>
#include <chrono>

#include "server_fixture.h"

namespace zc::server::testing {
namespace {

class ServerErrorsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ServerOptions o;
    o.max_body_bytes = 4096;
    server_ = new RunningServer(make_engine(/*context=*/32), o);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static RunningServer* server_;
};
RunningServer* ServerErrorsTest::server_ = nullptr;

void expect_error(const Reply& r, int status, const std::string& param, const std::string& in_message = "") {
  EXPECT_EQ(r.status, status) << r.body;
  ASSERT_TRUE(r.json_body.is_object()) << r.body;
  const json& e = r.json_body["error"];
  ASSERT_TRUE(e.is_object()) << r.body;
  EXPECT_EQ(e["type"], status >= 500 ? "server_error" : "invalid_request_error");
  EXPECT_TRUE(e.contains("code"));
  if (param.empty()) {
    EXPECT_TRUE(e["param"].is_null()) << r.body;
  } else {
    EXPECT_EQ(e["param"], param) << r.body;
    EXPECT_NE(e["message"].get<std::string>().find(param), std::string::npos) << r.body;
  }
  if (!in_message.empty()) {
    EXPECT_NE(e["message"].get<std::string>().find(in_message), std::string::npos) << r.body;
  }
}

const json kChat = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 2}};
const json kCompletion = {{"prompt", "hi"}, {"max_tokens", 2}};

json with(json body, const std::string& key, const json& value) {
  body[key] = value;
  return body;
}

TEST_F(ServerErrorsTest, MalformedBodies) {
  expect_error(post(*server_, "/v1/chat/completions", std::string("{\"messages\": [")), 400, "", "not valid JSON");
  expect_error(post(*server_, "/v1/completions", std::string("")), 400, "", "not valid JSON");
  expect_error(post(*server_, "/v1/completions", std::string("[1, 2]")), 400, "", "JSON object");
  expect_error(post(*server_, "/v1/completions", std::string("{\"prompt\": \"\xff\xfe\"}")), 400, "", "JSON");
}

TEST_F(ServerErrorsTest, ChatFields) {
  const std::string path = "/v1/chat/completions";
  expect_error(post(*server_, path, json{{"max_tokens", 2}}), 400, "messages", "missing");
  expect_error(post(*server_, path, with(kChat, "messages", "hello")), 400, "messages", "list");
  expect_error(post(*server_, path, with(kChat, "messages", json::array())), 400, "messages", "empty");
  expect_error(post(*server_, path, with(kChat, "messages", {1})), 400, "messages[0]");
  expect_error(post(*server_, path, with(kChat, "messages", {{{"role", "user"}}})), 400, "messages[0].content");
  expect_error(post(*server_, path, with(kChat, "messages", {{{"role", "wizard"}, {"content", "x"}}})), 400,
               "messages[0].role", "wizard");
  expect_error(post(*server_, path,
                    with(kChat, "messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}})),
               400, "messages[0].content[0]");
  expect_error(post(*server_, path, with(with(kChat, "max_completion_tokens", 3), "max_tokens", 3)), 400,
               "max_completion_tokens");
  expect_error(post(*server_, path, with(kChat, "logprobs", 2)), 400, "logprobs");
  expect_error(post(*server_, path, with(kChat, "tools", {{{"type", "function"}}})), 400, "tools");
  expect_error(post(*server_, path, with(kChat, "response_format", {{"type", "json_object"}})), 400, "response_format");
  expect_error(post(*server_, path, with(kChat, "chat_template_kwargs", 3)), 400, "chat_template_kwargs");
}

TEST_F(ServerErrorsTest, CommonFields) {
  const std::string path = "/v1/completions";
  expect_error(post(*server_, path, with(kCompletion, "max_tokens", -5)), 400, "max_tokens", "-5");
  expect_error(post(*server_, path, with(kCompletion, "max_tokens", 0)), 400, "max_tokens");
  expect_error(post(*server_, path, with(kCompletion, "max_tokens", "5")), 400, "max_tokens", "integer");
  expect_error(post(*server_, path, with(kCompletion, "max_tokens", 2.5)), 400, "max_tokens");
  expect_error(post(*server_, path, with(kCompletion, "n", 17)), 400, "n");
  expect_error(post(*server_, path, with(kCompletion, "temperature", 3)), 400, "temperature");
  expect_error(post(*server_, path, with(kCompletion, "temperature", "hot")), 400, "temperature");
  expect_error(post(*server_, path, with(kCompletion, "top_p", 0)), 400, "top_p");
  expect_error(post(*server_, path, with(kCompletion, "top_k", -2)), 400, "top_k");
  expect_error(post(*server_, path, with(kCompletion, "min_p", 1.5)), 400, "min_p");
  expect_error(post(*server_, path, with(kCompletion, "seed", "x")), 400, "seed");
  expect_error(post(*server_, path, with(kCompletion, "stop", 5)), 400, "stop");
  expect_error(post(*server_, path, with(kCompletion, "stop", {"a", 1})), 400, "stop[1]");
  expect_error(post(*server_, path, with(kCompletion, "stop", "")), 400, "stop", "empty");
  expect_error(post(*server_, path, with(kCompletion, "stream", "yes")), 400, "stream");
  expect_error(post(*server_, path, with(kCompletion, "stream_options", {{"include_usage", true}})), 400,
               "stream_options", "stream is true");
  expect_error(post(*server_, path, with(kCompletion, "frequency_penalty", 2.5)), 400, "frequency_penalty");
  expect_error(post(*server_, path, with(kCompletion, "presence_penalty", "x")), 400, "presence_penalty");
  expect_error(post(*server_, path, with(kCompletion, "repetition_penalty", 0)), 400, "repetition_penalty");
  expect_error(post(*server_, path, with(kCompletion, "logprobs", 99)), 400, "logprobs");
  expect_error(post(*server_, path, with(kCompletion, "echo", true)), 400, "echo");
  expect_error(post(*server_, path, with(kCompletion, "max_token", 4)), 400, "max_token", "unknown field");
  expect_error(post(*server_, path, with(kCompletion, "kv", "nosuch")), 400, "kv", "unknown method");
  expect_error(post(*server_, path, with(kCompletion, "kv", "zipcache:ratio=7")), 400, "kv");
  expect_error(post(*server_, path, with(kCompletion, "kv", 3)), 400, "kv");
  expect_error(post(*server_, path, with(kCompletion, "ignore_eos", 1)), 400, "ignore_eos");
  // Zeros and nulls are the defaults, not errors.
  const Reply ok = post(*server_, path,
                        with(with(with(kCompletion, "frequency_penalty", 0), "n", 1), "temperature", nullptr));
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(ServerErrorsTest, Prompts) {
  const std::string path = "/v1/completions";
  expect_error(post(*server_, path, json{{"max_tokens", 2}}), 400, "prompt", "missing");
  expect_error(post(*server_, path, with(kCompletion, "prompt", 5)), 400, "prompt");
  expect_error(post(*server_, path, with(kCompletion, "prompt", json::array())), 400, "prompt", "empty");
  expect_error(post(*server_, path, with(kCompletion, "prompt", {"a", "b"})), 400, "prompt", "one prompt");
  expect_error(post(*server_, path, with(kCompletion, "prompt", {5, -1})), 400, "prompt[1]");
  expect_error(post(*server_, path, with(kCompletion, "prompt", {5, 1.5})), 400, "prompt[1]");
  expect_error(post(*server_, path, with(kCompletion, "prompt", {3, 99999})), 400, "prompt[1]", "vocabulary");
  // The context holds 32 tokens: 31 prompt tokens at most.
  std::vector<int32_t> ids(32, 7);
  expect_error(post(*server_, path, with(kCompletion, "prompt", ids)), 400, "prompt", "32 tokens");
  EXPECT_EQ(post(*server_, path, with(kCompletion, "prompt", ids)).json_body["error"]["code"], "context_length_exceeded");
  ids.pop_back();
  const Reply fits = post(*server_, path, json{{"prompt", ids}, {"max_tokens", 10}, {"ignore_eos", true}});
  ASSERT_EQ(fits.status, 200) << fits.body;
  EXPECT_EQ(fits.json_body["choices"][0]["finish_reason"], "length");  // the context filled up
  EXPECT_EQ(fits.json_body["zipcache"]["stop_reason"], "context full");
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "the cat sat on the mat ";
  expect_error(post(*server_, "/v1/chat/completions", with(kChat, "messages", {{{"role", "user"}, {"content", long_text}}})),
               400, "messages", "context holds 32");
  // Still serving after all of that.
  EXPECT_EQ(get(*server_, "/health").status, 200);
}

TEST_F(ServerErrorsTest, PathsMethodsAndSizes) {
  expect_error(get(*server_, "/v1/nothing"), 404, "", "/v1/nothing");
  expect_error(post(*server_, "/nothing", json::object()), 404, "", "unknown path");
  const Reply wrong = get(*server_, "/v1/completions");
  expect_error(wrong, 405, "", "use POST");
  expect_error(post(*server_, "/health", json::object()), 405, "", "use GET");
  expect_error(get(*server_, "/tokenize"), 405, "", "use POST");
  auto c = server_->client();
  auto del = c.Delete("/v1/models");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 405);
  EXPECT_EQ(del->get_header_value("Allow"), "GET");
  json big = kCompletion;
  big["prompt"] = std::string(5000, 'a');
  expect_error(post(*server_, "/v1/completions", big), 413, "", "4096 bytes");
  EXPECT_EQ(get(*server_, "/health").status, 200);
}

// The template's errors are the client's (a conversation it cannot render), and a
// server without a template says so.
TEST(ServerChatRenderer, TemplateErrorsAndNoTemplate) {
  Engine e = make_engine();
  e.render_chat = [](const json&, bool, const json& extra) -> std::string {
    if (extra.contains("boom")) throw std::runtime_error("unexpected");
    zc::fail("roles must alternate user/assistant");
  };
  {
    RunningServer s(e);
    expect_error(post(s, "/v1/chat/completions", kChat), 400, "messages", "roles must alternate");
    expect_error(post(s, "/v1/chat/completions", with(kChat, "chat_template_kwargs", {{"boom", true}})), 500, "",
                 "unexpected");
    EXPECT_EQ(get(s, "/health").status, 200);
  }
  e.render_chat = nullptr;
  RunningServer s(e);
  expect_error(post(s, "/v1/chat/completions", kChat), 400, "messages", "no chat template");
  EXPECT_EQ(post(s, "/v1/completions", kCompletion).status, 200);
}

TEST(ServerLifecycle, BindStopAndBadEngines) {
  Engine e = make_engine();
  ServerOptions o;
  o.port = 0;
  {
    Server s(e, o);
    const int port = s.bind();
    EXPECT_GT(port, 0);
    EXPECT_EQ(s.bind(), port);
    // A second server on the same port cannot bind.
    ServerOptions same = o;
    same.port = port;
    Server other(e, same);
    EXPECT_THROW(other.bind(), zc::Error);
    s.stop();  // before run(): run() then returns at once
    s.run();
  }
  {
    Server s(e, o);  // stop() racing with run()'s start is not lost
    std::thread t([&] { s.run(); });
    s.stop();
    t.join();
  }
  Engine no_tok = e;
  no_tok.tokenizer = nullptr;
  EXPECT_THROW(Server(no_tok, o), zc::Error);
  Engine big = e;
  big.context = 1 << 20;
  EXPECT_THROW(Server(big, o), zc::Error);
}

// stop() during a long stream cancels it: the stream still ends properly and run()
// returns within a few tokens, not after thousands.
TEST(ServerLifecycle, StopCancelsAStreamInProgress) {
  auto s = std::make_unique<RunningServer>(make_engine());
  std::atomic<bool> started{false};
  std::string received;
  std::thread client([&] {
    auto c = s->client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = json{{"prompt", "Once"}, {"max_tokens", 3500}, {"ignore_eos", true}, {"stream", true}}.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      received.append(data, n);
      started = true;
      return true;
    };
    c.send(req);
  });
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto t0 = std::chrono::steady_clock::now();
  s.reset();  // stop() and join
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  client.join();
  EXPECT_LT(seconds, 10.0);
  EXPECT_NE(received.find("data: [DONE]"), std::string::npos);
}

}  // namespace
}  // namespace zc::server::testing
