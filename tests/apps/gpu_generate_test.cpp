// `zipcache generate --device cuda` on the bundled model: the GPU answers the
// line-retrieval prompt as the CPU does, with every method the GPU implements, and
// reports its KV memory. Skipped (with the reason) where no GPU or no CUDA build.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "run_cli.h"

namespace {

using zc::test::first_number;
using zc::test::run_cli;
using zc::test::TempDir;

TEST(GpuGenerate, BundledModelAnswersOnTheGpu) {
  TempDir dir;
  const auto all = nlohmann::json::parse(zc::test::read_text(std::string(ZC_SOURCE_DIR) + "/tests/data/bundled_prompts.json"));
  const auto& c = all["cases"][0];
  std::ofstream(dir / "prompt.txt") << c["prompt"].get<std::string>();
  const std::string want = first_number(c["answer"].get<std::string>());
  const std::string prompt = " -f " + (dir / "prompt.txt").string() + " --temp 0 -n 24";
  const auto probe = run_cli("generate --device cuda" + prompt + " --kv fp16", dir);
  if (probe.exit_code != 0 && (probe.err.find("no usable GPU") != std::string::npos ||
                               probe.err.find("without CUDA") != std::string::npos)) {
    GTEST_SKIP() << probe.err;
  }
  ASSERT_EQ(probe.exit_code, 0) << probe.err;
  const auto cpu = run_cli("generate" + prompt + " --kv fp16", dir);
  ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
  EXPECT_EQ(first_number(probe.out), want) << probe.out;
  EXPECT_EQ(first_number(probe.out), first_number(cpu.out)) << "GPU: " << probe.out << "\nCPU: " << cpu.out;
  for (const std::string method : {"kivi2", "zipcache"}) {
    const auto r = run_cli("generate --device cuda" + prompt + " --kv " + method, dir);
    ASSERT_EQ(r.exit_code, 0) << method << ": " << r.err;
    std::printf("%-9s GPU answer:%s\n", method.c_str(), r.out.c_str());
    EXPECT_NE(r.err.find("KV cache"), std::string::npos) << r.err;
  }
  const auto bad = run_cli("generate --device cuda" + prompt + " --kv h2o", dir);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("not implemented on the GPU"), std::string::npos) << bad.err;
}

}  // namespace

namespace {

// `zipcache chat --device cuda`: the line-retrieval prompt as the first message (a
// template that writes the messages' text as they are, after BOS), answered as by
// generate with the fp16 cache; a second turn goes on in the GPU decoder the chat kept.
TEST(GpuChat, AnswersThroughTheKeptGpuDecoder) {
  TempDir dir;
  const auto all = nlohmann::json::parse(zc::test::read_text(std::string(ZC_SOURCE_DIR) + "/tests/data/bundled_prompts.json"));
  std::string prompt = all["cases"][0]["prompt"].get<std::string>();
  const std::string want = first_number(all["cases"][0]["answer"].get<std::string>());
  std::ofstream(dir / "t.jinja") << "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}";
  // chat reads a message per line: join the prompt's lines with chat's continuation.
  std::string input;
  for (char ch : prompt) input += ch == '\n' ? std::string("\\\n") : std::string(1, ch);
  input += "\n Again:\n";
  for (const std::string method : {"fp16", "kivi2", "zipcache"}) {
    const auto r = run_cli("chat --device cuda --chat-template " + (dir / "t.jinja").string() +
                               " --temp 0 -n 24 --kv " + method, dir, input);
    if (r.exit_code != 0 && (r.err.find("no usable GPU") != std::string::npos ||
                             r.err.find("without CUDA") != std::string::npos)) {
      GTEST_SKIP() << r.err;
    }
    ASSERT_EQ(r.exit_code, 0) << method << ": " << r.err;
    std::printf("%-9s GPU chat: %s\n%s", method.c_str(), r.out.c_str(), r.err.c_str());
    // The second turn went on from the kept decoder: only its new tokens were computed.
    EXPECT_NE(r.err.find("computed, 0 reused"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("computed, 0 reused"), r.err.rfind("computed, 0 reused")) << r.err;
    // As GpuGenerate: the fp16 cache answers as the CPU does (the quantized ones may not).
    if (method == "fp16") {
      EXPECT_EQ(first_number(r.out), want) << method << ": " << r.out;
    }
  }
}

}  // namespace
