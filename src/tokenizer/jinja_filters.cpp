// Jinja2's filters and tests, as chat templates use them (plus transformers' tojson).
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "tokenizer/jinja_eval.h"

namespace zc::tok::jinja {

namespace {

constexpr std::string_view kFilters[] = {
    "abs",     "attr",   "capitalize", "count",   "d",         "default", "dictsort", "e",       "escape",
    "first",   "float",  "forceescape", "indent", "int",       "items",   "join",     "last",    "length",
    "list",    "lower",  "map",        "max",     "min",       "reject",  "rejectattr", "replace", "reverse",
    "round",   "safe",   "select",     "selectattr", "sort",   "string",  "sum",      "title",   "tojson",
    "trim",    "unique", "upper",
};

constexpr std::string_view kTests[] = {
    "boolean", "callable", "defined", "divisibleby", "eq",  "equalto", "escaped", "even",    "false",   "filter",
    "float",   "ge",       "gt",      "greaterthan", "in",  "integer", "iterable", "le",     "lessthan", "lower",
    "lt",      "mapping",  "ne",      "none",        "number", "odd",  "sameas",  "sequence", "string", "test",
    "true",    "undefined", "upper",  "==",          "!=",  "<",       "<=",      ">",       ">=",
};

// "a.b.0": attribute path of map/selectattr/sort; integer parts index lists.
Value get_path(const Value& v, const std::string& path) {
  Value current = v;
  size_t pos = 0;
  while (true) {
    const size_t dot = path.find('.', pos);
    const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    current = numeric ? get_item(current, Value(static_cast<int64_t>(std::stoll(part)))) : get_item(current, Value(part));
    if (dot == std::string::npos) return current;
    pos = dot + 1;
  }
}

std::string attribute_arg(const CallArgs& args, size_t index) {
  const Value* a = find_arg(args, index, "attribute");
  if (!a || a->is_none()) return "";
  if (!a->is_string() && !a->is_int()) fail("attribute must be a string");
  return a->str();
}

// Sort/unique key: strings compare lowercased unless case_sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  return v.is_string() && !case_sensitive ? Value(py_lower(v.as_string())) : v;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

int64_t int_arg(const Value& v, const char* what) {
  if (!v.is_int() && !v.is_bool()) fail("{} must be an integer, not {}", what, v.type_name());
  return v.as_int();
}

Value to_int(const Value& v, const Value& fallback) {
  if (v.is_int() || v.is_bool()) return v.as_int();
  if (v.is_float()) {
    const double d = v.as_double();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return static_cast<int64_t>(d);
  }
  if (!v.is_string()) return fallback;
  const std::string s = py_strip(v.as_string(), Value::none(), true, true);
  char* end = nullptr;
  errno = 0;
  const long long i = std::strtoll(s.c_str(), &end, 10);
  if (!s.empty() && end == s.c_str() + s.size() && errno == 0) return static_cast<int64_t>(i);
  const double d = std::strtod(s.c_str(), &end);  // Jinja falls back to int(float(s))
  if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18)
    return static_cast<int64_t>(d);
  return fallback;
}

List select(const Value& input, CallArgs& args, bool by_attribute, bool keep_matching) {
  const std::string attribute = by_attribute ? attribute_arg(args, 0) : "";
  const size_t test_index = by_attribute ? 1 : 0;
  CallArgs test_args;
  std::string test;
  if (test_index < args.positional.size()) {
    test = args.positional[test_index].str();
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(test_index) + 1,
                                args.positional.end());
    if (!is_known_test(test)) fail("unknown test '{}'", test);
  }
  List out;
  for (const Value& item : iterate(input)) {
    const Value subject = by_attribute ? get_path(item, attribute) : item;
    const bool passed = test.empty() ? subject.truthy() : apply_test(test, subject, test_args);
    if (passed == keep_matching) out.push_back(item);
  }
  return out;
}

Value round_value(const Value& v, CallArgs& args) {
  const int64_t precision = int_arg(arg_or(args, 0, "precision", Value(0)), "round() precision");
  const std::string method = arg_or(args, 1, "method", Value("common")).str();
  if (method != "common" && method != "ceil" && method != "floor")
    fail("method must be 'common', 'ceil' or 'floor'");
  if (!v.is_number()) fail("round() needs a number, not {}", v.type_name());
  if (method == "common" && !v.is_float()) return v.as_int();  // round(int, n) stays an int
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.as_double() * scale;
  // Python's round() goes to the even neighbour on ties, which nearbyint does by default.
  const double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
  return r / scale;
}

