// `zipcache serve --device cuda --parallel 4` on the bundled model: concurrent requests
// share the GPU runner's batch (continuous batching). The line-retrieval prompts are
// answered as `generate` answers them on the CPU, with requests of other KV methods and
// lengths running beside them. Skipped (with the reason) where no GPU or no CUDA build.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <thread>
#include <vector>

#include "run_cli.h"
#include "serve_process.h"

namespace {

using zc::test::body_of;
using zc::test::http_post;
using zc::test::first_number;
using zc::test::run_cli;
using zc::test::ServeProcess;
using zc::test::TempDir;

// Why a server that did not start cannot run here (no GPU, no CUDA or no HTTP server in
// this build), or "" (it started, or failed for another reason: the test's to report).
std::string cannot_serve_on_gpu(const ServeProcess& serve) {
  const std::string log = serve.log();
  if (serve.port() != 0) return "";
  for (const char* reason : {"no usable GPU", "without CUDA", "built without the HTTP server"})
    if (log.find(reason) != std::string::npos) return log;
  return "";
}

TEST(GpuServe, BatchedRequestsAnswerAsTheCpu) {
  TempDir dir;
  const auto all =
      nlohmann::json::parse(zc::test::read_text(std::string(ZC_SOURCE_DIR) + "/tests/data/bundled_prompts.json"));
  ServeProcess serve(dir, {"--device", "cuda", "--kv", "fp16", "--parallel", "4"});
  if (const std::string why = cannot_serve_on_gpu(serve); !why.empty()) GTEST_SKIP() << why;
  ASSERT_GT(serve.port(), 0) << serve.log();

  struct Request {
    nlohmann::json body;
    std::string want_number;  // "" for requests only checked for an answer
    std::string response;
  };
  std::vector<Request> requests;
  for (const auto& c : all["cases"]) {
    const std::string prompt = c["prompt"].get<std::string>();
    std::ofstream(dir / "prompt.txt") << prompt;
    const auto cpu = run_cli("generate -f " + (dir / "prompt.txt").string() + " --temp 0 -n 24 --kv fp16", dir);
    ASSERT_EQ(cpu.exit_code, 0) << cpu.err;
    ASSERT_EQ(first_number(cpu.out), first_number(c["answer"].get<std::string>())) << cpu.out;
    for (int copy = 0; copy < 2; ++copy) {
      requests.push_back({{{"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0}}, first_number(cpu.out), ""});
    }
    for (const char* kv : {"kivi2", "zipcache"})
      requests.push_back({{{"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0}, {"kv", kv}}, "", ""});
  }
  for (const char* text : {"Once upon a time", "The little dog"}) {
    requests.push_back(
        {{{"prompt", text}, {"max_tokens", 200}, {"ignore_eos", true}, {"stream", true}, {"temperature", 0.8}}, "", ""});
  }
  std::vector<std::thread> clients;
  for (auto& r : requests)
    clients.emplace_back([&r, port = serve.port()] { r.response = http_post(port, "/v1/completions", r.body.dump()); });
  for (auto& t : clients) t.join();
  for (const auto& r : requests) {
    SCOPED_TRACE(r.body.value("kv", "fp16") + (r.body.value("stream", false) ? " streamed" : ""));
    ASSERT_NE(r.response.find("200 OK"), std::string::npos) << r.response;
    if (r.body.value("stream", false)) {
      EXPECT_NE(r.response.find("data: [DONE]"), std::string::npos) << r.response;
      EXPECT_EQ(r.response.find("\"error\""), std::string::npos) << r.response;
      continue;
    }
    const auto j = nlohmann::json::parse(body_of(r.response), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.response;
    const std::string text = j["choices"][0]["text"].get<std::string>();
    std::printf("%-9s batched GPU answer:%s\n", r.body.value("kv", "fp16").c_str(), text.c_str());
    if (!r.want_number.empty()) {
      EXPECT_EQ(first_number(text), r.want_number) << text;
    }
  }
  const int status = serve.stop();
  EXPECT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << serve.log();
}

// A KV pool too small for every slot's prompt at once (--kv-mem 0.01 GiB holds about
// 3500 fp16 tokens of this model; the eight retrieval prompts have 7828):
// prompts that do not fit beside the running ones wait for memory instead of failing.
TEST(GpuServe, PromptsWaitForKvMemory) {
  TempDir dir;
  const auto all =
      nlohmann::json::parse(zc::test::read_text(std::string(ZC_SOURCE_DIR) + "/tests/data/bundled_prompts.json"));
  ServeProcess serve(dir, {"--device", "cuda", "--kv", "fp16", "--parallel", "8", "--kv-mem", "0.01"});
  if (const std::string why = cannot_serve_on_gpu(serve); !why.empty()) GTEST_SKIP() << why;
  ASSERT_GT(serve.port(), 0) << serve.log();
  std::vector<std::string> responses(8), want(8);
  std::vector<nlohmann::json> bodies;
  for (size_t i = 0; i < responses.size(); ++i) {
    const auto& c = all["cases"][i % all["cases"].size()];
    bodies.push_back({{"prompt", c["prompt"]}, {"max_tokens", 24}, {"temperature", 0}});
    want[i] = first_number(c["answer"].get<std::string>());
  }
  std::vector<std::thread> clients;
  for (size_t i = 0; i < responses.size(); ++i)
    clients.emplace_back([&, i] { responses[i] = http_post(serve.port(), "/v1/completions", bodies[i].dump()); });
  for (auto& t : clients) t.join();
  for (size_t i = 0; i < responses.size(); ++i) {
    ASSERT_NE(responses[i].find("200 OK"), std::string::npos) << responses[i];
    const auto j = nlohmann::json::parse(body_of(responses[i]), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << responses[i];
    EXPECT_EQ(first_number(j["choices"][0]["text"].get<std::string>()), want[i]) << responses[i];
  }
  const int status = serve.stop();
  EXPECT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << serve.log();
  // "batch: ... N waits for KV memory": some prompt did wait.
  const std::string end = serve.log();
  const size_t at = end.find(" waits for KV memory");
  ASSERT_NE(at, std::string::npos) << end;
  const size_t from = end.rfind(' ', at - 1);
  EXPECT_GT(std::atoi(end.c_str() + from + 1), 0) << end;
}

}  // namespace
