// Errors at boundaries (files, options, requests) are thrown as zc::Error with a
// message that says what was wrong and where; the command line prints it on one line.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace zc {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A memory budget (the GPU's KV block pool) cannot hold what was asked: a server can
// wait for memory to be freed and try again, where other errors are final.
class OutOfMemory : public Error {
 public:
  explicit OutOfMemory(const std::string& message) : Error(message) {}
};

// Throws zc::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// Internal invariant: a broken one is a bug in zipcache, not bad input.
#define ZC_CHECK(cond)                                                                \
  do {                                                                                \
    if (!(cond)) ::zc::fail("internal error: {} ({}:{})", #cond, __FILE__, __LINE__); \
  } while (0)

}  // namespace zc