std::string indent(const std::string& s, CallArgs& args, Budget& budget) {
  const Value width = arg_or(args, 0, "width", Value(4));
  const std::string pad = width.is_string() ? width.as_string() : std::string(static_cast<size_t>(std::clamp<int64_t>(int_arg(width, "indent width"), 0, 1024)), ' ');
  const bool first = arg_or(args, 1, "first", Value(false)).truthy();
  const bool blank = arg_or(args, 2, "blank", Value(false)).truthy();
  std::vector<std::string> lines;  // str.splitlines() of s + "\n"
  std::string text = s + "\n";
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find_first_of("\r\n", pos);
    lines.push_back(text.substr(pos, end - pos));
    pos = end + (text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n' ? 2 : 1);
  }
  std::string out = lines.empty() ? "" : lines[0];
  for (size_t i = 1; i < lines.size(); ++i) {
    out += "\n";
    if (blank || !lines[i].empty()) out += pad;
    out += lines[i];
    budget.charge_string(out.size());
  }
  return first ? pad + out : out;
}

}  // namespace

bool is_known_filter(std::string_view name) {
  return std::find(std::begin(kFilters), std::end(kFilters), name) != std::end(kFilters);
}

bool is_known_test(std::string_view name) {
  return std::find(std::begin(kTests), std::end(kTests), name) != std::end(kTests);
}

