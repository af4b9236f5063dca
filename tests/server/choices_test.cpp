// OpenAI's "n": several choices of one prompt, each its own seeded generation (seed +
// index), whole and streamed, one after another (--parallel 1) and side by side in a
// batch, against the engine run directly with those seeds.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "server/openai_protocol.h"
#include "server_fixture.h"

namespace zc::server::testing {
namespace {

engine::GenerationResult direct_sampled(const std::vector<int32_t>& ids, int max_tokens, uint64_t seed) {
  engine::GenerationOptions o;
  o.max_tokens = max_tokens;
  o.ignore_eos = true;
  o.sampling.temperature = 1.0f;  // OpenAI's defaults, as the server's parser sets them
  o.sampling.top_k = 0;
  o.sampling.top_p = 1.0f;
  o.sampling.min_p = 0.0f;
  o.sampling.seed = seed;
  const Bundle& b = bundle();
  return engine::generate(b.model, &b.tokenizer, kv::parse_method("fp16"), ids, o);
}

TEST(ServerChoices, EachChoiceIsItsSeedsGeneration) {
  const std::string prompt = "Once upon a time";
  const json body = {{"prompt", prompt}, {"max_tokens", 10}, {"ignore_eos", true}, {"seed", 7}, {"n", 3},
                     {"logprobs", 1}};
  ServerOptions batched;
  batched.parallel = 2;
  RunningServer one(make_engine()), two(make_engine(), batched);
  for (const RunningServer* server : {&one, &two}) {
    const Reply r = post(*server, "/v1/completions", body);
    ASSERT_EQ(r.status, 200) << r.body;
    const json& choices = r.json_body["choices"];
    ASSERT_EQ(choices.size(), 3u);
    size_t tokens = 0;
    for (size_t i = 0; i < 3; ++i) {
      const auto want = direct_sampled(bundle().tokenizer.encode(prompt), 10, 7 + i);
      EXPECT_EQ(choices[i]["index"].get<size_t>(), i);
      EXPECT_EQ(choices[i]["text"].get<std::string>(), want.text) << "choice " << i;
      EXPECT_EQ(choices[i]["logprobs"]["tokens"].size(), want.tokens.size());
      tokens += want.tokens.size();
    }
    EXPECT_EQ(r.json_body["usage"]["completion_tokens"].get<size_t>(), tokens);
  }
}

TEST(ServerChoices, StreamedChoicesComeOneAfterAnother) {
  json body = {{"messages", {{{"role", "user"}, {"content", "Hello there"}}}},
               {"max_tokens", 8},
               {"ignore_eos", true},
               {"seed", 3},
               {"n", 2}};
  ServerOptions batched;
  batched.parallel = 3;
  RunningServer one(make_engine()), two(make_engine(), batched);
  for (const RunningServer* server : {&one, &two}) {
    body["stream"] = false;
    const Reply whole = post(*server, "/v1/chat/completions", body);
    ASSERT_EQ(whole.status, 200) << whole.body;
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    const Reply streamed = post(*server, "/v1/chat/completions", body);
    body.erase("stream_options");
    ASSERT_EQ(streamed.status, 200) << streamed.body;
    std::map<int, std::string> text;
    std::vector<int> order;  // the index of each chunk with choices
    std::map<int, std::string> finish;
    for (const std::string& event : sse_payloads(streamed.body)) {
      if (event == "[DONE]") break;
      const json c = json::parse(event);
      if (c["choices"].empty()) {
        EXPECT_EQ(c["usage"], whole.json_body["usage"]);
        continue;
      }
      const json& ch = c["choices"][0];
      const int i = ch["index"];
      if (order.empty() || order.back() != i) {
        order.push_back(i);
        EXPECT_EQ(ch["delta"]["role"], "assistant") << "choice " << i << " opens with its role";
      }
      EXPECT_FALSE(finish.count(i)) << "a chunk of choice " << i << " after its end";
      if (ch["delta"].contains("content")) text[i] += ch["delta"]["content"].get<std::string>();
      if (!ch["finish_reason"].is_null()) finish[i] = ch["finish_reason"];
    }
    EXPECT_EQ(order, (std::vector<int>{0, 1}));
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(text[i], whole.json_body["choices"][i]["message"]["content"].get<std::string>()) << "choice " << i;
      EXPECT_EQ(finish[i], "length");
    }
  }
}

TEST(ServerChoices, TooManyOrTooFew) {
  RunningServer server(make_engine());
  for (const int n : {0, kMaxChoices + 1}) {
    const Reply r = post(server, "/v1/completions", json{{"prompt", "a"}, {"max_tokens", 1}, {"n", n}});
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.json_body["error"]["param"].get<std::string>(), "n");
  }
}

}  // namespace
}  // namespace zc::server::testing
