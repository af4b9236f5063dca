// `zipcache serve` as a user starts it: a free port printed on stderr, /health, a greedy
// /v1/completions that must equal `zipcache generate` on the same prompt, and a clean
// exit on SIGTERM. (The HTTP API in depth: tests/server.)
#include <sys/wait.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "run_cli.h"
#include "serve_process.h"

namespace {

using zc::test::body_of;
using zc::test::http;
using zc::test::http_post;
using zc::test::read_text;
using zc::test::ServeProcess;
using zc::test::run_cli;
using zc::test::TempDir;

// `zipcache serve --port 0 --kv fp32 <extra>`: a greedy completion equals `generate`'s,
// and SIGTERM stops the server with exit code 0.
void answers_like_generate(const std::vector<std::string>& extra) {
  TempDir dir;
  std::vector<std::string> args = {"--kv", "fp32"};
  args.insert(args.end(), extra.begin(), extra.end());
  ServeProcess serve(dir, args);
  if (serve.log().find("built without the HTTP server") != std::string::npos)
    GTEST_SKIP() << "this build has no HTTP server: " << serve.log();
  ASSERT_GT(serve.port(), 0) << serve.log();
  const int port = serve.port();

  EXPECT_NE(http(port, "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").find("200 OK"),
            std::string::npos);
  const std::string response =
      http_post(port, "/v1/completions", R"({"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0})");
  const auto j = nlohmann::json::parse(body_of(response), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << response;
  const auto reference = run_cli("generate -p 'Once upon a time' --kv fp32 --temp 0 -n 8", dir);
  ASSERT_EQ(reference.exit_code, 0) << reference.err;
  EXPECT_EQ(j["choices"][0]["text"].get<std::string>(), reference.out) << response;

  const int status = serve.stop();
  ASSERT_NE(status, -1) << "serve did not stop on SIGTERM within 30 s";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << serve.log();
  EXPECT_NE(serve.log().find("stopping"), std::string::npos);
  const bool batched = !extra.empty();
  EXPECT_EQ(serve.log().find("batch: ") != std::string::npos, batched) << serve.log();
}

TEST(ServeCommand, AnswersLikeGenerateAndStopsOnSigterm) { answers_like_generate({}); }

TEST(ServeCommand, BatchedAnswersLikeGenerate) {
  answers_like_generate({"--parallel", "3"});
}

TEST(ServeCommand, BadOptionsSayWhat) {
  TempDir dir;
  auto r = run_cli("serve --port 70000", dir);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--port"), std::string::npos) << r.err;
  r = run_cli("serve -m /nonexistent/model", dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/model"), std::string::npos) << r.err;
  r = run_cli("serve --kv fp16 --kv kivi2", dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("one default --kv method"), std::string::npos) << r.err;
  r = run_cli("serve --parallel 0", dir);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--parallel"), std::string::npos) << r.err;
  r = run_cli("serve --parallel 4 --http-threads 3", dir);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--http-threads 3"), std::string::npos) << r.err;
}

}  // namespace