Value apply_filter(const std::string& name, const Value& input, CallArgs& args, Budget& budget) {
  if (input.is_string()) budget.charge(input.as_string().size());
  if (input.is_list()) budget.charge(input.list().size());
  const Value none = Value::none();
  if (name == "default" || name == "d") {
    const bool use_default = input.is_undefined() || (arg_or(args, 1, "boolean", Value(false)).truthy() && !input.truthy());
    return use_default ? arg_or(args, 0, "default_value", Value("")) : input;
  }
  if (name == "length" || name == "count") {
    if (input.is_string()) return static_cast<int64_t>(code_point_count(input.as_string()));
    if (input.is_list()) return static_cast<int64_t>(input.list().size());
    if (input.is_dict() && !input.is_namespace()) return static_cast<int64_t>(input.dict().items.size());
    if (input.is_undefined()) return int64_t{0};
    fail("object of type '{}' has no len()", input.type_name());
  }
  if (name == "tojson") {
    JsonStyle style;
    const Value indent_arg = arg_or(args, 1, "indent", none);
    if (!indent_arg.is_none()) {
      style.indent = static_cast<int>(std::clamp<int64_t>(int_arg(indent_arg, "tojson indent"), 0, 64));
      style.item_separator.resize(1);  // "," (GCC 12 misreports assigning a literal here, -Wrestrict)
    }
    style.ensure_ascii = arg_or(args, 0, "ensure_ascii", Value(false)).truthy();
    const Value separators = arg_or(args, 2, "separators", none);
    if (separators.is_list() && separators.list().size() == 2) {
      style.item_separator = separators.list()[0].str();
      style.key_separator = separators.list()[1].str();
    }
    style.sort_keys = arg_or(args, 3, "sort_keys", Value(false)).truthy();
    std::string json = dump_json(input, style);
    budget.charge_string(json.size());
    return json;
  }
  if (name == "trim") return py_strip(input.str(), arg_or(args, 0, "chars", none), true, true);
  if (name == "upper") return py_upper(input.str());
  if (name == "lower") return py_lower(input.str());
  if (name == "capitalize") return py_capitalize(input.str());
  if (name == "title") {
    // Jinja's title() (not str.title()): a word starts after whitespace, '-', or an opening bracket.
    std::string out = input.str();
    bool word_start = true;
    for (char& c : out) {
      const bool separator = std::string_view(" \t\n\r\v\f-([{<").find(c) != std::string_view::npos;
      if (!separator) c = word_start ? py_upper(std::string(1, c))[0] : py_lower(std::string(1, c))[0];
      word_start = separator;
    }
    return out;
  }
  if (name == "string") return input.str();
  if (name == "safe") return input.is_string() ? input : Value(input.str());
  if (name == "escape" || name == "e" || name == "forceescape") return html_escape(input.str());
  if (name == "replace") {
    const Value count = arg_or(args, 2, "count", none);
    return py_replace(input.str(), arg_or(args, 0, "old", Value("")).str(), arg_or(args, 1, "new", Value("")).str(),
                      count.is_none() ? -1 : int_arg(count, "replace() count"), budget);
  }
  if (name == "indent") return indent(input.str(), args, budget);
  if (name == "int") return to_int(input, arg_or(args, 0, "default", Value(0)));
  if (name == "float") {
    if (input.is_number()) return input.as_double();
    if (input.is_string()) {
      const std::string s = py_strip(input.as_string(), none, true, true);
      char* end = nullptr;
      const double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end == s.c_str() + s.size()) return d;
    }
    return arg_or(args, 0, "default", Value(0.0));
  }
  if (name == "abs") {
    if (input.is_float()) return std::fabs(input.as_double());
    if (input.is_int() || input.is_bool()) {
      if (input.as_int() == std::numeric_limits<int64_t>::min()) fail("integer overflow (integers are 64-bit)");
      return static_cast<int64_t>(std::llabs(input.as_int()));
    }
    fail("bad operand type for abs(): '{}'", input.type_name());
  }
  if (name == "round") return round_value(input, args);
  if (name == "attr") return get_attribute(input, arg_or(args, 0, "name", Value("")).str());
  if (name == "items") {
    if (input.is_undefined()) return Value(List{});
    if (!input.is_dict() || input.is_namespace()) fail("Can only get item pairs from a mapping.");
    List pairs;
    for (const auto& [k, v] : input.dict().items) pairs.emplace_back(List{Value(k), v}, true);
    return Value(std::move(pairs));
  }
  if (name == "dictsort") {
    if (!input.is_dict() || input.is_namespace()) fail("dictsort needs a mapping, not {}", input.type_name());
    const bool case_sensitive = arg_or(args, 0, "case_sensitive", Value(false)).truthy();
    const std::string by = arg_or(args, 1, "by", Value("key")).str();
    if (by != "key" && by != "value") fail("You can only sort by either 'key' or 'value'");
    List pairs;
    for (const auto& [k, v] : input.dict().items) pairs.emplace_back(List{Value(k), v}, true);
    const size_t at = by == "key" ? 0 : 1;
    std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
      return compare(sort_key(x.list()[at], case_sensitive), sort_key(y.list()[at], case_sensitive)) < 0;
    });
    if (arg_or(args, 2, "reverse", Value(false)).truthy()) std::reverse(pairs.begin(), pairs.end());
    return Value(std::move(pairs));
  }
  if (name == "first" || name == "last") {
    List items = iterate(input);
    if (items.empty()) return Value::undefined(fmt::format("No {} item, sequence was empty.", name));
    return name == "first" ? items.front() : items.back();
  }
  if (name == "reverse") {
    if (input.is_string()) {
      auto cps = code_points(input.as_string());
      std::string out;
      for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
      return out;
    }
    List items = iterate(input);
    std::reverse(items.begin(), items.end());
    return Value(std::move(items));
  }
  if (name == "list") return Value(iterate(input));
  if (name == "join") {
    const std::string separator = arg_or(args, 0, "d", Value("")).str();
    const std::string attribute = attribute_arg(args, 1);
    std::string out;
    bool first = true;
    for (const Value& item : iterate(input)) {
      if (!first) out += separator;
      first = false;
      out += (attribute.empty() ? item : get_path(item, attribute)).str();
      budget.charge_string(out.size());
    }
    return out;
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr")
    return Value(select(input, args, name.ends_with("attr"), name.starts_with("select")));
  if (name == "map") {
    List out;
    const std::string attribute = attribute_arg(args, 99);
    if (!attribute.empty()) {
      const Value fallback = arg_or(args, 99, "default", Value());
      for (const Value& item : iterate(input)) {
        Value v = get_path(item, attribute);
        out.push_back(v.is_undefined() && !fallback.is_undefined() ? fallback : v);
      }
      return Value(std::move(out));
    }
    if (args.positional.empty()) fail("map() needs a filter name or attribute=");
    const std::string filter = args.positional[0].str();
    if (!is_known_filter(filter)) fail("unknown filter '{}'", filter);
    CallArgs filter_args{List(args.positional.begin() + 1, args.positional.end()), args.keyword};
    for (const Value& item : iterate(input)) out.push_back(apply_filter(filter, item, filter_args, budget));
    return Value(std::move(out));
  }
  if (name == "unique" || name == "sort" || name == "min" || name == "max") {
    const bool is_sort = name == "sort";
    const bool case_sensitive = arg_or(args, is_sort ? 1 : 0, "case_sensitive", Value(false)).truthy();
    const std::string attribute = attribute_arg(args, is_sort ? 2 : 1);
    std::vector<std::string> paths;  // sort(attribute="a,b") sorts by a, then b
    for (size_t pos = 0; !attribute.empty() && pos <= attribute.size();) {
      const size_t comma = std::min(attribute.find(',', pos), attribute.size());
      paths.push_back(attribute.substr(pos, comma - pos));
      pos = comma + 1;
    }
    auto key = [&](const Value& item) {
      if (paths.empty()) return sort_key(item, case_sensitive);
      List parts;
      for (const std::string& p : paths) parts.push_back(sort_key(get_path(item, p), case_sensitive));
      return parts.size() == 1 ? parts[0] : Value(std::move(parts));
    };
    List items = iterate(input);
    if (name == "unique") {
      List out, seen;
      for (const Value& item : items) {
        const Value k = key(item);
        if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, k); })) continue;
        seen.push_back(k);
        out.push_back(item);
      }
      return Value(std::move(out));
    }
    if (!is_sort) {
      if (items.empty()) return Value::undefined(fmt::format("No aggregated item, sequence was empty."));
      auto best = items.begin();
      for (auto it = items.begin() + 1; it != items.end(); ++it) {
        const int c = compare(key(*it), key(*best));
        if (name == "min" ? c < 0 : c > 0) best = it;
      }
      return *best;
    }
    const bool reverse = arg_or(args, 0, "reverse", Value(false)).truthy();
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      return reverse ? compare(key(y), key(x)) < 0 : compare(key(x), key(y)) < 0;
    });
    return Value(std::move(items));
  }
  if (name == "sum") {
    const std::string attribute = attribute_arg(args, 0);
    Value total = arg_or(args, 1, "start", Value(0));
    for (const Value& item : iterate(input)) {
      const Value v = attribute.empty() ? item : get_path(item, attribute);
      if (!v.is_number() || !total.is_number()) fail("sum() needs numbers, not {}", v.type_name());
      if (v.is_float() || total.is_float()) {
        total = total.as_double() + v.as_double();
      } else {
        int64_t r = 0;
        if (__builtin_add_overflow(total.as_int(), v.as_int(), &r)) fail("integer overflow (integers are 64-bit)");
        total = r;
      }
    }
    return total;
  }
  fail("unknown filter '{}'", name);
}

