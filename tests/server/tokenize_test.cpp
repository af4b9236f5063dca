// POST /tokenize and /detokenize in vLLM's and llama.cpp's spellings, against the
// tokenizer and the chat renderer called directly (the tokenizer itself is checked
// against HF tokenizers in tests/tokenizer).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server_fixture.h"

namespace zc::server::testing {
namespace {

class TokenizeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new RunningServer(make_engine(64)); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static RunningServer* server_;
};
RunningServer* TokenizeTest::server_ = nullptr;

std::vector<int32_t> ids_of(const json& tokens) { return tokens.get<std::vector<int32_t>>(); }

TEST_F(TokenizeTest, TextBothSpellings) {
  const tok::Tokenizer& t = bundle().tokenizer;
  const std::string text = "The quick brown fox, 42 times.";
  const Reply vllm = post(*server_, "/tokenize", json{{"model", "tiny"}, {"prompt", text}});
  ASSERT_EQ(vllm.status, 200) << vllm.body;
  EXPECT_EQ(ids_of(vllm.json_body["tokens"]), t.encode(text, true));
  EXPECT_EQ(vllm.json_body["count"].get<size_t>(), t.encode(text, true).size());
  EXPECT_EQ(vllm.json_body["max_model_len"].get<int>(), 64);
  const Reply plain = post(*server_, "/tokenize", json{{"content", text}, {"add_special", false}});
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(ids_of(plain.json_body["tokens"]), t.encode(text, false));
  const Reply pieces = post(*server_, "/tokenize", json{{"content", text}, {"with_pieces", true}});
  ASSERT_EQ(pieces.status, 200) << pieces.body;
  const std::vector<int32_t> want = t.encode(text, true);
  ASSERT_EQ(pieces.json_body["tokens"].size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(pieces.json_body["tokens"][i]["id"].get<int32_t>(), want[i]);
    EXPECT_EQ(pieces.json_body["tokens"][i]["piece"].get<std::string>(), t.decode({want[i]}, false));
  }
  // Round trip through /detokenize.
  const Reply back = post(*server_, "/detokenize", json{{"tokens", t.encode(text, false)}});
  ASSERT_EQ(back.status, 200) << back.body;
  EXPECT_EQ(back.json_body["prompt"].get<std::string>(), text);
  EXPECT_EQ(back.json_body["content"].get<std::string>(), text);
}

TEST_F(TokenizeTest, MessagesGoThroughTheChatTemplate) {
  const json messages = {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi"}}};
  for (const bool generation_prompt : {true, false}) {
    const Reply r = post(*server_, "/tokenize", json{{"messages", messages}, {"add_generation_prompt", generation_prompt}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(ids_of(r.json_body["tokens"]), bundle().tokenizer.encode(chatml(messages, generation_prompt, {}), false));
  }
}

TEST_F(TokenizeTest, BadRequestsNameTheField) {
  const auto expect_400 = [&](const std::string& path, const json& body, const std::string& field) {
    const Reply r = post(*server_, path, body);
    EXPECT_EQ(r.status, 400) << body.dump() << ": " << r.body;
    EXPECT_EQ(r.json_body["error"]["param"].get<std::string>(), field) << r.body;
  };
  expect_400("/tokenize", json::object(), "prompt");
  expect_400("/tokenize", json{{"prompt", 3}}, "prompt");
  expect_400("/tokenize", json{{"prompt", "a"}, {"add_special_tokens", "yes"}}, "add_special_tokens");
  expect_400("/tokenize", json{{"prompt", "a"}, {"promt", "b"}}, "promt");
  expect_400("/tokenize", json{{"messages", {{{"role", "user"}, {"content", "a"}}}}, {"prompt", "b"}}, "prompt");
  expect_400("/tokenize", json{{"messages", {{{"role", "robot"}, {"content", "a"}}}}}, "messages[0].role");
  expect_400("/detokenize", json::object(), "tokens");
  expect_400("/detokenize", json{{"tokens", "abc"}}, "tokens");
  expect_400("/detokenize", json{{"tokens", {1, -2}}}, "tokens[1]");
  expect_400("/detokenize", json{{"tokens", {1, 1 << 30}}}, "tokens[1]");
  const Reply not_json = post(*server_, "/tokenize", std::string("{"));
  EXPECT_EQ(not_json.status, 400) << not_json.body;
}

}  // namespace
}  // namespace zc::server::testing
