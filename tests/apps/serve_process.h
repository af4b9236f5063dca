// `zipcache serve` run as a user starts it, for the command tests: a child process on a
// free port (read from the banner on its stderr), plain HTTP/1.1 exchanges with it, and
// SIGTERM to stop it.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "run_cli.h"

namespace zc::test {

// One HTTP/1.1 exchange with Connection: close; returns the whole response.
inline std::string http(int port, const std::string& request) {
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

inline std::string http_post(int port, const std::string& path, const std::string& body) {
  return http(port, "POST " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                    "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                        "\r\n\r\n" + body);
}

inline std::string body_of(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

class ServeProcess {
 public:
  // Starts `zipcache serve --port 0 <args>` with stderr to dir/serve.err and waits up to
  // a minute for its banner. port() is 0 when it did not come (log() says why).
  ServeProcess(const TempDir& dir, const std::vector<std::string>& args) : err_(dir / "serve.err") {
    std::vector<std::string> all = {ZC_BINARY, "serve", "--port", "0"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      if (!freopen(err_.c_str(), "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(126);
      execv(ZC_BINARY, argv.data());
      _exit(127);
    }
    for (int i = 0; i < 600 && port_ == 0 && pid_ > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const std::string text = log();
      const size_t at = text.find("http://127.0.0.1:");
      if (at != std::string::npos) port_ = std::atoi(text.c_str() + at + 17);
      if (waitpid(pid_, &status_, WNOHANG) == pid_) {  // it ended before serving
        pid_ = -1;
        break;
      }
    }
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  std::string log() const { return read_text(err_); }

  // SIGTERM; the exit status once it ended (within 30 s; else killed, and -1).
  int stop() {
    if (pid_ <= 0) return status_;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 300; ++i) {
      if (waitpid(pid_, &status_, WNOHANG) == pid_) {
        pid_ = -1;
        return status_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return -1;
  }

 private:
  std::string err_;
  pid_t pid_ = -1;
  int port_ = 0;
  int status_ = -1;
};

}  // namespace zc::test
