// The pre-tokenizer regexes of tokenizer.json (Split, ByteLevel) through PCRE2, in UTF
// mode with Unicode properties (\p{L}, \p{N}, Unicode \s) and JIT compilation when the
// platform has it (the interpreter otherwise, and as a fallback if a JIT match fails).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zc::tok {

// HF tokenizers compile these patterns with Oniguruma, whose Unicode \s also matches
// U+0085 (NEL); PCRE2's \s (with PCRE2_UCP) is Z + HT/LF/VT/FF/CR and does not. This
// rewrites \s and \S (outside and inside classes) so that both engines agree.
std::string onig_to_pcre2(std::string_view pattern);

class Regex {
 public:
  // pattern is in tokenizer.json syntax; `where` names the file and field for errors.
  Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Every non-overlapping match of s, left to right, as [start, end) byte offsets
  // (appended to out). s must be valid UTF-8 (not re-checked, for speed). Thread-safe.
  void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8
  bool jit_ = false;
};

}  // namespace zc::tok
