// Stop strings for streamed output: text that might be the beginning of a stop
// string is held back until it is known not to be one, so the caller never prints
// part of a stop string (as llama.cpp's server and vLLM behave).
#pragma once
#include <string>
#include <vector>

namespace zc::engine {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  // Adds generated text; returns the text that is now safe to emit. After a stop
  // string is found, stopped() is true and the text before it has been returned.
  std::string feed(const std::string& text);
  // End of generation: returns whatever was held back.
  std::string flush();
  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  std::string matched_;
  bool stopped_ = false;
};

}  // namespace zc::engine
