// `zipcache serve` as a user starts it: a free port printed on stderr, /health, a greedy
// /v1/completions that must equal `zipcache generate` on the same prompt, and a clean
// exit on SIGTERM. (The HTTP API in depth: tests/server.)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "run_cli.h"

namespace {

using zc::test::read_text;
using zc::test::run_cli;
using zc::test::TempDir;

// One HTTP/1.1 exchange with Connection: close; returns the whole response.
std::string http(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      send(fd, request.data(), request.size(), 0) == ssize_t(request.size())) {
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) response.append(buf, size_t(n));
  }
  close(fd);
  return response;
}

std::string body_of(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

TEST(ServeCommand, AnswersLikeGenerateAndStopsOnSigterm) {
  TempDir dir;
  const auto err = dir / "serve.err";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    freopen(err.c_str(), "w", stderr);
    freopen("/dev/null", "w", stdout);
    execl(ZC_BINARY, ZC_BINARY, "serve", "--port", "0", "--kv", "fp32", static_cast<char*>(nullptr));
    _exit(127);
  }
  // The port, from "... at http://127.0.0.1:PORT/v1".
  int port = 0;
  std::string log;
  for (int i = 0; i < 600 && port == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log = read_text(err);
    if (log.find("built without the HTTP server") != std::string::npos) {
      waitpid(pid, nullptr, 0);
      GTEST_SKIP() << "this build has no HTTP server: " << log;
    }
    const size_t at = log.find("http://127.0.0.1:");
    if (at != std::string::npos) port = std::atoi(log.c_str() + at + 17);
  }
  if (port == 0) kill(pid, SIGKILL);
  ASSERT_GT(port, 0) << log;

  EXPECT_NE(http(port, "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").find("200 OK"),
            std::string::npos);
  const std::string body = R"({"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0})";
  const std::string response = http(port, "POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                                           "Content-Type: application/json\r\nContent-Length: " +
                                               std::to_string(body.size()) + "\r\n\r\n" + body);
  const auto j = nlohmann::json::parse(body_of(response), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << response;
  const auto reference = run_cli("generate -p 'Once upon a time' --kv fp32 --temp 0 -n 8", dir);
  ASSERT_EQ(reference.exit_code, 0) << reference.err;
  EXPECT_EQ(j["choices"][0]["text"].get<std::string>(), reference.out) << response;

  kill(pid, SIGTERM);
  int status = 0;
  bool reaped = false;
  for (int i = 0; i < 300 && !reaped; ++i) {
    reaped = waitpid(pid, &status, WNOHANG) == pid;
    if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!reaped) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "serve did not stop on SIGTERM within 30 s";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_text(err);
  EXPECT_NE(read_text(err).find("stopping"), std::string::npos);
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
}

}  // namespace
