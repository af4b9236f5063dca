// The syntax tree of a Jinja2 template and the parser that builds it from tokens
// (jinja_lexer.h). Nodes are immutable after parsing, so one tree renders from many
// threads at once (jinja_eval.h).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_value.h"

namespace zc::tok::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    Literal,    // value
    Name,       // name
    List,       // items
    Tuple,      // items
    Dict,       // keyword: keys are expressions too, so items alternate key, value
    Attribute,  // items[0].name
    Item,       // items[0][items[1]]
    Slice,      // items[0][items[1]:items[2]:items[3]]; a missing part is nullptr
    Call,       // items[0](items[1..], keyword)
    Filter,     // items[0] | name(items[1..], keyword)
    Test,       // items[0] is [not] name(items[1..], keyword); negated
    Unary,      // name ("-", "+", "not") items[0]
    Binary,     // items[0] name items[1]: + - * / // % ** ~ == != < <= > >= in "not in"
    And,        // items[0] and items[1]
    Or,         // items[0] or items[1]
    Conditional,  // items[1] if items[0] else items[2] (items[2] may be nullptr)
    BlockValue,   // the rendered body of a filtered {% set %} or {% filter %} block
  };
  Kind kind;
  int line = 0;
  std::string name;
  Value value;
  bool negated = false;
  std::vector<ExprPtr> items;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind {
    Text,         // text
    Print,        // {{ expr }}
    If,           // conditions[i] -> bodies[i]; else_body
    For,          // for targets in expr [if filter] body [else else_body]
    Set,          // set targets = expr; or set targets[0].attribute = expr
    SetBlock,     // set targets[0] [| filters in expr] body endset
    Macro,        // macro name(params = defaults) body
    FilterBlock,  // filter expr body endfilter (expr reads BlockValue)
    Scope,        // generation ... endgeneration: the body, rendered as is
    Break,
    Continue,
  };
  Kind kind;
  int line = 0;
  std::string text;
  std::string name;       // macro name
  std::string attribute;  // set ns.attribute
  std::vector<std::string> targets;
  bool targets_are_tuple = false;
  ExprPtr expr;
  ExprPtr filter;  // for ... if filter
  std::vector<ExprPtr> conditions;
  std::vector<Body> bodies;
  Body body;
  Body else_body;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // nullptr where a parameter has none
};

// Throws zc::Error "origin:line:column: ..." for a syntax error.
Body parse_template(const std::vector<Token>& tokens, const std::string& origin);

}  // namespace zc::tok::jinja
