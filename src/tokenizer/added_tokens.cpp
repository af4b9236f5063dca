#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace zc::tok {

void AddedTokenMatcher::add(std::string_view pattern, int token) {
  if (pattern.empty()) return;  // HF ignores empty added tokens
  int node = 0;
  for (char ch : pattern) {
    const auto c = static_cast<unsigned char>(ch);
    auto& children = nodes_[static_cast<size_t>(node)].children;
    auto it = std::lower_bound(children.begin(), children.end(), c,
                               [](const std::pair<unsigned char, int>& e, unsigned char v) { return e.first < v; });
    if (it != children.end() && it->first == c) {
      node = it->second;
    } else {
      const int child = static_cast<int>(nodes_.size());
      children.insert(it, {c, child});
      nodes_.emplace_back();
      node = child;
    }
  }
  // The first token given a pattern keeps it (aho-corasick reports the lowest pattern).
  if (nodes_[static_cast<size_t>(node)].token < 0) nodes_[static_cast<size_t>(node)].token = token;
}

std::pair<size_t, int> AddedTokenMatcher::longest_at(std::string_view s, size_t pos) const {
  std::pair<size_t, int> best{pos, -1};
  int node = 0;
  for (size_t i = pos; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    const auto& children = nodes_[static_cast<size_t>(node)].children;
    auto it = std::lower_bound(children.begin(), children.end(), c,
                               [](const std::pair<unsigned char, int>& e, unsigned char v) { return e.first < v; });
    if (it == children.end() || it->first != c) break;
    node = it->second;
    if (nodes_[static_cast<size_t>(node)].token >= 0) best = {i + 1, nodes_[static_cast<size_t>(node)].token};
  }
  return best;
}

std::vector<TextSplit> AddedTokenMatcher::split(std::string_view s, const std::vector<AddedToken>& tokens) const {
  std::vector<TextSplit> splits;
  if (s.empty()) return splits;
  size_t start_offset = 0;  // end of the last split made
  size_t pos = 0;           // where the search for the next match starts
  while (pos < s.size() && !empty()) {
    // Leftmost-longest: the first position where some token starts, longest token there.
    size_t mstart = pos;
    std::pair<size_t, int> m{0, -1};
    for (; mstart < s.size(); ++mstart) {
      m = longest_at(s, mstart);
      if (m.second >= 0) break;
    }
    if (m.second < 0) break;
    size_t start = mstart, stop = m.first;
    pos = stop;
    const AddedToken& t = tokens[static_cast<size_t>(m.second)];
    if (t.single_word) {  // only as a whole word: no word character on either side
      size_t before = 0;
      const bool start_space = start == 0 || !is_word_char(utf8_prev(s, start, before));
      size_t after = stop;
      const bool stop_space = stop == s.size() || !is_word_char(utf8_next(s, after));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) {  // swallow the whitespace before it, but not text already split off
      size_t new_start = start;
      while (new_start > 0) {
        size_t prev = 0;
        if (!is_white_space(utf8_prev(s, new_start, prev))) break;
        new_start = prev;
      }
      start = std::max(new_start, start_offset);
    }
    if (t.rstrip) {
      while (stop < s.size()) {
        size_t next = stop;
        if (!is_white_space(utf8_next(s, next))) break;
        stop = next;
      }
      pos = stop;
    }
    if (start_offset < start) splits.push_back({start_offset, start, -1});
    splits.push_back({start, stop, m.second});
    start_offset = stop;
  }
  if (start_offset != s.size()) splits.push_back({start_offset, s.size(), -1});
  return splits;
}

}  // namespace zc::tok
