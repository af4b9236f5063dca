#include "tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace zc::tok::jinja {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// Jinja2 normalizes \r\n and \r to \n and, without keep_trailing_newline, drops one
// trailing newline, before anything else.
std::string normalize_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  Lexer(std::string_view source, const std::string& origin) : src_(normalize_source(source)), origin_(origin) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    bool line_starting = true;  // the previous tag ended a line (lstrip_blocks needs it)
    size_t pos = 0;
    while (pos < src_.size()) {
      const size_t open = find_tag_open(pos);
      std::string_view text(src_.data() + pos, open - pos);
      if (open == src_.size()) {
        emit_text(text, pos);
        break;
      }
      const char kind = src_[open + 1];
      const char sign = open + 2 < src_.size() && (src_[open + 2] == '-' || src_[open + 2] == '+') ? src_[open + 2] : 0;
      if (sign == '-') {
        while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
      } else if (sign != '+' && kind != '{') {
        // lstrip_blocks: a block or comment tag preceded only by spaces on its line
        // takes those spaces with it.
        const size_t last_newline = text.rfind('\n');
        const size_t line_begin = last_newline == std::string_view::npos ? 0 : last_newline + 1;
        if ((line_begin > 0 || line_starting) &&
            std::all_of(text.begin() + static_cast<std::ptrdiff_t>(line_begin), text.end(), is_space))
          text = text.substr(0, line_begin);
      }
      emit_text(text, pos);
      size_t p = open + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        pos = skip_comment(open, p);
      } else if (kind == '%' && at_word(p, "raw")) {
        pos = lex_raw(open, p);
      } else {
        pos = lex_tag(open, p, kind == '%');
      }
      line_starting = src_[pos - 1] == '\n';
    }
    push(Token::Type::Eof, "", src_.size());
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void error_at(size_t pos, const std::string& what) const {
    const auto [line, column] = location(pos);
    fail("{}:{}:{}: {}", origin_, line, column, what);
  }

  std::pair<int, int> location(size_t pos) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) - 1;
    return {static_cast<int>(it - line_starts_.begin()) + 1, static_cast<int>(pos - *it) + 1};
  }

  void push(Token::Type type, std::string text, size_t pos) {
    Token t{type, std::move(text)};
    std::tie(t.line, t.column) = location(pos);
    tokens_.push_back(std::move(t));
  }

  void emit_text(std::string_view text, size_t pos) {
    if (!text.empty()) push(Token::Type::Text, std::string(text), pos);
  }

  size_t find_tag_open(size_t pos) const {
    for (size_t i = pos; i + 1 < src_.size(); ++i)
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return src_.size();
  }

  // After a block or comment end: '-' eats all following whitespace, '+' keeps it, and
  // otherwise trim_blocks eats one newline.
  size_t after_block_end(size_t end_pos, char sign) const {
    if (sign == '-') {
      while (end_pos < src_.size() && is_space(src_[end_pos])) ++end_pos;
    } else if (sign != '+' && end_pos < src_.size() && src_[end_pos] == '\n') {
      ++end_pos;
    }
    return end_pos;
  }

  size_t skip_comment(size_t open, size_t p) const {
    const size_t close = src_.find("#}", p);
    if (close == std::string::npos) error_at(open, "missing end of comment tag '#}'");
    const char sign = close > p && (src_[close - 1] == '-' || src_[close - 1] == '+') ? src_[close - 1] : 0;
    return after_block_end(close + 2, sign);
  }

  size_t skip_spaces(size_t p) const {
    while (p < src_.size() && is_space(src_[p])) ++p;
    return p;
  }

  bool at_word(size_t p, std::string_view word) const {
    p = skip_spaces(p);
    return src_.compare(p, word.size(), word) == 0 && (p + word.size() >= src_.size() || !is_name_char(src_[p + word.size()]));
  }

  // {% raw %}...{% endraw %}: the body is text, tags in it are not interpreted.
  size_t lex_raw(size_t open, size_t p) {
    p = skip_spaces(p) + 3;
    p = skip_spaces(p);
    char sign = 0;
    if (p < src_.size() && src_[p] == '-') sign = src_[p++];
    if (src_.compare(p, 2, "%}") != 0) error_at(p, "expected '%}' after 'raw'");
    size_t body = p + 2;
    if (sign == '-') body = skip_spaces(body);
    for (size_t q = src_.find("{%", body); q != std::string::npos; q = src_.find("{%", q + 2)) {
      size_t r = q + 2;
      const char open_sign = r < src_.size() && (src_[r] == '-' || src_[r] == '+') ? src_[r] : 0;
      if (open_sign) ++r;
      if (!at_word(r, "endraw")) continue;
      r = skip_spaces(skip_spaces(r) + 6);
      char close_sign = 0;
      if (r < src_.size() && (src_[r] == '-' || src_[r] == '+')) close_sign = src_[r++];
      if (src_.compare(r, 2, "%}") != 0) error_at(r, "expected '%}' after 'endraw'");
      std::string_view text(src_.data() + body, q - body);
      if (open_sign == '-')
        while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
      emit_text(text, body);
      return after_block_end(r + 2, close_sign);
    }
    error_at(open, "missing '{% endraw %}' for this '{% raw %}'");
  }

  size_t lex_tag(size_t open, size_t p, bool is_block) {
    push(is_block ? Token::Type::BlockBegin : Token::Type::VarBegin, "", open);
    std::string brackets;  // open ( [ {: while any is open, "}}" and "%}" are operators
    const char* expected_end = is_block ? "'%}'" : "'}}'";
    while (true) {
      p = skip_spaces(p);
      if (p >= src_.size())
        error_at(open, fmt::format("unexpected end of template: this tag has no {}", expected_end));
      if (brackets.empty()) {
        if (is_block) {
          for (char sign : {'-', '+', '\0'}) {
            const std::string end = sign ? std::string(1, sign) + "%}" : "%}";
            if (src_.compare(p, end.size(), end) == 0) {
              push(Token::Type::BlockEnd, "", p);
              return after_block_end(p + end.size(), sign);
            }
          }
        } else if (src_.compare(p, 3, "-}}") == 0) {
          push(Token::Type::VarEnd, "", p);
          return skip_spaces(p + 3);
        } else if (src_.compare(p, 2, "}}") == 0) {
          push(Token::Type::VarEnd, "", p);
          return p + 2;
        }
      }
      const char c = src_[p];
      if (is_digit(c)) {
        p = lex_number(p);
      } else if (is_name_start(c)) {
        const size_t begin = p;
        while (p < src_.size() && is_name_char(src_[p])) ++p;
        push(Token::Type::Name, src_.substr(begin, p - begin), begin);
      } else if (c == '\'' || c == '"') {
        p = lex_string(p);
      } else {
        p = lex_operator(p, brackets);
      }
    }
  }

  size_t lex_operator(size_t p, std::string& brackets) {
    static constexpr const char* kTwoChar[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kTwoChar) {
      if (src_.compare(p, 2, op) == 0) {
        push(Token::Type::Op, op, p);
        return p + 2;
      }
    }
    const char c = src_[p];
    if (!std::strchr("+-*/%~()[]{}<>=.:|,;", c)) error_at(p, fmt::format("unexpected character '{}'", c));
    if (c == '(' || c == '[' || c == '{') {
      if (brackets.size() >= 256) error_at(p, "brackets nested deeper than 256 levels");
      brackets += c == '(' ? ')' : c == '[' ? ']' : '}';
    } else if (c == ')' || c == ']' || c == '}') {
      if (brackets.empty()) error_at(p, fmt::format("unexpected '{}'", c));
      if (brackets.back() != c) error_at(p, fmt::format("unexpected '{}', expected '{}'", c, brackets.back()));
      brackets.pop_back();
    }
    push(Token::Type::Op, std::string(1, c), p);
    return p + 1;
  }

  // Digits with optional '_' separators; base prefixes 0b/0o/0x; floats need digits
  // after the '.' or an exponent (as Jinja2's lexer).
  size_t lex_number(size_t begin) {
    auto digits_end = [&](size_t p, int base) {
      while (p < src_.size() && (src_[p] == '_' || (hex_value(src_[p]) >= 0 && hex_value(src_[p]) < base))) ++p;
      return p;
    };
    const bool after_dot = !tokens_.empty() && tokens_.back().type == Token::Type::Op && tokens_.back().text == ".";
    size_t p = begin;
    int base = 10;
    if (src_[p] == '0' && p + 1 < src_.size() && std::strchr("bBoOxX", src_[p + 1]) && src_[p + 1] != '\0') {
      const char prefix = static_cast<char>(src_[p + 1] | 0x20);
      base = prefix == 'b' ? 2 : prefix == 'o' ? 8 : 16;
      p += 2;
    }
    const size_t int_begin = p;
    p = digits_end(p, base);
    bool is_float = false;
    if (base == 10 && !after_dot) {
      if (p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
        is_float = true;
        p = digits_end(p + 1, 10);
      }
      if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
        size_t q = p + 1;
        if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
        if (q < src_.size() && is_digit(src_[q])) {
          is_float = true;
          p = digits_end(q, 10);
        }
      }
    }
    std::string text;
    for (size_t i = begin; i < p; ++i)
      if (src_[i] != '_') text += src_[i];
    if (is_float) {
      push(Token::Type::Float, text, begin);
      tokens_.back().float_value = std::strtod(text.c_str(), nullptr);
      return p;
    }
    if (p == int_begin) error_at(begin, "malformed number literal");
    int64_t value = 0;
    for (size_t i = int_begin; i < p; ++i) {
      if (src_[i] == '_') continue;
      if (__builtin_mul_overflow(value, base, &value) || __builtin_add_overflow(value, hex_value(src_[i]), &value))
        error_at(begin, "integer literal does not fit in 64 bits");
    }
    push(Token::Type::Int, text, begin);
    tokens_.back().int_value = value;
    return p;
  }

  // Python string escapes (Jinja2 decodes literals with "unicode-escape"); an unknown
  // escape stays as written, like Python.
  size_t lex_string(size_t begin) {
    const char quote = src_[begin];
    std::string value;
    size_t p = begin + 1;
    while (true) {
      if (p >= src_.size()) error_at(begin, "unterminated string literal");
      const char c = src_[p];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) error_at(begin, "unterminated string literal");
      const char e = src_[p + 1];
      p += 2;
      switch (e) {
        case 'n': value += '\n'; break;
        case 't': value += '\t'; break;
        case 'r': value += '\r'; break;
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case 'a': value += '\a'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'v': value += '\v'; break;
        case '\n': break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          const size_t width = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (size_t k = 0; k < width; ++k) {
            const int h = p + k < src_.size() ? hex_value(src_[p + k]) : -1;
            if (h < 0) error_at(p - 2, fmt::format("truncated \\{} escape in string literal", e));
            cp = cp * 16 + static_cast<uint32_t>(h);
          }
          if (cp > 0x10ffff) error_at(p - 2, "escape beyond U+10FFFF in string literal");
          append_utf8(value, cp);
          p += width;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {  // octal, up to three digits
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7'; ++k) cp = cp * 8 + static_cast<uint32_t>(src_[p++] - '0');
            append_utf8(value, cp);
          } else {
            value += '\\';
            value += e;
          }
      }
    }
    push(Token::Type::String, std::move(value), begin);
    return p + 1;
  }

  std::string src_;
  const std::string& origin_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const std::string& origin) {
  return Lexer(source, origin).run();
}

}  // namespace zc::tok::jinja
