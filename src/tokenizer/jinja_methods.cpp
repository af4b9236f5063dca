// Attribute and item access, iteration, the Python methods templates call on str, dict
// and list values, and the global functions (range, namespace, ...), as Jinja2's
// ImmutableSandboxedEnvironment provides them to chat templates.
#include <algorithm>
#include <ctime>

#include "core/error.h"
#include "tokenizer/jinja_eval.h"

namespace zc::tok::jinja {

const Value* find_arg(const CallArgs& args, size_t index, const char* keyword) {
  if (index < args.positional.size()) return &args.positional[index];
  for (const auto& [k, v] : args.keyword)
    if (k == keyword) return &v;
  return nullptr;
}

Value arg_or(const CallArgs& args, size_t index, const char* keyword, Value fallback) {
  const Value* v = find_arg(args, index, keyword);
  return v ? *v : std::move(fallback);
}

void fail_undefined(const Value& v) { fail("{}", v.undefined_hint()); }

List iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined:
      return {};
    case Value::Kind::List:
      return v.list();
    case Value::Kind::String: {
      List chars;
      for (std::string_view c : code_points(v.as_string())) chars.emplace_back(std::string(c));
      return chars;
    }
    case Value::Kind::Dict:
      if (!v.is_namespace()) {
        List keys;
        for (const auto& kv : v.dict().items) keys.emplace_back(kv.first);
        return keys;
      }
      [[fallthrough]];
    default:
      fail("'{}' object is not iterable", v.type_name());
  }
}

Value get_attribute(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_dict()) {
    if (const Value* v = obj.dict().find(name)) return *v;
  }
  return Value::undefined(fmt::format("'{} object' has no attribute '{}'", obj.type_name(), name));
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_dict() && key.is_string()) {
    if (const Value* v = obj.dict().find(key.as_string())) return *v;
  }
  if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t index = key.as_int();
    if (obj.is_list()) {
      const auto size = static_cast<int64_t>(obj.list().size());
      if (index < 0) index += size;
      if (index >= 0 && index < size) return obj.list()[static_cast<size_t>(index)];
    } else {
      const auto chars = code_points(obj.as_string());
      const auto size = static_cast<int64_t>(chars.size());
      if (index < 0) index += size;
      if (index >= 0 && index < size) return std::string(chars[static_cast<size_t>(index)]);
    }
  }
  return Value::undefined(fmt::format("'{} object' has no attribute '{}'", obj.type_name(), key.str()));
}

// ---- Python str helpers ----

namespace {

uint32_t decode(std::string_view c) {
  const auto b0 = static_cast<unsigned char>(c[0]);
  if (c.size() == 1) return b0;
  uint32_t cp = b0 & (0x7fu >> c.size());
  for (size_t i = 1; i < c.size(); ++i) cp = (cp << 6) | (static_cast<unsigned char>(c[i]) & 0x3fu);
  return cp;
}

// str.isspace() of Python: ASCII whitespace, the separators \x1c-\x1f, and Unicode spaces.
bool is_py_space(std::string_view c) {
  const uint32_t cp = decode(c);
  return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
         cp == 0x3000;
}

bool is_lower_ascii(char c) { return c >= 'a' && c <= 'z'; }
bool is_upper_ascii(char c) { return c >= 'A' && c <= 'Z'; }
char to_upper(char c) { return is_lower_ascii(c) ? static_cast<char>(c - 32) : c; }
char to_lower(char c) { return is_upper_ascii(c) ? static_cast<char>(c + 32) : c; }

std::string text_of(const Value& v, const char* what) {
  if (!v.is_string()) fail("{} must be a string, not {}", what, v.type_name());
  return v.as_string();
}

}  // namespace

std::string py_strip(std::string_view s, const Value& chars, bool left, bool right) {
  const auto cps = code_points(s);
  const bool custom = !chars.is_none() && !chars.is_undefined();
  const std::string char_set = custom ? text_of(chars, "strip() chars") : std::string();
  const std::vector<std::string_view> set = code_points(char_set);
  auto strippable = [&](std::string_view c) {
    return custom ? std::find(set.begin(), set.end(), c) != set.end() : is_py_space(c);
  };
  size_t begin = 0, end = cps.size();
  if (left)
    while (begin < end && strippable(cps[begin])) ++begin;
  if (right)
    while (end > begin && strippable(cps[end - 1])) --end;
  if (begin == end) return "";
  return std::string(cps[begin].data(), static_cast<size_t>(cps[end - 1].data() + cps[end - 1].size() - cps[begin].data()));
}

