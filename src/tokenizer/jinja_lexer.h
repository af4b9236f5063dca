// Tokenizer of Jinja2 source with the options transformers renders chat templates with
// (trim_blocks, lstrip_blocks, keep_trailing_newline off): template text becomes Text
// tokens with the whitespace control already applied, tags become begin/end markers
// around expression tokens, comments vanish and {% raw %} bodies become Text.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace zc::tok::jinja {

struct Token {
  enum class Type { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };
  Type type;
  std::string text;  // Text/String: the (unescaped) text; Name/Op: the name or operator
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int column = 1;
};

// Throws zc::Error "origin:line:column: ..." for a malformed tag, string or number.
std::vector<Token> tokenize(std::string_view source, const std::string& origin);

}  // namespace zc::tok::jinja
