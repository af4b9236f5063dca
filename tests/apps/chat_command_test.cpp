// `zipcache chat` on the bundled model, messages piped on stdin. Its replies must be what
// `zipcache generate` gives for the prompt the test writes out by hand (ChatML, the
// fallback for a model without a template, or a --chat-template file), greedy, over the
// exact fp32 cache: the second turn's reply comes through the chat's reused cache, the
// reference's through a fresh prefill.
#include <string>

#include <gtest/gtest.h>

#include "run_cli.h"

namespace {

using zc::test::run_cli;
using zc::test::TempDir;

const std::string kGreedy = " --kv fp32 --temp 0 -n 8";
const std::string kChatmlStops = " --stop '<|im_end|>' --stop '<|im_start|>'";

std::string chatml(const std::string& role, const std::string& content) {
  return "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
}

// generate's reply to `prompt` (written to a file, so no shell quoting).
std::string generate(const std::string& prompt, const std::string& flags, const TempDir& dir) {
  const auto file = dir / "prompt.txt";
  std::ofstream(file, std::ios::binary) << prompt;
  const auto r = run_cli("generate -f " + file.string() + kGreedy + flags, dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

TEST(ChatCommand, FirstTurnMatchesGenerateAndTheSecondReusesIt) {
  TempDir dir;
  const auto r = run_cli("chat" + kGreedy, dir, "What is 2+2?\nAnd 3+3?\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("no chat template; using ChatML"), std::string::npos) << r.err;
  const std::string turn1 = chatml("user", "What is 2+2?") + "<|im_start|>assistant\n";
  const std::string reply1 = generate(turn1, kChatmlStops, dir);
  ASSERT_EQ(r.out.substr(0, reply1.size() + 1), reply1 + "\n") << r.out;
  // One statistics line per turn; the second turn's prompt goes on from what the cache
  // holds (the first prompt and reply: engine::Conversation, tested against
  // transformers in tests/engine), so only its new tokens are computed.
  const size_t first = r.err.find(" reused from the cache");
  const size_t second = r.err.find(" reused from the cache", first + 1);
  ASSERT_NE(second, std::string::npos) << r.err;
  EXPECT_NE(r.err.find(", 0 reused from the cache"), std::string::npos) << r.err;
  const size_t count_at = r.err.rfind(", ", second) + 2;
  EXPECT_GT(std::atoi(r.err.c_str() + count_at), 10) << r.err;
  EXPECT_GT(r.out.size(), reply1.size() + 1);
}

TEST(ChatCommand, TemplateFileAndReset) {
  TempDir dir;
  const auto tmpl = dir / "template.jinja";
  std::ofstream(tmpl) << "{% for m in messages %}[{{ m.role }}] {{ m.content | trim }}\n{% endfor %}"
                         "{% if add_generation_prompt %}[assistant]{% endif %}";
  const auto r = run_cli("chat --chat-template " + tmpl.string() + " --system 'Be brief.'" + kGreedy, dir,
                         "  hello  \n/reset\n  hello  \n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("(conversation reset)"), std::string::npos) << r.err;
  // A --chat-template file writes every token itself: no BOS is added (--no-bos).
  const std::string reply = generate("[system] Be brief.\n[user] hello\n[assistant]", " --no-bos", dir);
  EXPECT_EQ(r.out, reply + "\n" + reply + "\n");
}

TEST(ChatCommand, BadInputSaysWhat) {
  TempDir dir;
  auto r = run_cli("chat --kv fp16 --kv zipcache", dir, "hi\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("chat takes one --kv method"), std::string::npos) << r.err;
  r = run_cli("chat -c 16" + kGreedy, dir, "a message far longer than sixteen tokens of context can hold\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("context holds 16"), std::string::npos) << r.err;
  r = run_cli("chat --chat-template /nonexistent/t.jinja", dir, "hi\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/t.jinja"), std::string::npos) << r.err;
  const auto broken = dir / "broken.jinja";
  std::ofstream(broken) << "{% for m in messages %}{{ m.content }\n";
  r = run_cli("chat --chat-template " + broken.string(), dir, "hi\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("broken.jinja:1:"), std::string::npos) << r.err;
  // No input: nothing to answer, a clean exit.
  r = run_cli("chat" + kGreedy, dir, "");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
}

}  // namespace
