// The server's prompt cache: a chat's next turn, sent whole as clients do, computes only
// its new tokens (usage.prompt_tokens_details.cached_tokens says how many it reused) and
// answers as a conversation kept in the engine does (engine::Conversation, checked
// against transformers in tests/engine); with the cache off, every request prefills its
// whole prompt and answers as engine::generate.
#include "engine/conversation.h"
#include "server_fixture.h"

namespace zc::server::testing {
namespace {

engine::GenerationOptions greedy(int max_tokens) {
  engine::GenerationOptions o;
  o.max_tokens = max_tokens;
  o.sampling.temperature = 0;
  return o;
}

TEST(ServerPromptCache, NextTurnGoesOnFromTheLastRequest) {
  const Bundle& b = bundle();
  for (const bool cache : {true, false}) {
    ServerOptions options;
    options.prompt_cache = cache;
    RunningServer server(make_engine(), options);
    json messages = json::array({{{"role", "user"}, {"content", "the little cat sat on"}}});
    const Reply r1 = post(server, "/v1/chat/completions", json{{"messages", messages}, {"max_tokens", 8}, {"temperature", 0}});
    ASSERT_EQ(r1.status, 200) << r1.body;
    EXPECT_EQ(r1.json_body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    const json first = messages;
    messages.push_back({{"role", "assistant"}, {"content", r1.json_body["choices"][0]["message"]["content"]}});
    messages.push_back({{"role", "user"}, {"content", "and then?"}});
    const Reply r2 = post(server, "/v1/chat/completions", json{{"messages", messages}, {"max_tokens", 8}, {"temperature", 0}});
    ASSERT_EQ(r2.status, 200) << r2.body;
    const int cached = r2.json_body["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>();
    const std::string reply2 = r2.json_body["choices"][0]["message"]["content"].get<std::string>();
    if (cache) {
      // At least the first prompt was not computed again.
      EXPECT_GE(cached, r1.json_body["usage"]["prompt_tokens"].get<int>());
      engine::Conversation kept(
          [&b](const kv::MethodConfig& m, int ctx) { return engine::cpu_decoder(b.model, m, ctx); },
          kv::parse_method("fp16"), b.model.config().max_position_embeddings, b.model.config(), &b.tokenizer);
      EXPECT_EQ(kept.reply(chatml(first, true, {}), greedy(8)).text,
                r1.json_body["choices"][0]["message"]["content"].get<std::string>());
      EXPECT_EQ(kept.reply(chatml(messages, true, {}), greedy(8)).text, reply2);
      EXPECT_EQ(kept.reused_tokens(), cached);
    } else {
      EXPECT_EQ(cached, 0);
      EXPECT_EQ(reply2, direct(b.tokenizer.encode(chatml(messages, true, {}), false), 8).text);
    }
  }
}

}  // namespace
}  // namespace zc::server::testing
