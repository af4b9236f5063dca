// Rendering a parsed Jinja2 template (jinja_parser.h) the way transformers does:
// Jinja2's ImmutableSandboxedEnvironment semantics for variables, scopes, Undefined,
// filters, tests and Python methods. The builtins (filters, tests, methods, globals)
// live in jinja_filters.cpp and jinja_methods.cpp; they throw zc::Error without a
// location and the renderer prefixes origin:line.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "tokenizer/jinja_parser.h"
#include "tokenizer/jinja_value.h"

namespace zc::tok::jinja {

// Bounds on what one render may do, so that a hostile template ends in a clear error
// instead of a hang or an exhausted machine.
inline constexpr size_t kMaxOutputBytes = size_t{64} << 20;  // also any one string
inline constexpr size_t kMaxLoopIterations = 1'000'000;  // ten range() maxima
inline constexpr size_t kMaxWork = size_t{1} << 31;  // bytes/elements made or scanned
inline constexpr int kMaxCallDepth = 100;              // nested macro calls
inline constexpr int64_t kMaxRange = 100'000;          // Jinja2's sandbox MAX_RANGE

// Work accounting of one render; builtins charge what they produce or scan.
class Budget {
 public:
  void charge(size_t units) {
    work_ += units;
    if (work_ > kMaxWork) fail_work();
  }
  // A string about to be made of `bytes`: refused beyond kMaxOutputBytes.
  void charge_string(size_t bytes);

 private:
  [[noreturn]] static void fail_work();
  size_t work_ = 0;
};

// Renders `body` with `variables` (the template's globals besides the builtins).
// Throws zc::Error "origin:line: ..." for runtime errors.
std::string render_template(const Body& body, const std::string& origin, const Dict& variables);

// ---- builtins (plain zc::Error, no location) ----

// a op b for + - * / // % ** ~ == != < <= > >= in "not in"; op v for - + not.
Value binary_operator(const std::string& op, const Value& a, const Value& b, Budget& budget);
Value unary_operator(const std::string& op, const Value& v);

// Python/Jinja iteration: list items, dict keys, string code points; Undefined is empty.
List iterate(const Value& v);
// obj.name and obj[key] as Jinja's environment.getattr/getitem: missing is Undefined.
Value get_attribute(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
// Throws the Undefined's own message ("'x' is undefined").
[[noreturn]] void fail_undefined(const Value& v);

// The filter `name` (input | name(args)); throws for an unknown filter.
Value apply_filter(const std::string& name, const Value& input, CallArgs& args, Budget& budget);
bool apply_test(const std::string& name, const Value& input, CallArgs& args);
// self.name(args) for a Python method of str, dict or list; nullopt when self's type has
// no such method (the caller then fails like Jinja: attribute undefined).
std::optional<Value> call_method(const Value& self, const std::string& name, CallArgs& args, Budget& budget);
// Registers a namespace or a list the template mutated, to break reference cycles
// through it when the render ends.
void track_mutable(const Value& v);
// range, namespace, dict, raise_exception, strftime_now.
Dict builtin_globals();

// Whether a filter or test of that name exists (Jinja2 checks at compile time).
bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);

// Python str methods that filters share: ASCII case mapping, Unicode whitespace.
std::string py_strip(std::string_view s, const Value& chars, bool left, bool right);
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_title(std::string_view s);       // str.title()
std::string py_capitalize(std::string_view s);  // str.capitalize()
std::string py_replace(const std::string& s, const std::string& old, const std::string& replacement,
                       int64_t count, Budget& budget);

// Argument access for builtins: positional index or keyword, else the default.
const Value* find_arg(const CallArgs& args, size_t index, const char* keyword);
Value arg_or(const CallArgs& args, size_t index, const char* keyword, Value fallback);

}  // namespace zc::tok::jinja
