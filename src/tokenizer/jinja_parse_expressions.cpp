// The Jinja2 template parser's expressions: literals, operators, filters and tests, calls, subscripts.
#include <algorithm>
#include <initializer_list>

#include "core/error.h"
#include "tokenizer/jinja_eval.h"
#include "tokenizer/jinja_parser_impl.h"

namespace zc::tok::jinja::detail {

// ---- expressions, by increasing precedence (as Jinja2's parser) ----

ExprPtr Parser::parse_tuple_or_expression() {
  const int line = cur().line;
  ExprPtr first = parse_expression();
  if (!at_op(",")) return first;
  auto tuple = make_expr(Expr::Kind::Tuple, line);
  tuple->items.push_back(std::move(first));
  while (skip_op(",")) {
    if (cur().type == Type::VarEnd || cur().type == Type::BlockEnd) break;
    tuple->items.push_back(parse_expression());
  }
  return tuple;
}

ExprPtr Parser::parse_expression() {
  Nest nest(*this);
  ExprPtr value = parse_or();
  while (at_name("if")) {
    auto cond = make_expr(Expr::Kind::Conditional, advance().line);
    cond->items.push_back(parse_or());
    cond->items.push_back(std::move(value));
    cond->items.push_back(skip_name("else") ? parse_expression() : nullptr);
    value = std::move(cond);
  }
  return value;
}

ExprPtr Parser::binary(Expr::Kind kind, std::string op, ExprPtr left, ExprPtr right, int line) {
  auto e = make_expr(kind, line);
  e->name = std::move(op);
  e->items.push_back(std::move(left));
  e->items.push_back(std::move(right));
  return e;
}

ExprPtr Parser::parse_or() {
  ExprPtr left = parse_and();
  while (at_name("or")) {
    const int line = advance().line;
    left = binary(Expr::Kind::Or, "or", std::move(left), parse_and(), line);
  }
  return left;
}

ExprPtr Parser::parse_and() {
  ExprPtr left = parse_not();
  while (at_name("and")) {
    const int line = advance().line;
    left = binary(Expr::Kind::And, "and", std::move(left), parse_not(), line);
  }
  return left;
}

ExprPtr Parser::parse_not() {
  if (at_name("not")) {
    Nest nest(*this);
    auto e = make_expr(Expr::Kind::Unary, advance().line);
    e->name = "not";
    e->items.push_back(parse_not());
    return e;
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  ExprPtr left = parse_math1();
  while (true) {
    const Token& t = cur();
    std::string op;
    if (t.type == Type::Op && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" ||
                               t.text == ">" || t.text == ">=")) {
      op = t.text;
      advance();
    } else if (at_name("in")) {
      op = "in";
      advance();
    } else if (at_name("not") && peek().type == Type::Name && peek().text == "in") {
      op = "not in";
      advance();
      advance();
    } else {
      return left;
    }
    left = binary(Expr::Kind::Binary, op, std::move(left), parse_math1(), t.line);
  }
}

template <typename Next>
ExprPtr Parser::parse_left_assoc(std::initializer_list<std::string_view> ops, Next next) {
  ExprPtr left = (this->*next)();
  while (cur().type == Type::Op && std::find(ops.begin(), ops.end(), cur().text) != ops.end()) {
    const Token& t = advance();
    left = binary(Expr::Kind::Binary, t.text, std::move(left), (this->*next)(), t.line);
  }
  return left;
}
ExprPtr Parser::parse_math1() { return parse_left_assoc({"+", "-"}, &Parser::parse_concat); }
ExprPtr Parser::parse_concat() { return parse_left_assoc({"~"}, &Parser::parse_math2); }
ExprPtr Parser::parse_math2() { return parse_left_assoc({"*", "/", "//", "%"}, &Parser::parse_pow); }
ExprPtr Parser::parse_pow() { return parse_left_assoc({"**"}, &Parser::parse_unary_with_filters); }
ExprPtr Parser::parse_unary_with_filters() { return parse_unary(true); }

ExprPtr Parser::parse_unary(bool with_filters) {
  Nest nest(*this);
  ExprPtr node;
  if (at_op("-") || at_op("+")) {
    node = make_expr(Expr::Kind::Unary, cur().line);
    node->name = advance().text;
    node->items.push_back(parse_unary(false));
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  return with_filters ? parse_filters(std::move(node)) : std::move(node);
}

ExprPtr Parser::parse_primary() {
  const Token& t = cur();
  switch (t.type) {
    case Type::Name: {
      advance();
      if (t.text == "true" || t.text == "True" || t.text == "false" || t.text == "False") {
        auto e = make_expr(Expr::Kind::Literal, t.line);
        e->value = Value(t.text == "true" || t.text == "True");
        return e;
      }
      if (t.text == "none" || t.text == "None") {
        auto e = make_expr(Expr::Kind::Literal, t.line);
        e->value = Value::none();
        return e;
      }
      auto e = make_expr(Expr::Kind::Name, t.line);
      e->name = t.text;
      return e;
    }
    case Type::String: {
      std::string s;
      while (cur().type == Type::String) s += advance().text;  // "a" "b" is "ab", as in Python
      auto e = make_expr(Expr::Kind::Literal, t.line);
      e->value = Value(std::move(s));
      return e;
    }
    case Type::Int:
    case Type::Float: {
      advance();
      auto e = make_expr(Expr::Kind::Literal, t.line);
      e->value = t.type == Type::Int ? Value(t.int_value) : Value(t.float_value);
      return e;
    }
    case Type::Op:
      if (t.text == "(") return parse_parenthesized();
      if (t.text == "[") return parse_sequence(Expr::Kind::List, "]");
      if (t.text == "{") return parse_dict();
      break;
    default:
      break;
  }
  error(t, fmt::format("expected an expression, found {}", describe(t)));
}

ExprPtr Parser::parse_parenthesized() {
  const Token& open = advance();
  if (skip_op(")")) return make_expr(Expr::Kind::Tuple, open.line);
  ExprPtr first = parse_expression();
  if (skip_op(")")) return first;
  auto tuple = make_expr(Expr::Kind::Tuple, open.line);
  tuple->items.push_back(std::move(first));
  while (skip_op(",")) {
    if (at_op(")")) break;
    tuple->items.push_back(parse_expression());
  }
  expect_op(")");
  return tuple;
}

ExprPtr Parser::parse_sequence(Expr::Kind kind, std::string_view close) {
  auto e = make_expr(kind, advance().line);
  while (!at_op(close)) {
    if (!e->items.empty()) expect_op(",");
    if (at_op(close)) break;
    e->items.push_back(parse_expression());
  }
  advance();
  return e;
}

ExprPtr Parser::parse_dict() {
  auto e = make_expr(Expr::Kind::Dict, advance().line);
  while (!at_op("}")) {
    if (!e->items.empty()) expect_op(",");
    if (at_op("}")) break;
    e->items.push_back(parse_expression());
    expect_op(":");
    e->items.push_back(parse_expression());
  }
  advance();
  return e;
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
  while (true) {
    if (at_op(".")) {
      const int line = advance().line;
      if (cur().type == Type::Int) {  // foo.0 is foo[0]
        auto index = make_expr(Expr::Kind::Literal, line);
        index->value = Value(advance().int_value);
        node = binary(Expr::Kind::Item, "", std::move(node), std::move(index), line);
        continue;
      }
      auto attr = make_expr(Expr::Kind::Attribute, line);
      attr->name = expect_name("an attribute name after '.'");
      attr->items.push_back(std::move(node));
      node = std::move(attr);
    } else if (at_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (at_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr node) {
  const int line = advance().line;
  ExprPtr parts[3];
  int part = 0;
  bool is_slice = false;
  while (!at_op("]")) {
    if (skip_op(":")) {
      if (++part > 2) error(cur(), "a slice has at most three parts");
      is_slice = true;
      continue;
    }
    if (parts[part]) expect_op("]");
    parts[part] = parse_expression();
  }
  advance();
  if (!is_slice) {
    if (!parts[0]) error(cur(), "empty subscript");
    return binary(Expr::Kind::Item, "", std::move(node), std::move(parts[0]), line);
  }
  auto slice = make_expr(Expr::Kind::Slice, line);
  slice->items.push_back(std::move(node));
  for (auto& p : parts) slice->items.push_back(std::move(p));
  return slice;
}

// Arguments after '(' into e->items (positional, after whatever is there) and e->keyword.
void Parser::parse_arguments(Expr& e) {
  expect_op("(");
  bool first = true;
  while (!at_op(")")) {
    if (!first) expect_op(",");
    first = false;
    if (at_op(")")) break;
    if (at_op("*") || at_op("**")) error(cur(), "argument unpacking (*args, **kwargs) is not supported");
    if (cur().type == Type::Name && peek().type == Type::Op && peek().text == "=") {
      std::string key = advance().text;
      advance();
      e.keyword.emplace_back(std::move(key), parse_expression());
    } else {
      if (!e.keyword.empty()) error(cur(), "positional argument after keyword argument");
      e.items.push_back(parse_expression());
    }
  }
  advance();
}

ExprPtr Parser::parse_call(ExprPtr callee) {
  auto call = make_expr(Expr::Kind::Call, cur().line);
  call->items.push_back(std::move(callee));
  parse_arguments(*call);
  return call;
}

std::string Parser::parse_dotted_name(std::string_view what) {
  std::string name = expect_name(what);
  while (at_op(".") && peek().type == Type::Name) {
    advance();
    name += "." + advance().text;
  }
  return name;
}

ExprPtr Parser::parse_filter(ExprPtr input) {
  const int line = cur().line;
  if (at_op("|")) advance();
  auto f = make_expr(Expr::Kind::Filter, line);
  const Token& name_token = cur();
  f->name = parse_dotted_name("a filter name");
  if (!is_known_filter(f->name)) error(name_token, fmt::format("unknown filter '{}'", f->name));
  f->items.push_back(std::move(input));
  if (at_op("(")) parse_arguments(*f);
  return f;
}

ExprPtr Parser::parse_filters(ExprPtr node) {
  while (true) {
    if (at_op("|")) {
      node = parse_filter(std::move(node));
    } else if (at_name("is")) {
      node = parse_test(std::move(node));
    } else if (at_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_test(ExprPtr input) {
  auto t = make_expr(Expr::Kind::Test, advance().line);
  t->negated = skip_name("not");
  const Token& name_token = cur();
  t->name = parse_dotted_name("a test name after 'is'");
  if (!is_known_test(t->name)) error(name_token, fmt::format("unknown test '{}'", t->name));
  t->items.push_back(std::move(input));
  const Token& next = cur();
  if (at_op("(")) {
    parse_arguments(*t);
  } else if ((next.type == Type::Name || next.type == Type::String || next.type == Type::Int ||
              next.type == Type::Float || at_op("[") || at_op("{")) &&
             !(next.type == Type::Name && (next.text == "else" || next.text == "or" || next.text == "and"))) {
    // `x is divisibleby 3`, `x is sameas false`: one argument without parentheses.
    if (next.type == Type::Name && next.text == "is") error(next, "tests cannot be chained with 'is'");
    Nest nest(*this);
    t->items.push_back(parse_postfix(parse_primary()));
  }
  return t;
}

}  // namespace zc::tok::jinja::detail