std::string py_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_upper(c);
  return out;
}

std::string py_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_lower(c);
  return out;
}

std::string py_title(std::string_view s) {
  std::string out(s);
  bool previous_cased = false;
  for (char& c : out) {
    const bool cased = is_lower_ascii(c) || is_upper_ascii(c);
    c = cased ? (previous_cased ? to_lower(c) : to_upper(c)) : c;
    previous_cased = cased;
  }
  return out;
}

std::string py_capitalize(std::string_view s) {
  std::string out = py_lower(s);
  if (!out.empty()) out[0] = to_upper(out[0]);
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& replacement, int64_t count,
                       Budget& budget) {
  std::string out;
  size_t pos = 0;
  int64_t done = 0;
  budget.charge(s.size());
  while (count < 0 || done < count) {
    // An empty `old` matches between every character (and at both ends), as in Python.
    const size_t at = old.empty() ? (pos <= s.size() ? pos : std::string::npos) : s.find(old, pos);
    if (at == std::string::npos) break;
    out.append(s, pos, at - pos);
    out += replacement;
    budget.charge_string(out.size());
    ++done;
    if (old.empty()) {
      if (at == s.size()) {
        pos = at + 1;
        break;
      }
      const size_t next = at + code_points(std::string_view(s).substr(at, 4)).front().size();
      out.append(s, at, next - at);
      pos = next;
    } else {
      pos = at + old.size();
    }
  }
  if (pos < s.size()) out.append(s, pos, std::string::npos);
  budget.charge_string(out.size());
  return out;
}

namespace {

List py_split(const std::string& s, const Value& sep, int64_t max_split) {
  List parts;
  if (sep.is_none() || sep.is_undefined()) {  // runs of whitespace; no empty parts
    const auto cps = code_points(s);
    size_t i = 0;
    while (true) {
      while (i < cps.size() && is_py_space(cps[i])) ++i;
      if (i == cps.size()) break;
      size_t j = i;
      if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) {
        j = cps.size();
        while (j > i && is_py_space(cps[j - 1])) --j;
      } else {
        while (j < cps.size() && !is_py_space(cps[j])) ++j;
      }
      const char* begin = cps[i].data();
      parts.emplace_back(std::string(begin, static_cast<size_t>(cps[j - 1].data() + cps[j - 1].size() - begin)));
      i = j;
    }
    return parts;
  }
  const std::string separator = text_of(sep, "split() separator");
  if (separator.empty()) fail("empty separator");
  size_t pos = 0;
  while (max_split < 0 || static_cast<int64_t>(parts.size()) < max_split) {
    const size_t at = s.find(separator, pos);
    if (at == std::string::npos) break;
    parts.emplace_back(s.substr(pos, at - pos));
    pos = at + separator.size();
  }
  parts.emplace_back(s.substr(pos));
  return parts;
}

bool matches_affix(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& a) {
    const std::string t = text_of(a, prefix ? "startswith() argument" : "endswith() argument");
    return t.size() <= s.size() && (prefix ? s.compare(0, t.size(), t) == 0 : s.compare(s.size() - t.size(), t.size(), t) == 0);
  };
  if (affix.is_list()) return std::any_of(affix.list().begin(), affix.list().end(), one);
  return one(affix);
}

// str.format with {} / {0} / {name} fields and {{ }} escapes; format specs are refused.
std::string py_format(const std::string& pattern, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if ((c == '{' || c == '}') && i + 1 < pattern.size() && pattern[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c == '}') fail("single '}}' encountered in format string");
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t close = pattern.find('}', i);
    if (close == std::string::npos) fail("single '{{' encountered in format string");
    const std::string field = pattern.substr(i + 1, close - i - 1);
    if (field.find_first_of(":!.[") != std::string::npos) fail("format specs in str.format() are not supported");
    const Value* v = nullptr;
    if (field.empty()) {
      v = find_arg(args, auto_index++, "");
    } else if (std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      v = find_arg(args, std::stoul(field), "");
    } else {
      for (const auto& [k, value] : args.keyword)
        if (k == field) v = &value;
    }
    if (!v) fail("str.format(): no argument for field '{{{}}}'", field);
    out += v->str();
    i = close;
  }
  return out;
}

