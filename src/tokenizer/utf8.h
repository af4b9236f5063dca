// UTF-8 helpers of the tokenizer: validation, code points, the lossy conversion of
// Rust's String::from_utf8_lossy (which HF decoders use), Unicode classes used by
// added-token matching, and Unicode normalization forms (through utf8proc).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace zc::tok {

// Byte offset of the first invalid UTF-8 sequence, or npos when s is valid.
size_t utf8_invalid_at(std::string_view s);
inline bool utf8_valid(std::string_view s) { return utf8_invalid_at(s) == std::string_view::npos; }

// Length of the UTF-8 sequence that starts with lead byte b (1 for invalid leads).
inline size_t utf8_len(unsigned char b) {
  return b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
}

// Decodes the code point at s[i] of a valid string and advances i past it.
char32_t utf8_next(std::string_view s, size_t& i);
// Code point that ends at s[end-1] of a valid string (end > 0); sets start to its offset.
char32_t utf8_prev(std::string_view s, size_t end, size_t& start);
void utf8_append(std::string& out, char32_t cp);

// Rust String::from_utf8_lossy: each maximal invalid subpart becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// Unicode White_Space (Rust's char::is_whitespace, regex \s).
bool is_white_space(char32_t cp);
// Rust regex \w: Alphabetic, marks, decimal numbers, connector punctuation, joiners.
bool is_word_char(char32_t cp);

enum class NormForm { NFC, NFD, NFKC, NFKD };
std::string unicode_normalize(std::string_view s, NormForm form);

}  // namespace zc::tok
