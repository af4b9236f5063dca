// Chat templates on bad input: syntax errors with origin:line:column, runtime errors
// with origin:line, hostile templates refused with a clear error (never a crash or a
// hang), and model folders with a list-form, a file or no template, or a malformed config.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chat_template_testing.h"

namespace {

using nlohmann::json;
using zc::tok::ChatTemplate;
using zc::tok::testing::error_of;
using zc::tok::testing::render_source;
using zc::tok::testing::TempDir;

// ---- syntax errors: origin:line:column and what was wrong ----

TEST(ChatTemplateErrors, SyntaxErrorsSayLineAndColumn) {
  auto parse_error = [](const std::string& source) {
    return error_of([&] { ChatTemplate::parse(source, "bad.jinja"); });
  };
  std::string e = parse_error("line one\n{% if x %}unclosed");
  EXPECT_NE(e.find("bad.jinja:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("endif"), std::string::npos) << e;

  e = parse_error("ok\n  {% frobnicate %}");
  EXPECT_NE(e.find("bad.jinja:2:6: unknown tag 'frobnicate'"), std::string::npos) << e;

  e = parse_error("{{ 'unterminated }}");
  EXPECT_NE(e.find("bad.jinja:1:4: unterminated string literal"), std::string::npos) << e;

  e = parse_error("{{ a $ b }}");
  EXPECT_NE(e.find("bad.jinja:1:6: unexpected character '$'"), std::string::npos) << e;

  e = parse_error("{% for x in xs %}{{ x }}");
  EXPECT_NE(e.find("endfor"), std::string::npos) << e;

  e = parse_error("{{ x | nosuchfilter }}");
  EXPECT_NE(e.find("bad.jinja:1:8: unknown filter 'nosuchfilter'"), std::string::npos) << e;

  e = parse_error("{{ x is nosuchtest }}");
  EXPECT_NE(e.find("unknown test 'nosuchtest'"), std::string::npos) << e;

  e = parse_error("{% endif %}");
  EXPECT_NE(e.find("bad.jinja:1:4: unexpected 'endif'"), std::string::npos) << e;

  e = parse_error("{{ x ");
  EXPECT_NE(e.find("bad.jinja:1:1:"), std::string::npos) << e;
  EXPECT_NE(e.find("'}}'"), std::string::npos) << e;

  e = parse_error("{% break %}");
  EXPECT_NE(e.find("outside of a loop"), std::string::npos) << e;

  e = parse_error("{{ (1 + }}");
  EXPECT_NE(e.find("bad.jinja:1:"), std::string::npos) << e;

  e = parse_error("{{ [1, 2) }}");
  EXPECT_NE(e.find("unexpected ')', expected ']'"), std::string::npos) << e;

  e = parse_error("{# never closed");
  EXPECT_NE(e.find("comment"), std::string::npos) << e;

  EXPECT_THROW(ChatTemplate::parse("{% set %}", "t"), zc::Error);
  EXPECT_THROW(ChatTemplate::parse("{% macro m(a %}{% endmacro %}", "t"), zc::Error);
  EXPECT_THROW(ChatTemplate::parse("{{ 99999999999999999999 }}", "t"), zc::Error);
  EXPECT_THROW(ChatTemplate::parse("{% include 'x' %}", "t"), zc::Error);
}

// ---- runtime errors: origin:line ----

TEST(ChatTemplateErrors, RaiseExceptionMessageAppears) {
  const ChatTemplate t = ChatTemplate::parse(
      "a\n{% if messages|length == 0 %}\n{{ raise_exception('Conversation roles must alternate!') }}\n{% endif %}",
      "roles.jinja");
  const std::string e = error_of([&] { t.render(json::array(), false); });
  EXPECT_EQ(e, "roles.jinja:3: Conversation roles must alternate!");
  EXPECT_EQ(t.render(json::parse(R"([{"role": "user", "content": "x"}])"), false), "a\n");
}

TEST(ChatTemplateErrors, RuntimeErrorsNameLineAndProblem) {
  std::string e = error_of([] { render_source("\n\n{{ missing.attr }}"); });
  EXPECT_EQ(e, "test.jinja:3: 'missing' is undefined");
  e = error_of([] { render_source("{{ {'a': 1}.b.c }}"); });
  EXPECT_EQ(e, "test.jinja:1: 'dict object' has no attribute 'b'");
  e = error_of([] { render_source("{{ 'a' + 1 }}"); });
  EXPECT_NE(e.find("test.jinja:1: unsupported operand type(s) for +: 'str' and 'int'"), std::string::npos) << e;
  e = error_of([] { render_source("{{ 1 // 0 }}"); });
  EXPECT_NE(e.find("division"), std::string::npos) << e;
  e = error_of([] { render_source("{{ 9223372036854775807 + 1 }}"); });
  EXPECT_NE(e.find("overflow"), std::string::npos) << e;
  e = error_of([] { render_source("{{ undefined_fn() }}"); });
  EXPECT_EQ(e, "test.jinja:1: 'undefined_fn' is undefined");
  e = error_of([] { render_source("{{ u|tojson }}"); });
  EXPECT_NE(e.find("not JSON serializable"), std::string::npos) << e;
  e = error_of([] { render_source("{% set x = 1 %}{% set x.a = 2 %}"); });
  EXPECT_NE(e.find("non-namespace"), std::string::npos) << e;
  e = error_of([] { render_source("{% for a, b in [1] %}{% endfor %}"); });
  EXPECT_NE(e.find("unpack"), std::string::npos) << e;
  e = error_of([] { render_source("{{ 1 < 'a' }}"); });
  EXPECT_NE(e.find("'<' not supported"), std::string::npos) << e;
  e = error_of([] { render_source("{{ 'abc'.nosuchmethod() }}"); });
  EXPECT_NE(e.find("has no attribute 'nosuchmethod'"), std::string::npos) << e;
  // Not a ChatTemplate error: a failed render leaves the template usable.
  const ChatTemplate t = ChatTemplate::parse("{{ x.y }}", "t");
  EXPECT_THROW(t.render(json::array(), false), zc::Error);
  EXPECT_EQ(t.render(json::array(), false, json::parse(R"({"x": {"y": 7}})")), "7");
}

// ---- hostile templates: a clear error, never a crash or a hang ----

TEST(ChatTemplateErrors, DeepNestingIsRefused) {
  std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_THROW(ChatTemplate::parse(deep, "t"), zc::Error);
  std::string unary = "{{ " + std::string(100000, '-') + "1 }}";
  EXPECT_THROW(ChatTemplate::parse(unary, "t"), zc::Error);
  std::string ifs;
  for (int i = 0; i < 1000; ++i) ifs += "{% if true %}";
  for (int i = 0; i < 1000; ++i) ifs += "{% endif %}";
  const std::string e = error_of([&] { ChatTemplate::parse(ifs, "t"); });
  EXPECT_NE(e.find("nested deeper"), std::string::npos) << e;
}

TEST(ChatTemplateErrors, EndlessRecursionIsRefused) {
  const std::string e = error_of([] { render_source("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"); });
  EXPECT_NE(e.find("test.jinja:1:"), std::string::npos) << e;
  EXPECT_NE(e.find("endless recursion"), std::string::npos) << e;
}

TEST(ChatTemplateErrors, HugeLoopsAndOutputsAreRefused) {
  // Jinja2's sandbox caps range() at 100000 items.
  std::string e = error_of([] { render_source("{% for i in range(1000000) %}{% endfor %}"); });
  EXPECT_NE(e.find("Range too big"), std::string::npos) << e;
  // Nested loops: 100000^2 iterations.
  e = error_of([] { render_source("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"); });
  EXPECT_NE(e.find("loop iterations"), std::string::npos) << e;
  // Doubling a string: refused at the size limit.
  e = error_of([] {
    render_source("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}");
  });
  EXPECT_NE(e.find("MiB"), std::string::npos) << e;
  e = error_of([] { render_source("{{ 'x' * 100000000000 }}"); });
  EXPECT_NE(e.find("MiB"), std::string::npos) << e;
  // Output growth.
  e = error_of([] {
    render_source("{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}");
  });
  EXPECT_NE(e.find("output exceeds"), std::string::npos) << e;
}

TEST(ChatTemplateErrors, SelfContainingNamespaceDoesNotCrashOrLeak) {
  const std::string e = error_of([] { render_source("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}"); });
  EXPECT_NE(e.find("nested deeper"), std::string::npos) << e;
  EXPECT_EQ(render_source("{% set ns = namespace(l=[]) %}{{ ns.l.append(ns.l) or '' }}{{ ns.l|length }}"), "1");
}

// ---- from_dir ----

TEST(ChatTemplateFromDir, ListFormTakesDefault) {
  TempDir dir;
  dir.write("tokenizer_config.json", R"({
    "bos_token": {"content": "<B>", "lstrip": false},
    "eos_token": "<E>",
    "chat_template": [
      {"name": "tool_use", "template": "tools"},
      {"name": "default", "template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}"}
    ]})");
  const auto t = ChatTemplate::from_dir(dir.path());
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->render(json::parse(R"([{"role": "user", "content": "hi"}])"), false), "<B>hi<E>");
  EXPECT_NE(t->origin().find("tokenizer_config.json"), std::string::npos);
}

TEST(ChatTemplateFromDir, JinjaFileComesFirst) {
  TempDir dir;
  dir.write("tokenizer_config.json", R"({"bos_token": null, "eos_token": "</s>", "chat_template": "from config"})");
  dir.write("chat_template.jinja", "{% for m in messages %}[{{ m.role }}]{% endfor %}{{ eos_token }}\n");
  const auto t = ChatTemplate::from_dir(dir.path());
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->render(json::parse(R"([{"role": "user", "content": "hi"}])"), false), "[user]</s>");
  EXPECT_NE(t->origin().find("chat_template.jinja"), std::string::npos);
}

