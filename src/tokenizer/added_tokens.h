// Added tokens ("added_tokens" of tokenizer.json: <s>, <|begin_of_text|>, <|im_start|>,
// <think>, ...) and how HF finds them in a text before the model sees it
// (tokenizer/added_vocabulary.rs): leftmost-longest matching, then the single_word,
// lstrip and rstrip rules of each token.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace zc::tok {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false, single_word = false, lstrip = false, rstrip = false, normalized = false;
};

// A span of the text: an added token (token >= 0, an index into the token list) or
// ordinary text (token = -1).
struct TextSplit {
  size_t start, end;
  int token;
};

class AddedTokenMatcher {
 public:
  // Token `token` (index into the list given to split) is found where `pattern` occurs.
  void add(std::string_view pattern, int token);
  bool empty() const { return nodes_.size() <= 1; }

  // HF AddedVocabulary::find_matches: the splits cover s; empty when s is empty.
  std::vector<TextSplit> split(std::string_view s, const std::vector<AddedToken>& tokens) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int>> children;  // sorted by byte
    int token = -1;
  };
  // The longest pattern that starts at s[pos]: its end and token, or token -1.
  std::pair<size_t, int> longest_at(std::string_view s, size_t pos) const;
  std::vector<Node> nodes_{Node{}};
};

}  // namespace zc::tok
