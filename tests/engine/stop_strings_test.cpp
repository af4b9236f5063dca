#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/rng.h"
#include "engine/stop_strings.h"

namespace {

using zc::engine::StopMatcher;

// Reference: the whole text cut at the earliest occurrence of any stop string.
std::string reference(const std::string& text, const std::vector<std::string>& stops, bool* stopped) {
  size_t first = std::string::npos;
  for (const auto& s : stops) first = std::min(first, text.find(s));
  *stopped = first != std::string::npos;
  return *stopped ? text.substr(0, first) : text;
}

TEST(StopMatcher, RandomSplitsMatchWholeTextCut) {
  zc::Rng rng(3);
  const std::string alphabet = "ab\n<";
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    const int len = int(rng.integer(0, 30));
    for (int i = 0; i < len; ++i) text += alphabet[size_t(rng.integer(0, 3))];
    std::vector<std::string> stops;
    for (int s = 0, n = int(rng.integer(1, 3)); s < n; ++s) {
      std::string stop;
      for (int i = 0, m = int(rng.integer(1, 4)); i < m; ++i) stop += alphabet[size_t(rng.integer(0, 3))];
      stops.push_back(stop);
    }
    StopMatcher matcher(stops);
    std::string emitted;
    size_t at = 0;
    while (at < text.size() && !matcher.stopped()) {
      const size_t n = size_t(rng.integer(1, 4));
      emitted += matcher.feed(text.substr(at, n));
      at += n;
    }
    emitted += matcher.flush();
    bool stopped = false;
    EXPECT_EQ(emitted, reference(text, stops, &stopped)) << text;
    EXPECT_EQ(matcher.stopped(), stopped) << text;
  }
}

TEST(StopMatcher, HoldsBackPossibleStart) {
  StopMatcher m({"</s>"});
  EXPECT_EQ(m.feed("hello <"), "hello ");
  EXPECT_EQ(m.feed("/"), "");
  EXPECT_EQ(m.feed("x"), "</x");
  EXPECT_EQ(m.feed(" </s> tail"), " ");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "</s>");
}

TEST(StopMatcher, EmptyStopIsAnError) { EXPECT_THROW(StopMatcher({""}), zc::Error); }

}  // namespace
