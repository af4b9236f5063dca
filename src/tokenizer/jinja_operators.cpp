// Python's operators on template values: arithmetic with 64-bit ints that refuse to
// overflow, string/list concatenation and repetition within the size limits,
// comparisons and membership.
#include <cmath>

#include "core/error.h"
#include "tokenizer/jinja_eval.h"

namespace zc::tok::jinja {

void Budget::charge_string(size_t bytes) {
  if (bytes > kMaxOutputBytes) fail("a string of {} bytes exceeds the {} MiB limit", bytes, kMaxOutputBytes >> 20);
  charge(bytes);
}

void Budget::fail_work() {
  fail("template does too much work (over {} bytes or items made or scanned); endless loop?", kMaxWork);
}

namespace {

// Python ints do not overflow; ours are 64-bit and say so instead of wrapping.
void check_overflow(bool overflowed) {
  if (overflowed) fail("integer overflow (integers are 64-bit)");
}

Value arithmetic(const std::string& op, const Value& a, const Value& b, Budget& budget) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) {
    if (op == "/" || a.is_float() || b.is_float()) {
      const double x = a.as_double(), y = b.as_double();
      if (op == "+") return x + y;
      if (op == "-") return x - y;
      if (op == "*") return x * y;
      if (op == "**") return std::pow(x, y);
      if (y == 0) fail("division by zero");
      if (op == "/") return x / y;
      if (op == "//") return std::floor(x / y);
      double r = std::fmod(x, y);  // Python: the remainder has the divisor's sign
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      return r;
    }
    const int64_t x = a.as_int(), y = b.as_int();
    int64_t r = 0;
    if (op == "+") {
      check_overflow(__builtin_add_overflow(x, y, &r));
      return r;
    }
    if (op == "-") {
      check_overflow(__builtin_sub_overflow(x, y, &r));
      return r;
    }
    if (op == "*") {
      check_overflow(__builtin_mul_overflow(x, y, &r));
      return r;
    }
    if (op == "**") {
      if (y < 0) return std::pow(static_cast<double>(x), static_cast<double>(y));
      int64_t result = 1, base = x;
      for (int64_t e = y; e > 0; e >>= 1) {
        if (e & 1) check_overflow(__builtin_mul_overflow(result, base, &result));
        if (e > 1) check_overflow(__builtin_mul_overflow(base, base, &base));
      }
      return result;
    }
    if (y == 0) fail("integer division or modulo by zero");
    if (y == -1) {  // x / -1 overflows for the smallest int
      if (op == "%") return int64_t{0};
      check_overflow(__builtin_sub_overflow(int64_t{0}, x, &r));
      return r;
    }
    if (op == "//") return x / y - ((x % y != 0) && ((x < 0) != (y < 0)) ? 1 : 0);
    r = x % y;
    return r != 0 && ((r < 0) != (y < 0)) ? r + y : r;
  }
  if (op == "+" && a.is_string() && b.is_string()) {
    budget.charge_string(a.as_string().size() + b.as_string().size());
    return a.as_string() + b.as_string();
  }
  if (op == "+" && a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    budget.charge(a.list().size() + b.list().size());
    List joined = a.list();
    joined.insert(joined.end(), b.list().begin(), b.list().end());
    return Value(std::move(joined), a.is_tuple());
  }
  if (op == "*" && (a.is_string() || a.is_list() || b.is_string() || b.is_list())) {
    const Value& seq = a.is_string() || a.is_list() ? a : b;
    const Value& count = &seq == &a ? b : a;
    if (count.is_int() || count.is_bool()) {
      const size_t n = count.as_int() > 0 ? static_cast<size_t>(count.as_int()) : 0;
      if (seq.is_string()) {
        const size_t len = seq.as_string().size();
        if (len && n > kMaxOutputBytes / len) budget.charge_string(kMaxOutputBytes + 1);
        budget.charge_string(len * n);
        std::string out;
        out.reserve(len * n);
        for (size_t i = 0; i < n; ++i) out += seq.as_string();
        return out;
      }
      const size_t len = seq.list().size();
      if (len && n > kMaxWork / len) budget.charge(kMaxWork + 1);
      budget.charge(len * n);
      List out;
      for (size_t i = 0; i < n; ++i) out.insert(out.end(), seq.list().begin(), seq.list().end());
      return Value(std::move(out), seq.is_tuple());
    }
  }
  if (op == "%" && a.is_string()) fail("printf-style string formatting ('...' % x) is not supported");
  fail("unsupported operand type(s) for {}: '{}' and '{}'", op, a.type_name(), b.type_name());
}

bool contains(const Value& container, const Value& needle) {
  switch (container.kind()) {
    case Value::Kind::Undefined:
      return false;  // Jinja's Undefined iterates as empty
    case Value::Kind::String:
      if (!needle.is_string())
        fail("'in <string>' requires string as left operand, not {}", needle.type_name());
      return container.as_string().find(needle.as_string()) != std::string::npos;
    case Value::Kind::List:
      for (const Value& item : container.list())
        if (equals(item, needle)) return true;
      return false;
    case Value::Kind::Dict:
      return needle.is_string() && container.dict().find(needle.as_string()) != nullptr;
    default:
      fail("argument of type '{}' is not iterable", container.type_name());
  }
}

}  // namespace

Value binary_operator(const std::string& op, const Value& a, const Value& b, Budget& budget) {
  if (op == "==") return equals(a, b);
  if (op == "!=") return !equals(a, b);
  if (op == "in") return contains(b, a);
  if (op == "not in") return !contains(b, a);
  if (op == "~") {
    std::string left = a.str(), right = b.str();
    budget.charge_string(left.size() + right.size());
    return left + right;
  }
  if (op == "<" || op == "<=" || op == ">" || op == ">=") {
    if (a.is_undefined()) fail_undefined(a);
    if (b.is_undefined()) fail_undefined(b);
    const int c = compare(a, b);
    if (op == "<") return c < 0;
    if (op == "<=") return c <= 0;
    if (op == ">") return c > 0;
    return c >= 0;
  }
  return arithmetic(op, a, b, budget);
}

Value unary_operator(const std::string& op, const Value& v) {
  if (op == "not") return !v.truthy();
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_float()) return op == "-" ? -v.as_double() : v.as_double();
  if (v.is_int() || v.is_bool()) {
    if (op == "+") return v.as_int();
    int64_t r = 0;
    check_overflow(__builtin_sub_overflow(int64_t{0}, v.as_int(), &r));
    return r;
  }
  fail("bad operand type for unary {}: '{}'", op, v.type_name());
}

}  // namespace zc::tok::jinja
