#include "tokenizer/jinja_eval.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "core/error.h"

namespace zc::tok::jinja {

namespace {

// An error that already says origin:line; the plain zc::Errors of the builtins get
// the line of the innermost expression or statement they came from.
class LocatedError : public Error {
 public:
  using Error::Error;
};

enum class Flow { Normal, Break, Continue };

// Variables of one scope (the template, a loop iteration, a macro call); lookups walk
// to the parent. Shared, because a macro keeps the scope it was defined in.
struct Scope {
  std::vector<std::pair<std::string, Value>> vars;
  std::shared_ptr<Scope> parent;

  const Value* find(std::string_view name) const {
    for (const Scope* s = this; s; s = s->parent.get())
      for (const auto& [k, v] : s->vars)
        if (k == name) return &v;
    return nullptr;
  }
  void set(const std::string& name, Value value) {
    for (auto& [k, v] : vars) {
      if (k == name) {
        v = std::move(value);
        return;
      }
    }
    vars.emplace_back(name, std::move(value));
  }
};

// Nesting of evaluation (expressions, statements, macro calls) one render may reach:
// bounded so that recursion through macros cannot overflow the stack.
constexpr int kMaxEvalDepth = 600;

// Namespaces and lists the template may mutate can be made to contain themselves
// (set ns.me = ns), a reference cycle that would leak; they are emptied after the
// render, which frees them. A render runs on one thread, so the list is per thread.
thread_local std::vector<Value>* tracked_mutables = nullptr;

struct MutableTracker {
  MutableTracker() : saved(tracked_mutables) { tracked_mutables = &values; }
  ~MutableTracker() {
    tracked_mutables = saved;
    for (Value& v : values) {
      if (v.is_dict()) v.dict().items.clear();
      if (v.is_list()) v.list().clear();
    }
  }
  std::vector<Value> values;
  std::vector<Value>* saved;
};

class Renderer {
 public:
  Renderer(const std::string& origin, const Dict& variables) : origin_(origin), scope_(std::make_shared<Scope>()) {
    for (auto& [name, value] : builtin_globals().items) scope_->set(name, std::move(value));
    for (const auto& [name, value] : variables.items) scope_->set(name, value);
    root_ = scope_;
  }

  std::string run(const Body& body) {
    std::string out;
    out_ = &out;
    MutableTracker tracker;
    exec(body);
    return out;
  }

 private:
  [[noreturn]] void error(int line, const std::string& what) const {
    throw LocatedError(fmt::format("{}:{}: {}", origin_, line, what));
  }

  struct DepthGuard {
    DepthGuard(Renderer& r, int line) : renderer(r) {
      if (++renderer.depth_ > kMaxEvalDepth)
        renderer.error(line, fmt::format("template evaluation nested deeper than {} levels (endless recursion?)",
                                         kMaxEvalDepth));
    }
    ~DepthGuard() { --renderer.depth_; }
    Renderer& renderer;
  };

  // Swaps in a scope or output buffer for a block and restores it on the way out.
  template <typename T>
  struct Swap {
    Swap(T& slot, T value) : slot_(slot), saved_(std::move(slot)) { slot_ = std::move(value); }
    ~Swap() { slot_ = std::move(saved_); }
    T& slot_;
    T saved_;
  };

  void emit(std::string_view text) {
    budget_.charge(text.size());
    out_->append(text);
    if (out_->size() > kMaxOutputBytes) fail("output exceeds {} MiB", kMaxOutputBytes >> 20);
  }

