// The message of the zc::Error a call throws, or "<no error>": for tests that check
// what an error says, not only that one was thrown.
#pragma once
#include <functional>
#include <string>

#include "core/error.h"

namespace zc::test {

inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const zc::Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace zc::test