TEST(ChatTemplateFromDir, JinjaFileWithoutConfig) {
  TempDir dir;
  dir.write("chat_template.jinja", "{{ bos_token }}only\n");
  const auto t = ChatTemplate::from_dir(dir.path());
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->render(json::array(), false), "only");
}

TEST(ChatTemplateFromDir, NoneGivesNullopt) {
  TempDir dir;
  EXPECT_FALSE(ChatTemplate::from_dir(dir.path()).has_value());
  dir.write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  EXPECT_FALSE(ChatTemplate::from_dir(dir.path()).has_value());
}

TEST(ChatTemplateFromDir, MalformedConfigNamesTheFile) {
  TempDir dir;
  dir.write("tokenizer_config.json", "{\"chat_template\": ");
  const std::string e = error_of([&] { ChatTemplate::from_dir(dir.path()); });
  EXPECT_NE(e.find("tokenizer_config.json"), std::string::npos) << e;
  dir.write("tokenizer_config.json", R"({"chat_template": 5})");
  EXPECT_THROW(ChatTemplate::from_dir(dir.path()), zc::Error);
  dir.write("tokenizer_config.json", R"({"chat_template": "{% if %}"})");
  const std::string syntax = error_of([&] { ChatTemplate::from_dir(dir.path()); });
  EXPECT_NE(syntax.find("tokenizer_config.json chat_template:1:"), std::string::npos) << syntax;
}

}  // namespace
