// Log probabilities through the server: OpenAI's two shapes (chat: logprobs +
// top_logprobs; completions: logprobs = n), whole and streamed, with one slot and with
// a batch, against the engine run directly (whose entries tests/engine/logprobs_test.cpp
// checks against a double log-softmax and transformers' logits).
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "server_fixture.h"

namespace zc::server::testing {
namespace {

engine::GenerationResult direct_logprobs(const std::vector<int32_t>& ids, int max_tokens, int top) {
  engine::GenerationOptions o;
  o.max_tokens = max_tokens;
  o.sampling.temperature = 0;
  o.ignore_eos = true;
  o.logprobs = top;
  const Bundle& b = bundle();
  return engine::generate(b.model, &b.tokenizer, kv::parse_method("fp16"), ids, o);
}

std::string token_text(int32_t id) { return bundle().tokenizer.decode({id}, false); }

TEST(ServerLogprobs, CompletionsGiveTheLegacyShape) {
  RunningServer server(make_engine());
  const std::string prompt = "Once upon a time";
  const Reply r = post(server, "/v1/completions",
                       json{{"prompt", prompt}, {"max_tokens", 9}, {"temperature", 0}, {"ignore_eos", true},
                            {"logprobs", 3}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json& lp = r.json_body["choices"][0]["logprobs"];
  const auto want = direct_logprobs(bundle().tokenizer.encode(prompt), 9, 3);
  ASSERT_EQ(lp["tokens"].size(), want.tokens.size());
  ASSERT_EQ(r.json_body["usage"]["completion_tokens"].get<size_t>(), want.tokens.size());
  std::string joined;
  for (size_t i = 0; i < want.tokens.size(); ++i) {
    EXPECT_EQ(lp["tokens"][i].get<std::string>(), token_text(want.tokens[i]));
    EXPECT_EQ(lp["text_offset"][i].get<size_t>(), joined.size());
    joined += lp["tokens"][i].get<std::string>();
    EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), want.logprobs[i].logprob, 1e-9);
    const json& top = lp["top_logprobs"][i];
    for (const auto& [id, value] : want.logprobs[i].top) {
      ASSERT_TRUE(top.contains(token_text(id))) << top.dump();
      EXPECT_NEAR(top[token_text(id)].get<double>(), value, 1e-9);
    }
    EXPECT_LE(top.size(), 4u);  // the three asked for and the sampled token
  }
  EXPECT_EQ(joined, r.json_body["choices"][0]["text"].get<std::string>());
  // Not asked: null, as before.
  const Reply plain = post(server, "/v1/completions", json{{"prompt", prompt}, {"max_tokens", 2}});
  EXPECT_TRUE(plain.json_body["choices"][0]["logprobs"].is_null());
}

// The chat entries of a streamed request, gathered over its chunks, and its usage.
std::vector<json> streamed_chat_entries(const RunningServer& server, json body, int* completion_tokens) {
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  const Reply r = post(server, "/v1/chat/completions", body);
  EXPECT_EQ(r.status, 200) << r.body;
  std::vector<json> entries;
  for (const std::string& event : sse_payloads(r.body)) {
    if (event == "[DONE]") break;
    const json c = json::parse(event);
    if (c["choices"].empty()) {
      *completion_tokens = c["usage"]["completion_tokens"];
      continue;
    }
    const json& lp = c["choices"][0]["logprobs"];
    if (lp.is_null()) continue;  // the role chunk
    for (const json& e : lp["content"]) entries.push_back(e);
  }
  return entries;
}

TEST(ServerLogprobs, ChatStreamedAndBatchedEqualTheWholeAnswer) {
  const json body = {{"messages", {{{"role", "user"}, {"content", "Tell me about the sea"}}}},
                     {"max_tokens", 12},
                     {"temperature", 0},
                     {"ignore_eos", true},
                     {"logprobs", true},
                     {"top_logprobs", 2}};
  RunningServer one(make_engine());
  const Reply whole = post(one, "/v1/chat/completions", body);
  ASSERT_EQ(whole.status, 200) << whole.body;
  const json& content = whole.json_body["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), whole.json_body["usage"]["completion_tokens"].get<size_t>());
  std::string text;
  for (const json& e : content) {
    const std::string token = e["token"];
    text += token;
    std::vector<int> bytes(token.begin(), token.end());
    for (int& b : bytes) b &= 0xff;
    EXPECT_EQ(e["bytes"], json(bytes));
    ASSERT_EQ(e["top_logprobs"].size(), 2u);
    EXPECT_EQ(e["top_logprobs"][0]["token"], e["token"]);  // greedy: the best token
    EXPECT_DOUBLE_EQ(e["top_logprobs"][0]["logprob"].get<double>(), e["logprob"].get<double>());
    EXPECT_GE(e["logprob"].get<double>(), e["top_logprobs"][1]["logprob"].get<double>());
  }
  EXPECT_EQ(text, whole.json_body["choices"][0]["message"]["content"].get<std::string>());

  ServerOptions batched;
  batched.parallel = 2;
  RunningServer two(make_engine(), batched);
  for (const RunningServer* server : {&one, &two}) {
    int tokens = -1;
    const std::vector<json> entries = streamed_chat_entries(*server, body, &tokens);
    ASSERT_EQ(entries.size(), content.size());
    EXPECT_EQ(tokens, int(content.size()));
    for (size_t i = 0; i < entries.size(); ++i) {
      EXPECT_EQ(entries[i]["token"], content[i]["token"]) << "token " << i;
      EXPECT_NEAR(entries[i]["logprob"].get<double>(), content[i]["logprob"].get<double>(), 1e-9);
    }
  }
}

TEST(ServerLogprobs, BadRequestsNameTheField) {
  RunningServer server(make_engine());
  const json completion = {{"prompt", "hi"}, {"max_tokens", 1}};
  const json chat = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 1}};
  const auto expect_400 = [&](const std::string& path, json body, const char* field, const json& value) {
    body[field] = value;
    const Reply r = post(server, path, body);
    EXPECT_EQ(r.status, 400) << field << " = " << value.dump() << ": " << r.body;
    EXPECT_EQ(r.json_body["error"]["param"].get<std::string>(), std::string(field)) << r.body;
  };
  expect_400("/v1/completions", completion, "logprobs", 21);
  expect_400("/v1/completions", completion, "logprobs", true);
  expect_400("/v1/chat/completions", chat, "logprobs", 3);
  expect_400("/v1/chat/completions", chat, "top_logprobs", 21);
  json no_logprobs = chat;
  no_logprobs["logprobs"] = false;
  expect_400("/v1/chat/completions", no_logprobs, "top_logprobs", 2);
}

}  // namespace
}  // namespace zc::server::testing