bool apply_test(const std::string& name, const Value& input, CallArgs& args) {
  auto operand = [&]() -> const Value& {
    const Value* v = find_arg(args, 0, "other");
    if (!v) fail("test '{}' needs an argument", name);
    return *v;
  };
  if (name == "defined") return !input.is_undefined();
  if (name == "undefined") return input.is_undefined();
  if (name == "none") return input.is_none();
  if (name == "string") return input.is_string();
  if (name == "number") return input.is_number();
  if (name == "integer") return input.is_int();
  if (name == "float") return input.is_float();
  if (name == "boolean") return input.is_bool();
  if (name == "true") return input.is_bool() && input.as_bool();
  if (name == "false") return input.is_bool() && !input.as_bool();
  if (name == "mapping") return input.is_dict() && !input.is_namespace();
  if (name == "iterable" || name == "sequence")
    return input.is_undefined() || input.is_string() || input.is_list() || (input.is_dict() && !input.is_namespace());
  if (name == "callable") return input.is_function();
  if (name == "escaped") return false;
  if (name == "lower" || name == "upper") {
    if (!input.is_string()) return false;
    const std::string& s = input.as_string();
    const bool any_cased = std::any_of(s.begin(), s.end(), [](char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; });
    return any_cased && (name == "lower" ? py_lower(s) == s : py_upper(s) == s);
  }
  if (name == "filter") return is_known_filter(input.str());
  if (name == "test") return is_known_test(input.str());
  if (name == "even" || name == "odd" || name == "divisibleby") {
    if (input.is_undefined()) fail_undefined(input);
    if (!input.is_number()) fail("test '{}' needs a number, not {}", name, input.type_name());
    const Value divisor = name == "divisibleby" ? operand() : Value(2);
    if (!divisor.is_number()) fail("divisibleby needs a number");
    if (divisor.as_double() == 0) fail("integer division or modulo by zero");
    const double r = input.is_float() || divisor.is_float() ? std::fmod(input.as_double(), divisor.as_double())
                                                             : static_cast<double>(input.as_int() % (divisor.as_int() == -1 ? 1 : divisor.as_int()));
    return name == "odd" ? r != 0 : r == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return equals(input, operand());
  if (name == "ne" || name == "!=") return !equals(input, operand());
  if (name == "sameas") {
    const Value& other = operand();
    if (input.kind() != other.kind()) return false;
    if (input.is_list() || input.is_dict() || input.is_function()) return input.identity() == other.identity();
    return equals(input, other);
  }
  if (name == "in") {
    const Value& container = operand();
    if (container.is_string()) return input.is_string() && container.as_string().find(input.as_string()) != std::string::npos;
    if (container.is_dict()) return input.is_string() && container.dict().find(input.as_string());
    const List items = iterate(container);
    return std::any_of(items.begin(), items.end(), [&](const Value& v) { return equals(v, input); });
  }
  if (input.is_undefined()) fail_undefined(input);
  const Value& other = operand();
  if (other.is_undefined()) fail_undefined(other);
  const int c = compare(input, other);
  if (name == "lt" || name == "<" || name == "lessthan") return c < 0;
  if (name == "le" || name == "<=") return c <= 0;
  if (name == "gt" || name == ">" || name == "greaterthan") return c > 0;
  if (name == "ge" || name == ">=") return c >= 0;
  fail("unknown test '{}'", name);
}

}  // namespace zc::tok::jinja
