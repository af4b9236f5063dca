// Request parsing and response building without a server: defaults, aliases, every
// accepted form of prompt and stop, and the exact OpenAI shapes of what is sent back.
#include <gtest/gtest.h>

#include "server/openai_protocol.h"
#include "server/openai_responses.h"

namespace zc::server {
namespace {

using nlohmann::json;

TEST(OpenAiRequest, ChatDefaultsAreOpenAis) {
  const auto r = parse_chat_request(json{{"messages", {{{"role", "user"}, {"content", "hi"}}}}});
  EXPECT_EQ(r.endpoint, Endpoint::Chat);
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_FLOAT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 1.0f);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.0f);
  EXPECT_FLOAT_EQ(r.sampling.repeat_penalty, 1.0f);
  EXPECT_FALSE(r.seed_given);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.kv.has_value());
  EXPECT_EQ(r.template_extra, json::object());
  EXPECT_EQ(r.messages, json({{{"role", "user"}, {"content", "hi"}}}));
}

TEST(OpenAiRequest, ChatOptions) {
  const json body = {{"model", "x"},
                     {"messages",
                      {{{"role", "system"}, {"content", {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}},
                       {{"role", "assistant"}, {"content", nullptr}},
                       {{"role", "user"}, {"content", "q"}, {"name", "bob"}}}},
                     {"max_completion_tokens", 7},
                     {"temperature", 0},
                     {"top_k", -1},
                     {"repetition_penalty", 1.1},
                     {"seed", -3},
                     {"stop", {"x", "yz"}},
                     {"stream", true},
                     {"stream_options", {{"include_usage", true}}},
                     {"ignore_eos", true},
                     {"kv", "kivi2"},
                     {"chat_template_kwargs", {{"enable_thinking", false}}},
                     {"n", 1},
                     {"logprobs", false},
                     {"tool_choice", "none"},
                     {"user", "u"},
                     {"frequency_penalty", 0.5},
                     {"presence_penalty", -1.25}};
  const auto r = parse_chat_request(body);
  EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty, -1.25f);
  EXPECT_EQ(r.messages[0]["content"], "a\nb");
  EXPECT_TRUE(r.messages[1]["content"].is_null());
  EXPECT_EQ(r.messages[2]["name"], "bob");  // passed through to the template
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_FLOAT_EQ(r.sampling.repeat_penalty, 1.1f);
  EXPECT_EQ(r.sampling.repeat_last_n, -1);
  EXPECT_TRUE(r.seed_given);
  EXPECT_EQ(r.sampling.seed, uint64_t(-3));
  EXPECT_EQ(r.stop, (std::vector<std::string>{"x", "yz"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_EQ(r.kv, "kivi2");
  EXPECT_EQ(r.template_extra, json({{"enable_thinking", false}}));
}

TEST(OpenAiRequest, CompletionPrompts) {
  EXPECT_EQ(parse_completion_request(json{{"prompt", "abc"}}).prompt_text, "abc");
  EXPECT_EQ(parse_completion_request(json{{"prompt", {"abc"}}}).prompt_text, "abc");
  EXPECT_EQ(parse_completion_request(json{{"prompt", ""}}).prompt_text, "");
  const auto ids = parse_completion_request(json{{"prompt", {0, 5, 2147483647}}});
  EXPECT_FALSE(ids.prompt_text.has_value());
  EXPECT_EQ(ids.prompt_ids, (std::vector<int32_t>{0, 5, 2147483647}));
  const auto one_stop = parse_completion_request(json{{"prompt", "a"}, {"stop", "\n"}, {"max_tokens", 3}});
  EXPECT_EQ(one_stop.stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(one_stop.max_tokens, 3);
  // Nulls are "not given" (the SDKs send them).
  const auto nulls = parse_completion_request(json{{"prompt", "a"}, {"max_tokens", nullptr}, {"stop", nullptr}, {"seed", nullptr}});
  EXPECT_FALSE(nulls.max_tokens.has_value());
  EXPECT_TRUE(nulls.stop.empty());
  EXPECT_FALSE(nulls.seed_given);
}

void expect_refused(const json& body, bool chat, const std::string& param) {
  try {
    chat ? parse_chat_request(body) : parse_completion_request(body);
    ADD_FAILURE() << "accepted: " << body.dump();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.param(), param) << e.what();
    EXPECT_NE(std::string(e.what()).find(param), std::string::npos) << e.what();
  }
}

TEST(OpenAiRequest, Refusals) {
  const json chat = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  const json comp = {{"prompt", "hi"}};
  auto with = [](json b, const char* k, const json& v) {
    b[k] = v;
    return b;
  };
  expect_refused(with(comp, "max_completion_tokens", 3), false, "max_completion_tokens");  // chat only
  expect_refused(with(comp, "messages", json::array()), false, "messages");
  expect_refused(with(chat, "prompt", "x"), true, "prompt");
  expect_refused(with(chat, "max_tokens", 1e12), true, "max_tokens");
  expect_refused(with(chat, "max_tokens", 3000000000u), true, "max_tokens");
  expect_refused(with(chat, "seed", 1.5), true, "seed");
  expect_refused(with(chat, "top_logprobs", 2), true, "top_logprobs");
  expect_refused(with(chat, "logit_bias", {{"5", 1}}), true, "logit_bias");
  expect_refused(with(chat, "tool_choice", "required"), true, "tool_choice");
  expect_refused(with(comp, "best_of", 2), false, "best_of");
  expect_refused(with(comp, "suffix", "end"), false, "suffix");
  expect_refused(with(with(comp, "stream", true), "stream_options", {{"include_usage", 1}}), false,
                 "stream_options.include_usage");
  expect_refused(with(with(comp, "stream", true), "stream_options", {{"other", true}}), false, "stream_options.other");
  expect_refused(with(comp, "stop", std::vector<std::string>(17, "x")), false, "stop");
  expect_refused(with(comp, "metadata", 3), false, "metadata");
  EXPECT_THROW(parse_body("{"), ApiError);
  EXPECT_THROW(parse_body("\"text\""), ApiError);
  EXPECT_EQ(parse_body("{\"a\": 1}"), json({{"a", 1}}));
}

engine::GenerationResult result(const std::string& text, int prompt, int generated, const std::string& stop) {
  engine::GenerationResult r;
  r.text = text;
  r.prompt_tokens = prompt;
  r.tokens.assign(size_t(generated), 5);
  r.stop_reason = stop;
  r.memory.code_bytes = 100;
  r.memory.fp16_bytes = 400;
  return r;
}

TEST(OpenAiResponse, FinishReasons) {
  EXPECT_EQ(finish_reason("eos"), "stop");
  EXPECT_EQ(finish_reason("stop string"), "stop");
  EXPECT_EQ(finish_reason("max tokens"), "length");
  EXPECT_EQ(finish_reason("context full"), "length");
}

TEST(OpenAiResponse, Shapes) {
  const ResponseHead chat = make_head(Endpoint::Chat, "m");
  const ResponseHead comp = make_head(Endpoint::Completion, "m");
  EXPECT_EQ(chat.id.rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(comp.id.rfind("cmpl-", 0), 0u);
  EXPECT_NE(make_head(Endpoint::Chat, "m").id, chat.id);
  const auto r = result("hello", 3, 2, "eos");
  const json c = completion(chat, r, "kivi2");
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["choices"][0]["message"], json({{"role", "assistant"}, {"content", "hello"}}));
  EXPECT_EQ(c["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(c["usage"], json({{"prompt_tokens", 3}, {"completion_tokens", 2}, {"total_tokens", 5},
                              {"prompt_tokens_details", {{"cached_tokens", 0}}}}));
  EXPECT_EQ(c["zipcache"]["kv"], "kivi2");
  EXPECT_EQ(c["zipcache"]["kv_bytes"], 100);
  EXPECT_EQ(c["zipcache"]["fp16_kv_bytes"], 400);
  EXPECT_DOUBLE_EQ(c["zipcache"]["compression_ratio"].get<double>(), 4.0);
  const json t = completion(comp, result("x", 1, 1, "max tokens"), "fp16");
  EXPECT_EQ(t["object"], "text_completion");
  EXPECT_EQ(t["choices"][0]["text"], "x");
  EXPECT_EQ(t["choices"][0]["finish_reason"], "length");

  EXPECT_EQ(role_chunk(chat)["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(text_chunk(chat, "he")["choices"][0]["delta"], json({{"content", "he"}}));
  EXPECT_EQ(text_chunk(comp, "he")["choices"][0]["text"], "he");
  const json last = final_chunk(chat, r, "fp16");
  EXPECT_EQ(last["object"], "chat.completion.chunk");
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  const json u = usage_chunk(chat, r);
  EXPECT_TRUE(u["choices"].empty());
  EXPECT_EQ(u["usage"]["total_tokens"], 5);
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(dump(json("\xff")), "\"\xEF\xBF\xBD\"");  // replaced, not thrown
  const json err = error_body("bad", "invalid_request_error", "n");
  EXPECT_EQ(err, json({{"error", {{"message", "bad"}, {"type", "invalid_request_error"}, {"param", "n"}, {"code", nullptr}}}}));
}

}  // namespace
}  // namespace zc::server
