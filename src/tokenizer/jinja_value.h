// Values of the chat-template interpreter (chat_template.h): the Python objects a Jinja2
// template sees — None, bool, int, float, str, list/tuple, dict, namespace, callables
// and Jinja's Undefined — with Python's printing (str/repr), truthiness, equality and
// ordering, because templates print and compare them the way Python does.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace zc::tok::jinja {

class Value;
using List = std::vector<Value>;

// Dicts keep insertion order (Python 3.7+), which tojson and printing expose; lookups
// are linear because template dicts are small (a message, a tool).
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(std::string_view key) const;
  void set(std::string key, Value value);
};

// Arguments of a call: f(a, b, key=c).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// A callable value: macros and globals (range, namespace, raise_exception, ...). `line`
// is where the call happens, for error messages.
using Function = std::function<Value(CallArgs& args, int line)>;

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Function };

  Value() = default;  // Undefined
  // `hint` is the message an operation on it fails with: "'x' is undefined".
  static Value undefined(std::string hint) {
    Value v;
    v.str_ = std::make_shared<const std::string>(std::move(hint));
    return v;
  }
  static Value none() { return Value(Kind::None); }
  Value(bool b) : kind_(Kind::Bool), int_(b) {}
  Value(int64_t i) : kind_(Kind::Int), int_(i) {}
  Value(int i) : kind_(Kind::Int), int_(i) {}
  Value(double d) : kind_(Kind::Float), float_(d) {}
  Value(std::string s) : kind_(Kind::String), str_(std::make_shared<const std::string>(std::move(s))) {}
  Value(const char* s) : Value(std::string(s)) {}
  Value(List items, bool is_tuple = false)
      : kind_(Kind::List), list_(std::make_shared<List>(std::move(items))), flag_(is_tuple) {}
  Value(Dict dict, bool is_namespace = false)
      : kind_(Kind::Dict), dict_(std::make_shared<Dict>(std::move(dict))), flag_(is_namespace) {}
  Value(Function f, std::string name)
      : kind_(Kind::Function),
        str_(std::make_shared<const std::string>(std::move(name))),
        func_(std::make_shared<Function>(std::move(f))) {}

  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  // Python's bool is an int: True + 1 == 2.
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_tuple() const { return kind_ == Kind::List && flag_; }
  bool is_dict() const { return kind_ == Kind::Dict; }
  bool is_namespace() const { return kind_ == Kind::Dict && flag_; }
  bool is_function() const { return kind_ == Kind::Function; }

  bool as_bool() const { return int_ != 0; }
  int64_t as_int() const { return int_; }  // Int and Bool
  double as_double() const { return kind_ == Kind::Float ? float_ : static_cast<double>(int_); }
  const std::string& as_string() const { return str_ ? *str_ : empty_string(); }  // String; a Function's name
  const std::string& undefined_hint() const { return as_string(); }
  List& list() const { return *list_; }
  Dict& dict() const { return *dict_; }
  const Function& function() const { return *func_; }
  // Identity, for the `sameas` test and for cycles in printing.
  const void* identity() const;

  bool truthy() const;
  // Python's str(): strings as is, 1.0, True, None, ['a'], {'a': 1}; Undefined is "".
  std::string str() const;
  // Python's repr(): strings quoted.
  std::string repr() const;
  std::string type_name() const;  // Python's: 'str', 'dict', ... for error messages

 private:
  explicit Value(Kind k) : kind_(k) {}
  static const std::string& empty_string();
  void append_str(std::string& out, bool quoted, int depth) const;
  Kind kind_ = Kind::Undefined;
  int64_t int_ = 0;
  double float_ = 0;
  // Shared: values are copied on every variable read, and a template must not be able
  // to turn a loop over a huge string into a huge amount of copying.
  std::shared_ptr<const std::string> str_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<Function> func_;
  bool flag_ = false;  // tuple (List) or namespace (Dict)
};

// Python ==: numbers across int/float/bool, strings, lists and dicts element-wise.
bool equals(const Value& a, const Value& b);
// Python <: -1, 0, 1; throws zc::Error (without location) for unorderable types.
int compare(const Value& a, const Value& b);

// Python's float repr: shortest round-trip digits, 1.0, 1e+16, 1.5e-05, inf, nan.
std::string format_float(double d);
// json.dumps(value, ensure_ascii, indent, separators, sort_keys) as transformers' tojson.
struct JsonStyle {
  bool ensure_ascii = false;
  int indent = -1;  // -1: no newlines
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// Walks the Value itself (not nlohmann::json) to keep dict insertion order; throws
// zc::Error (without location) for what json.dumps rejects, e.g. Undefined.
std::string dump_json(const Value& v, const JsonStyle& style);

// UTF-8 helpers: Python indexes strings by code point.
std::vector<std::string_view> code_points(std::string_view s);
size_t code_point_count(std::string_view s);

}  // namespace zc::tok::jinja