std::optional<Value> string_method(const std::string& s, const std::string& name, CallArgs& args, Budget& budget) {
  budget.charge(s.size());
  const Value none = Value::none();
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return Value(py_strip(s, arg_or(args, 0, "chars", none), name != "rstrip", name != "lstrip"));
  if (name == "split") {
    const Value max_split = arg_or(args, 1, "maxsplit", Value(-1));
    return Value(py_split(s, arg_or(args, 0, "sep", none), max_split.is_int() ? max_split.as_int() : -1));
  }
  if (name == "startswith" || name == "endswith") {
    const Value* affix = find_arg(args, 0, "prefix");
    if (!affix) fail("{}() takes at least 1 argument", name);
    return Value(matches_affix(s, *affix, name == "startswith"));
  }
  if (name == "upper") return Value(py_upper(s));
  if (name == "lower") return Value(py_lower(s));
  if (name == "title") return Value(py_title(s));
  if (name == "capitalize") return Value(py_capitalize(s));
  if (name == "replace") {
    const Value count = arg_or(args, 2, "count", Value(-1));
    return Value(py_replace(s, text_of(arg_or(args, 0, "old", none), "replace() old"),
                            text_of(arg_or(args, 1, "new", none), "replace() new"),
                            count.is_int() ? count.as_int() : -1, budget));
  }
  if (name == "find" || name == "rfind" || name == "count" || name == "removeprefix" || name == "removesuffix") {
    const std::string needle = text_of(arg_or(args, 0, "sub", none), fmt::format("{}() argument", name).c_str());
    if (name == "removeprefix") return Value(s.compare(0, needle.size(), needle) == 0 ? s.substr(needle.size()) : s);
    if (name == "removesuffix")
      return Value(matches_affix(s, Value(needle), false) ? s.substr(0, s.size() - needle.size()) : s);
    if (name == "count") {
      if (needle.empty()) return Value(static_cast<int64_t>(code_point_count(s) + 1));
      int64_t n = 0;
      for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + needle.size())) ++n;
      return Value(n);
    }
    const size_t at = name == "find" ? s.find(needle) : s.rfind(needle);
    return Value(at == std::string::npos ? int64_t{-1} : static_cast<int64_t>(code_point_count(s.substr(0, at))));
  }
  if (name == "join") {
    const Value* items = find_arg(args, 0, "iterable");
    if (!items) fail("join() takes exactly one argument");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(*items)) {
      if (!first) out += s;
      first = false;
      out += text_of(item, "join() item");
      budget.charge_string(out.size());
    }
    return Value(std::move(out));
  }
  if (name == "format") return Value(py_format(s, args));
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" || name == "islower" ||
      name == "isupper") {
    auto all = [&](auto pred) { return !s.empty() && std::all_of(s.begin(), s.end(), pred); };
    if (name == "isdigit") return Value(all([](char c) { return c >= '0' && c <= '9'; }));
    if (name == "isalpha") return Value(all([](char c) { return is_lower_ascii(c) || is_upper_ascii(c); }));
    if (name == "isalnum")
      return Value(all([](char c) { return is_lower_ascii(c) || is_upper_ascii(c) || (c >= '0' && c <= '9'); }));
    if (name == "isspace") {
      const auto cps = code_points(s);
      return Value(!s.empty() && std::all_of(cps.begin(), cps.end(), is_py_space));
    }
    const bool any_cased = std::any_of(s.begin(), s.end(), [](char c) { return is_lower_ascii(c) || is_upper_ascii(c); });
    if (name == "islower") return Value(any_cased && std::none_of(s.begin(), s.end(), is_upper_ascii));
    return Value(any_cased && std::none_of(s.begin(), s.end(), is_lower_ascii));
  }
  return std::nullopt;
}

}  // namespace

std::optional<Value> call_method(const Value& self, const std::string& name, CallArgs& args, Budget& budget) {
  if (self.is_string()) return string_method(self.as_string(), name, args, budget);
  if (self.is_dict() && !self.is_namespace()) {
    const Dict& d = self.dict();
    budget.charge(d.items.size());
    if (name == "items") {
      List pairs;
      for (const auto& [k, v] : d.items) pairs.emplace_back(List{Value(k), v}, true);
      return Value(std::move(pairs));
    }
    if (name == "keys" || name == "values") {
      List out;
      for (const auto& [k, v] : d.items) out.push_back(name == "keys" ? Value(k) : v);
      return Value(std::move(out));
    }
    if (name == "get") {
      const Value* key = find_arg(args, 0, "key");
      if (!key) fail("get() takes at least 1 argument");
      const Value* found = key->is_string() ? d.find(key->as_string()) : nullptr;
      return found ? *found : arg_or(args, 1, "default", Value::none());
    }
    return std::nullopt;
  }
  if (self.is_list()) {
    if (name == "append" && !self.is_tuple()) {
      // Jinja2's immutable sandbox refuses list.append; some templates call it on a
      // namespace's list anyway, so it is allowed here (a deliberate extension).
      if (args.positional.size() != 1) fail("append() takes exactly one argument");
      budget.charge(1);
      self.list().push_back(args.positional[0]);
      track_mutable(self);
      return Value::none();
    }
    if (name == "index" || name == "count") {
      const Value* needle = find_arg(args, 0, "value");
      if (!needle) fail("{}() takes exactly one argument", name);
      budget.charge(self.list().size());
      int64_t n = 0;
      for (size_t i = 0; i < self.list().size(); ++i) {
        if (!equals(self.list()[i], *needle)) continue;
        if (name == "index") return Value(static_cast<int64_t>(i));
        ++n;
      }
      if (name == "index") fail("{} is not in list", needle->repr());
      return Value(n);
    }
  }
  return std::nullopt;
}

