// The Jinja2 parser class, private to jinja_parser.cpp (statements) and jinja_parse_expressions.cpp.
#pragma once
#include <algorithm>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_parser.h"

namespace zc::tok::jinja::detail {

// Nesting of statements and sub-expressions a template may have: a hostile template
// must get a clear error, not overflow the stack of the (recursive) parser or renderer.
inline constexpr int kMaxNesting = 200;

using Type = Token::Type;

inline ExprPtr make_expr(Expr::Kind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const std::string& origin) : tokens_(tokens), origin_(origin) {}

  Body parse();

 private:
  // Depth guard: one per nested statement or sub-expression.
  struct Nest {
    explicit Nest(Parser& p) : parser(p) {
      if (++parser.depth_ > kMaxNesting)
        parser.error(parser.cur(), fmt::format("template nested deeper than {} levels", kMaxNesting));
    }
    ~Nest() { --parser.depth_; }
    Parser& parser;
  };

  const Token& cur() const { return tokens_[pos_]; }
  const Token& peek(size_t ahead = 1) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  const Token& advance() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }

  [[noreturn]] void error(const Token& at, const std::string& what) const {
    fail("{}:{}:{}: {}", origin_, at.line, at.column, what);
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Type::Text: return "template text";
      case Type::VarBegin: return "'{{'";
      case Type::VarEnd: return "'}}'";
      case Type::BlockBegin: return "'{%'";
      case Type::BlockEnd: return "'%}'";
      case Type::Name:
      case Type::Op: return "'" + t.text + "'";
      case Type::String: return "a string";
      case Type::Int:
      case Type::Float: return "a number";
      case Type::Eof: return "the end of the template";
    }
    return "a token";
  }

  bool at_op(std::string_view op) const { return cur().type == Type::Op && cur().text == op; }
  bool at_name(std::string_view name) const { return cur().type == Type::Name && cur().text == name; }
  bool skip_op(std::string_view op) {
    if (!at_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!at_name(name)) return false;
    advance();
    return true;
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) error(cur(), fmt::format("expected '{}', found {}", op, describe(cur())));
  }
  std::string expect_name(std::string_view what) {
    if (cur().type != Type::Name) error(cur(), fmt::format("expected {}, found {}", what, describe(cur())));
    return advance().text;
  }
  void expect_block_end(std::string_view tag) {
    if (cur().type != Type::BlockEnd)
      error(cur(), fmt::format("expected '%}}' to end the '{}' tag, found {}", tag, describe(cur())));
    advance();
  }

  // ---- statements (jinja_parser.cpp) ----

  Body parse_until(std::initializer_list<std::string_view> ends, const Token* opener);
  StmtPtr parse_statement();
  StmtPtr parse_if();
  void parse_targets(Stmt& s);
  StmtPtr parse_for();
  StmtPtr parse_set();
  StmtPtr parse_filter_block();
  StmtPtr parse_macro();

  // ---- expressions, by increasing precedence (jinja_parse_expressions.cpp) ----

  ExprPtr parse_tuple_or_expression();
  ExprPtr parse_expression();
  ExprPtr binary(Expr::Kind kind, std::string op, ExprPtr left, ExprPtr right, int line);
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  template <typename Next>
  ExprPtr parse_left_assoc(std::initializer_list<std::string_view> ops, Next next);
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary_with_filters();
  ExprPtr parse_unary(bool with_filters);
  ExprPtr parse_primary();
  ExprPtr parse_parenthesized();
  ExprPtr parse_sequence(Expr::Kind kind, std::string_view close);
  ExprPtr parse_dict();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  void parse_arguments(Expr& e);
  ExprPtr parse_call(ExprPtr callee);
  std::string parse_dotted_name(std::string_view what);
  ExprPtr parse_filter(ExprPtr input);
  ExprPtr parse_filters(ExprPtr node);
  ExprPtr parse_test(ExprPtr input);

  const std::vector<Token>& tokens_;
  const std::string& origin_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace zc::tok::jinja::detail