  Flow exec(const Body& body) {
    for (const StmtPtr& stmt : body) {
      const Flow flow = exec_located(*stmt);
      if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
  }

  Flow exec_located(const Stmt& s) {
    DepthGuard guard(*this, s.line);
    try {
      return exec_stmt(s);
    } catch (const LocatedError&) {
      throw;
    } catch (const Error& e) {
      error(s.line, e.what());
    }
  }

  Flow exec_stmt(const Stmt& s) {
    switch (s.kind) {
      case Stmt::Kind::Text:
        emit(s.text);
        return Flow::Normal;
      case Stmt::Kind::Print: {
        const Value v = eval(*s.expr);
        emit(v.is_string() ? v.as_string() : v.str());
        return Flow::Normal;
      }
      case Stmt::Kind::If:
        for (size_t i = 0; i < s.conditions.size(); ++i)
          if (eval(*s.conditions[i]).truthy()) return exec(s.bodies[i]);
        return exec(s.else_body);
      case Stmt::Kind::For:
        return exec_for(s);
      case Stmt::Kind::Set:
        if (!s.attribute.empty()) {
          const Value* target = scope_->find(s.targets[0]);
          if (!target || !target->is_namespace())
            fail("cannot assign attribute on non-namespace object '{}'", s.targets[0]);
          target->dict().set(s.attribute, eval(*s.expr));
        } else {
          assign(s, eval(*s.expr), *scope_);
        }
        return Flow::Normal;
      case Stmt::Kind::SetBlock: {
        Value block = capture(s.body);
        if (s.expr) block = eval_with_block_value(*s.expr, std::move(block));
        assign(s, std::move(block), *scope_);
        return Flow::Normal;
      }
      case Stmt::Kind::FilterBlock:
        emit(eval_with_block_value(*s.expr, capture(s.body)).str());
        return Flow::Normal;
      case Stmt::Kind::Macro:
        define_macro(s);
        return Flow::Normal;
      case Stmt::Kind::Scope:
        return exec(s.body);
      case Stmt::Kind::Break:
        return Flow::Break;
      case Stmt::Kind::Continue:
        return Flow::Continue;
    }
    return Flow::Normal;
  }

  Value capture(const Body& body) {
    std::string buffer;
    {
      Swap<std::string*> swap(out_, &buffer);
      exec(body);
    }
    return Value(std::move(buffer));
  }

  Value eval_with_block_value(const Expr& filters, Value block) {
    Swap<Value> swap(block_value_, std::move(block));
    return eval(filters);
  }

  static void assign(const Stmt& s, Value value, Scope& scope) {
    if (!s.targets_are_tuple) {
      scope.set(s.targets[0], std::move(value));
      return;
    }
    if (!value.is_list() && !value.is_string() && !value.is_dict())
      fail("cannot unpack non-iterable {} object", value.type_name());
    List parts = iterate(value);
    if (parts.size() < s.targets.size())
      fail("not enough values to unpack (expected {}, got {})", s.targets.size(), parts.size());
    if (parts.size() > s.targets.size()) fail("too many values to unpack (expected {})", s.targets.size());
    for (size_t i = 0; i < parts.size(); ++i) scope.set(s.targets[i], std::move(parts[i]));
  }

  Flow exec_for(const Stmt& s) {
    const Value sequence = eval(*s.expr);
    if (!sequence.is_undefined() && !sequence.is_list() && !sequence.is_string() && !sequence.is_dict())
      fail("'{}' object is not iterable", sequence.type_name());
    List items = iterate(sequence);
    budget_.charge(items.size());
    if (s.filter) {
      List kept;
      for (Value& item : items) {
        count_iteration(s.line);
        Swap<std::shared_ptr<Scope>> swap(scope_, child_scope());
        assign(s, item, *scope_);
        if (eval(*s.filter).truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec(s.else_body);
    const auto length = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < length; ++i) {
      count_iteration(s.line);
      Swap<std::shared_ptr<Scope>> swap(scope_, child_scope());
      const auto index = static_cast<size_t>(i);
      assign(s, items[index], *scope_);
      Dict loop;
      loop.items = {
          {"index0", i},
          {"index", i + 1},
          {"revindex0", length - i - 1},
          {"revindex", length - i},
          {"first", i == 0},
          {"last", i == length - 1},
          {"length", length},
          {"depth", 1},
          {"depth0", 0},
          {"previtem", i > 0 ? items[index - 1] : Value::undefined("there is no previous item")},
          {"nextitem", i + 1 < length ? items[index + 1] : Value::undefined("there is no next item")},
          {"cycle", Value(
                        [i](CallArgs& args, int) -> Value {
                          if (args.positional.empty()) fail("loop.cycle() needs at least one argument");
                          return args.positional[static_cast<size_t>(i) % args.positional.size()];
                        },
                        "loop.cycle")},
      };
      scope_->set("loop", Value(std::move(loop)));
      if (exec(s.body) == Flow::Break) break;
    }
    return Flow::Normal;
  }

  void count_iteration(int line) {
    if (++iterations_ > kMaxLoopIterations)
      error(line, fmt::format("more than {} loop iterations (endless loop?)", kMaxLoopIterations));
  }

  std::shared_ptr<Scope> child_scope() const {
    auto child = std::make_shared<Scope>();
    child->parent = scope_;
    return child;
  }

  void define_macro(const Stmt& s) {
    // The macro sees the scope it was defined in; weakly, because that scope holds the
    // macro (a cycle would leak), and if the scope is gone the template scope serves.
    std::weak_ptr<Scope> home = scope_;
    Function call = [this, &s, home](CallArgs& args, int line) { return call_macro(s, home, args, line); };
    scope_->set(s.name, Value(std::move(call), s.name));
  }

  Value call_macro(const Stmt& s, const std::weak_ptr<Scope>& home, CallArgs& args, int line) {
    if (call_depth_ >= kMaxCallDepth)
      error(line, fmt::format("macro calls nested deeper than {} (endless recursion?)", kMaxCallDepth));
    Swap<int> depth(call_depth_, call_depth_ + 1);
    auto scope = std::make_shared<Scope>();
    scope->parent = home.lock();
    if (!scope->parent) scope->parent = root_;
    List varargs;
    for (size_t i = 0; i < args.positional.size(); ++i) {
      if (i < s.params.size()) {
        scope->set(s.params[i], args.positional[i]);
      } else {
        varargs.push_back(args.positional[i]);
      }
    }
    Dict kwargs;
    for (auto& [key, value] : args.keyword) {
      const auto it = std::find(s.params.begin(), s.params.end(), key);
      if (it == s.params.end()) {
        kwargs.set(key, value);
      } else if (static_cast<size_t>(it - s.params.begin()) < args.positional.size()) {
        error(line, fmt::format("macro '{}' got multiple values for argument '{}'", s.name, key));
      } else {
        scope->set(key, value);
      }
    }
    scope->set("varargs", Value(std::move(varargs)));
    scope->set("kwargs", Value(std::move(kwargs)));
    Swap<std::shared_ptr<Scope>> swap(scope_, scope);
    for (size_t i = 0; i < s.params.size(); ++i) {
      const bool passed = std::any_of(scope->vars.begin(), scope->vars.end(),
                                      [&](const auto& kv) { return kv.first == s.params[i]; });
      if (passed) continue;
      // Defaults are evaluated at call time, in the macro's scope (they may use earlier parameters).
      scope->set(s.params[i], s.defaults[i] ? eval(*s.defaults[i])
                                            : Value::undefined(fmt::format("'{}' is undefined", s.params[i])));
    }
    return capture(s.body);
  }

  CallArgs eval_args(const Expr& e, size_t first) {
    CallArgs args;
    for (size_t i = first; i < e.items.size(); ++i) args.positional.push_back(eval(*e.items[i]));
    for (const auto& [key, value] : e.keyword) args.keyword.emplace_back(key, eval(*value));
    return args;
  }

 public:
  Value eval(const Expr& e) {
    DepthGuard guard(*this, e.line);
    try {
      return eval_expr(e);
    } catch (const LocatedError&) {
      throw;
    } catch (const Error& err) {
      error(e.line, err.what());
    }
  }

 private:
  Value eval_expr(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::Literal:
        return e.value;
      case Expr::Kind::Name: {
        const Value* v = scope_->find(e.name);
        return v ? *v : Value::undefined(fmt::format("'{}' is undefined", e.name));
      }
      case Expr::Kind::List:
      case Expr::Kind::Tuple: {
        List items;
        for (const ExprPtr& item : e.items) items.push_back(eval(*item));
        return Value(std::move(items), e.kind == Expr::Kind::Tuple);
      }
      case Expr::Kind::Dict: {
        Dict dict;
        for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
          const Value key = eval(*e.items[i]);
          if (!key.is_string()) fail("dict keys must be strings here, not {}", key.type_name());
          dict.set(key.as_string(), eval(*e.items[i + 1]));
        }
        return Value(std::move(dict));
      }
      case Expr::Kind::Attribute:
        return get_attribute(eval(*e.items[0]), e.name);
      case Expr::Kind::Item:
        return get_item(eval(*e.items[0]), eval(*e.items[1]));
      case Expr::Kind::Slice:
        return eval_slice(e);
      case Expr::Kind::Call:
        return eval_call(e);
      case Expr::Kind::Filter: {
        const Value input = eval(*e.items[0]);
        CallArgs args = eval_args(e, 1);
        return apply_filter(e.name, input, args, budget_);
      }
      case Expr::Kind::Test: {
        const Value input = eval(*e.items[0]);
        CallArgs args = eval_args(e, 1);
        return apply_test(e.name, input, args) != e.negated;
      }
      case Expr::Kind::Unary:
        return unary_operator(e.name, eval(*e.items[0]));
      case Expr::Kind::Binary:
        return binary_operator(e.name, eval(*e.items[0]), eval(*e.items[1]), budget_);
      case Expr::Kind::And: {
        Value left = eval(*e.items[0]);
        return left.truthy() ? eval(*e.items[1]) : left;
      }
      case Expr::Kind::Or: {
        Value left = eval(*e.items[0]);
        return left.truthy() ? left : eval(*e.items[1]);
      }
      case Expr::Kind::Conditional:
        if (eval(*e.items[0]).truthy()) return eval(*e.items[1]);
        if (e.items[2]) return eval(*e.items[2]);
        return Value::undefined("the inline if-expression evaluated to false and has no else");
      case Expr::Kind::BlockValue:
        return block_value_;
    }
    return Value();
  }

  Value eval_call(const Expr& e) {
    const Expr& callee = *e.items[0];
    if (callee.kind == Expr::Kind::Attribute) {
      const Value self = eval(*callee.items[0]);
      if (self.is_undefined()) fail_undefined(self);
      CallArgs args = eval_args(e, 1);
      if (auto result = call_method(self, callee.name, args, budget_)) return std::move(*result);
      return call_value(get_attribute(self, callee.name), args, e.line);
    }
    const Value fn = eval(callee);
    CallArgs args = eval_args(e, 1);
    return call_value(fn, args, e.line);
  }

  static Value call_value(const Value& fn, CallArgs& args, int line) {
    if (fn.is_function()) return fn.function()(args, line);
    if (fn.is_undefined()) fail_undefined(fn);
    fail("'{}' object is not callable", fn.type_name());
  }

  Value eval_slice(const Expr& e) {
    const Value seq = eval(*e.items[0]);
    int64_t bounds[3] = {0, 0, 1};
    bool given[3] = {false, false, false};
    for (int k = 0; k < 3; ++k) {
      if (!e.items[static_cast<size_t>(k) + 1]) continue;
      const Value v = eval(*e.items[static_cast<size_t>(k) + 1]);
      if (v.is_none()) continue;
      if (!v.is_int() && !v.is_bool()) fail("slice indices must be integers or None, not {}", v.type_name());
      bounds[k] = v.as_int();
      given[k] = true;
    }
    if (seq.is_undefined()) fail_undefined(seq);
    if (!seq.is_string() && !seq.is_list()) return Value::undefined(fmt::format("'{}' object is not subscriptable", seq.type_name()));
    const int64_t step = bounds[2];
    if (step == 0) fail("slice step cannot be zero");
    std::vector<std::string_view> chars;
    if (seq.is_string()) chars = code_points(seq.as_string());
    const auto length = static_cast<int64_t>(seq.is_string() ? chars.size() : seq.list().size());
    budget_.charge(static_cast<size_t>(length));
    // Python's slice.indices(): clamp into range, defaults depend on the step's sign.
    auto clamp = [&](int64_t index, bool is_given, int64_t fallback) {
      if (!is_given) return fallback;
      if (index < 0) index += length;
      const int64_t low = step < 0 ? -1 : 0, high = step < 0 ? length - 1 : length;
      return std::clamp(index, low, high);
    };
    const int64_t start = clamp(bounds[0], given[0], step < 0 ? length - 1 : 0);
    const int64_t stop = clamp(bounds[1], given[1], step < 0 ? -1 : length);
    std::string text;
    List items;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (seq.is_string()) {
        text += chars[static_cast<size_t>(i)];
      } else {
        items.push_back(seq.list()[static_cast<size_t>(i)]);
      }
    }
    if (seq.is_string()) return Value(std::move(text));
    return Value(std::move(items), seq.is_tuple());
  }

  const std::string& origin_;
  std::shared_ptr<Scope> scope_;
  std::shared_ptr<Scope> root_;
  std::string* out_ = nullptr;
  Value block_value_;
  Budget budget_;
  size_t iterations_ = 0;
  int depth_ = 0;
  int call_depth_ = 0;
};

}  // namespace

void track_mutable(const Value& v) {
  if (tracked_mutables) tracked_mutables->push_back(v);
}

std::string render_template(const Body& body, const std::string& origin, const Dict& variables) {
  Renderer renderer(origin, variables);
  return renderer.run(body);
}

}  // namespace zc::tok::jinja