namespace {

__extension__ typedef __int128 Wide;  // range bounds may be extreme; counted without overflow

Value builtin_range(CallArgs& args, int) {
  if (!args.keyword.empty() || args.positional.empty() || args.positional.size() > 3)
    fail("range() takes 1 to 3 integer arguments");
  for (const Value& a : args.positional)
    if (!a.is_int() && !a.is_bool()) fail("range() arguments must be integers, not {}", a.type_name());
  const bool single = args.positional.size() == 1;
  const int64_t start = single ? 0 : args.positional[0].as_int();
  const int64_t stop = single ? args.positional[0].as_int() : args.positional[1].as_int();
  const int64_t step = args.positional.size() == 3 ? args.positional[2].as_int() : 1;
  if (step == 0) fail("range() arg 3 must not be zero");
  // Count first, to refuse big ranges before making them.
  const Wide span = step > 0 ? static_cast<Wide>(stop) - start : static_cast<Wide>(start) - stop;
  const Wide abs_step = step > 0 ? step : -static_cast<Wide>(step);
  const Wide count = span <= 0 ? 0 : (span + abs_step - 1) / abs_step;
  if (count > kMaxRange)
    fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).", kMaxRange);
  List out;
  for (Wide i = 0; i < count; ++i) out.emplace_back(static_cast<int64_t>(start + i * step));
  return Value(std::move(out));
}

// namespace(...) and dict(...): keyword arguments, after an optional mapping.
Dict dict_from_args(const CallArgs& args, const char* who) {
  Dict d;
  if (args.positional.size() > 1) fail("{}() takes at most one positional argument", who);
  if (!args.positional.empty()) {
    const Value& init = args.positional[0];
    if (init.is_dict() && !init.is_namespace()) {
      d = init.dict();
    } else if (init.is_list()) {
      for (const Value& pair : init.list()) {
        if (!pair.is_list() || pair.list().size() != 2 || !pair.list()[0].is_string())
          fail("{}(): each item must be a (string key, value) pair", who);
        d.set(pair.list()[0].as_string(), pair.list()[1]);
      }
    } else {
      fail("{}() argument must be a mapping, not {}", who, init.type_name());
    }
  }
  for (const auto& [k, v] : args.keyword) d.set(k, v);
  return d;
}

Value builtin_strftime_now(CallArgs& args, int) {
  const Value* format = find_arg(args, 0, "format");
  if (!format || !format->is_string()) fail("strftime_now() takes a format string");
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  if (format->as_string().empty()) return Value("");
  for (size_t size = 256; size <= 65536; size *= 4) {
    std::string buffer(size, '\0');
    const size_t n = std::strftime(buffer.data(), buffer.size(), format->as_string().c_str(), &local);
    if (n > 0) return Value(buffer.substr(0, n));
  }
  return Value("");
}

}  // namespace

Dict builtin_globals() {
  Dict g;
  g.set("range", Value(Function(builtin_range), "range"));
  g.set("namespace", Value(
                         [](CallArgs& args, int) {
                           Value ns(dict_from_args(args, "namespace"), true);
                           track_mutable(ns);
                           return ns;
                         },
                         "namespace"));
  g.set("dict", Value([](CallArgs& args, int) { return Value(dict_from_args(args, "dict")); }, "dict"));
  g.set("raise_exception", Value(
                               [](CallArgs& args, int) -> Value {
                                 const Value* message = find_arg(args, 0, "message");
                                 fail("{}", message ? message->str() : std::string("raise_exception() called"));
                               },
                               "raise_exception"));
  g.set("strftime_now", Value(Function(builtin_strftime_now), "strftime_now"));
  return g;
}

}  // namespace zc::tok::jinja
