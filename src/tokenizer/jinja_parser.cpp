// The Jinja2 template parser's driver and statements/tags (expressions: jinja_parse_expressions.cpp).
#include "tokenizer/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

#include "core/error.h"
#include "tokenizer/jinja_parser_impl.h"

namespace zc::tok::jinja {

namespace detail {

namespace {

StmtPtr make_stmt(Stmt::Kind kind, int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = kind;
  s->line = line;
  return s;
}

}  // namespace

Body Parser::parse() {
  Body body = parse_until({}, nullptr);
  return body;
}

// Statements up to a {% name %} with name in `ends` (left as the current token, its
// '{%' consumed) or the end of the template (an error when `ends` is not empty).
Body Parser::parse_until(std::initializer_list<std::string_view> ends, const Token* opener) {
  Nest nest(*this);
  Body body;
  while (true) {
    const Token& t = cur();
    switch (t.type) {
      case Type::Text: {
        auto s = make_stmt(Stmt::Kind::Text, t.line);
        s->text = t.text;
        body.push_back(std::move(s));
        advance();
        break;
      }
      case Type::VarBegin: {
        advance();
        auto s = make_stmt(Stmt::Kind::Print, t.line);
        s->expr = parse_tuple_or_expression();
        if (cur().type != Type::VarEnd) error(cur(), fmt::format("expected '}}}}', found {}", describe(cur())));
        advance();
        body.push_back(std::move(s));
        break;
      }
      case Type::BlockBegin: {
        const Token& name = peek();
        if (name.type == Type::Name && std::find(ends.begin(), ends.end(), name.text) != ends.end()) {
          advance();
          return body;
        }
        advance();
        body.push_back(parse_statement());
        break;
      }
      case Type::Eof:
        if (ends.size() != 0 && opener)
          error(t, fmt::format("unexpected end of template: expected '{{% {} %}}' to close the '{}' on line {}",
                               *(ends.end() - 1), opener->text, opener->line));
        return body;
      default:
        error(t, fmt::format("unexpected {}", describe(t)));
    }
  }
}

StmtPtr Parser::parse_statement() {
  const Token& tag = cur();
  if (tag.type != Type::Name) error(tag, fmt::format("expected a tag name, found {}", describe(tag)));
  const std::string& name = tag.text;
  if (name == "if") return parse_if();
  if (name == "for") return parse_for();
  if (name == "set") return parse_set();
  if (name == "macro") return parse_macro();
  if (name == "filter") return parse_filter_block();
  if (name == "generation") {
    // transformers' AssistantTracker marks assistant text for masks; rendering is a no-op.
    advance();
    expect_block_end(name);
    auto s = make_stmt(Stmt::Kind::Scope, tag.line);
    s->body = parse_until({"endgeneration"}, &tag);
    advance();
    expect_block_end("endgeneration");
    return s;
  }
  if (name.starts_with("end") || name == "elif" || name == "else")
    error(tag, fmt::format("unexpected '{}': no open block to close", name));
  if (name == "break" || name == "continue") {
    if (loop_depth_ == 0) error(tag, fmt::format("'{}' outside of a loop", name));
    advance();
    expect_block_end(name);
    return make_stmt(name == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, tag.line);
  }
  static constexpr std::string_view kUnsupported[] = {"include", "import", "from", "extends", "block", "call",
                                                      "with", "do", "autoescape", "trans"};
  if (std::find(std::begin(kUnsupported), std::end(kUnsupported), name) != std::end(kUnsupported))
    error(tag, fmt::format("unsupported tag '{}'", name));
  error(tag, fmt::format("unknown tag '{}'", name));
}

StmtPtr Parser::parse_if() {
  const Token& opener = advance();
  auto s = make_stmt(Stmt::Kind::If, opener.line);
  s->conditions.push_back(parse_expression());
  expect_block_end("if");
  while (true) {
    s->bodies.push_back(parse_until({"elif", "else", "endif"}, &opener));
    const std::string which = advance().text;
    if (which == "elif") {
      s->conditions.push_back(parse_expression());
      expect_block_end("elif");
    } else if (which == "else") {
      expect_block_end("else");
      s->else_body = parse_until({"endif"}, &opener);
      advance();
      expect_block_end("endif");
      return s;
    } else {
      expect_block_end("endif");
      return s;
    }
  }
}

// for/set targets: a name, or names separated by commas (optionally in parentheses).
void Parser::parse_targets(Stmt& s) {
  const bool parenthesized = skip_op("(");
  s.targets.push_back(expect_name("a variable name"));
  while (skip_op(",")) {
    s.targets_are_tuple = true;
    if (cur().type != Type::Name) break;  // trailing comma
    s.targets.push_back(advance().text);
  }
  if (parenthesized) {
    s.targets_are_tuple = true;
    expect_op(")");
  }
}

StmtPtr Parser::parse_for() {
  const Token& opener = advance();
  auto s = make_stmt(Stmt::Kind::For, opener.line);
  parse_targets(*s);
  if (!skip_name("in")) error(cur(), fmt::format("expected 'in' in the 'for' tag, found {}", describe(cur())));
  s->expr = parse_or();  // no conditional here: "for x in xs if c" filters the loop
  if (skip_name("if")) s->filter = parse_expression();
  if (at_name("recursive")) error(cur(), "recursive loops are not supported");
  expect_block_end("for");
  ++loop_depth_;
  s->body = parse_until({"else", "endfor"}, &opener);
  --loop_depth_;
  if (advance().text == "else") {
    expect_block_end("else");
    s->else_body = parse_until({"endfor"}, &opener);
    advance();
  }
  expect_block_end("endfor");
  return s;
}

StmtPtr Parser::parse_set() {
  const Token& opener = advance();
  auto s = make_stmt(Stmt::Kind::Set, opener.line);
  parse_targets(*s);
  if (!s->targets_are_tuple && skip_op(".")) s->attribute = expect_name("an attribute name");
  if (skip_op("=")) {
    s->expr = parse_tuple_or_expression();
    expect_block_end("set");
    return s;
  }
  if (s->targets_are_tuple || !s->attribute.empty()) error(cur(), "expected '=' in the 'set' tag");
  s->kind = Stmt::Kind::SetBlock;
  if (at_op("|")) s->expr = parse_filters(make_expr(Expr::Kind::BlockValue, opener.line));
  expect_block_end("set");
  s->body = parse_until({"endset"}, &opener);
  advance();
  expect_block_end("endset");
  return s;
}

StmtPtr Parser::parse_filter_block() {
  const Token& opener = advance();
  auto s = make_stmt(Stmt::Kind::FilterBlock, opener.line);
  auto input = make_expr(Expr::Kind::BlockValue, opener.line);
  s->expr = parse_filter(std::move(input));
  while (at_op("|")) s->expr = parse_filter(std::move(s->expr));
  expect_block_end("filter");
  s->body = parse_until({"endfilter"}, &opener);
  advance();
  expect_block_end("endfilter");
  return s;
}

StmtPtr Parser::parse_macro() {
  const Token& opener = advance();
  auto s = make_stmt(Stmt::Kind::Macro, opener.line);
  s->name = expect_name("a macro name");
  expect_op("(");
  while (!at_op(")")) {
    if (!s->params.empty()) expect_op(",");
    if (at_op(")")) break;
    s->params.push_back(expect_name("a parameter name"));
    s->defaults.push_back(skip_op("=") ? parse_expression() : nullptr);
  }
  expect_op(")");
  expect_block_end("macro");
  const int saved_loop_depth = loop_depth_;
  loop_depth_ = 0;  // break/continue cannot cross a macro
  s->body = parse_until({"endmacro"}, &opener);
  loop_depth_ = saved_loop_depth;
  advance();
  if (cur().type == Type::Name && cur().text == s->name) advance();
  expect_block_end("endmacro");
  return s;
}

}  // namespace detail

Body parse_template(const std::vector<Token>& tokens, const std::string& origin) {
  return detail::Parser(tokens, origin).parse();
}

}  // namespace zc::tok::jinja
