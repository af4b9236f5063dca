// Chat templates (chat_template.h): the Jinja2 interpreter against Jinja2 3.1.6 itself for
// small templates covering the features, and the API. The golden templates (transformers'
// renders, qwen3 conversations): chat_template_golden_test.cpp; bad input:
// chat_template_errors_test.cpp.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chat_template_testing.h"
#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace {

using nlohmann::json;
using zc::tok::ChatTemplate;
using zc::tok::testing::render_source;

struct TemplateCase {
  const char* name;
  const char* source;
  const char* messages;  // JSON
  bool add_generation_prompt;
  const char* extra;  // JSON
  const char* bos_token;
  const char* eos_token;
  const char* expected;
};



// Hand-written templates. Expected strings: Jinja2 3.1.6, ImmutableSandboxedEnvironment(
// trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]) with transformers'
// tojson/raise_exception/strftime_now, given the same (key-sorted) variables.
const TemplateCase kTemplateCases[] = {
    {"Text",
     "plain text",
     "[]", false, "{}", "", "",
     "plain text"},
    {"PrintString",
     "{{ 'a' }}{{ \"b\" }}",
     "[]", false, "{}", "", "",
     "ab"},
    {"StringEscapes",
     "{{ 'l1\\nl2\\t\\\\ \\'q\\' \\\"d\\\"' }}",
     "[]", false, "{}", "", "",
     "l1\nl2\t\\ 'q' \"d\""},
    {"Comment",
     "a{# comment #}b",
     "[]", false, "{}", "", "",
     "ab"},
    {"CommentTrim",
     "a  {#- c -#}  b",
     "[]", false, "{}", "", "",
     "ab"},
    {"LstripComment",
     "a\n   {# c #}\nb",
     "[]", false, "{}", "", "",
     "a\nb"},
    {"TrimBlocks",
     "{% if true %}\nyes\n{% endif %}\nend",
     "[]", false, "{}", "", "",
     "yes\nend"},
    {"LstripBlocks",
     "<ul>\n    {% for x in [1, 2] %}\n    <li>{{ x }}</li>\n    {% endfor %}\n</ul>",
     "[]", false, "{}", "", "",
     "<ul>\n    <li>1</li>\n    <li>2</li>\n</ul>"},
    {"WhitespaceMinus",
     "a   {{- 'b' -}}   c {%- if true -%}  d  {%- endif -%}  e",
     "[]", false, "{}", "", "",
     "abcde"},
    {"PlusDisablesLstrip",
     "x\n    {%+ if true %}y{% endif %}",
     "[]", false, "{}", "", "",
     "x\n    y"},
    {"PlusDisablesTrim",
     "{% if true +%}\ny{% endif %}",
     "[]", false, "{}", "", "",
     "\ny"},
    {"VariableNotLstripped",
     "x\n    {{ 'v' }}\n",
     "[]", false, "{}", "", "",
     "x\n    v"},
    {"TrailingNewlineDropped",
     "a\n",
     "[]", false, "{}", "", "",
     "a"},
    {"CRLF",
     "{% if true %}\015\na\015\n{% endif %}\015\nb",
     "[]", false, "{}", "", "",
     "a\nb"},
    {"Numbers",
     "{{ 1 }} {{ 1.0 }} {{ 2.50 }} {{ 1e3 }} {{ 1_000 }} {{ -3 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.5e-7 }}",
     "[]", false, "{}", "", "",
     "1 1.0 2.5 1000.0 1000 -3 0.30000000000000004 1e+20 1.5e-07"},
    {"Literals",
     "{{ true }} {{ True }} {{ false }} {{ none }} {{ None }} {{ [1, 'a', none, true] }} {{ {'a': 1, 'b': [2]} }} {{ (1, 2) }} {{ (1,) }}",
     "[]", false, "{}", "", "",
     "True True False None None [1, 'a', None, True] {'a': 1, 'b': [2]} (1, 2) (1,)"},
    {"Arithmetic",
     "{{ 7 + 2 }} {{ 7 - 2 }} {{ 7 * 2 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 6 / 3 }} {{ 2 ** -1 }} {{ 1 + 1.5 }} {{ true + 1 }}",
     "[]", false, "{}", "", "",
     "9 5 14 3.5 3 1 1024 -4 2 2.0 0.5 2.5 2"},
    {"Precedence",
     "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 10 - 2 - 3 }} {{ 1 ~ (2 + 3) }}",
     "[]", false, "{}", "", "",
     "7 9 64 4 5 15"},
    {"StringOps",
     "{{ 'a' + 'b' }} {{ 'ab' * 3 }} {{ 'x' ~ 1 ~ none ~ true }} {{ [1] + [2] }} {{ [0] * 3 }}",
     "[]", false, "{}", "", "",
     "ab ababab x1NoneTrue [1, 2] [0, 0, 0]"},
    {"Comparisons",
     "{{ 1 == 1.0 }} {{ 1 != 2 }} {{ 'a' < 'b' }} {{ 2 >= 2 }} {{ [1, 2] == [1, 2] }} {{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ none == none }}",
     "[]", false, "{}", "", "",
     "True True True True True True True True True True"},
    {"AndOrReturnOperands",
     "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }} {{ none or [] }} {{ not 0 }} {{ not 'a' }}",
     "[]", false, "{}", "", "",
     "x b  [] True False"},
    {"Conditional",
     "{{ 'y' if true else 'n' }} {{ 'y' if false else 'n' }} [{{ 'y' if false }}] {{ 1 if 0 else 2 if 1 else 3 }}",
     "[]", false, "{}", "", "",
     "y n [] 2"},
    {"IfElifElse",
     "{% for i in [1, 2, 3] %}{% if i == 1 %}one{% elif i == 2 %}two{% else %}many{% endif %},{% endfor %}",
     "[]", false, "{}", "", "",
     "one,two,many,"},
    {"ForLoopVars",
     "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}",
     "[]", false, "{}", "", "",
     "1032TrueFalse3|2121FalseFalse3|3210FalseTrue3|"},
    {"ForPrevNext",
     "{% for x in [1, 2, 3] %}[{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}]{% endfor %}",
     "[]", false, "{}", "", "",
     "[<1>2][1<2>3][2<3>]"},
    {"ForElse",
     "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}|{% for x in undefined_var %}{{ x }}{% else %}none{% endfor %}",
     "[]", false, "{}", "", "",
     "empty|none"},
    {"ForFilter",
     "{% for x in range(10) if x is odd %}{{ x }}{{ ',' if not loop.last }}{% endfor %}",
     "[]", false, "{}", "", "",
     "1,3,5,7,9"},
    {"ForBreakContinue",
     "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}",
     "[]", false, "{}", "", "",
     "0134"},
    {"ForOverDictAndItems",
     "{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}|{% for k, v in {'b': 1, 'a': 2}.items() %}{{ k }}={{ v }};{% endfor %}|{% for k, v in {'x': 1}|items %}{{ k }}{{ v }}{% endfor %}",
     "[]", false, "{}", "", "",
     "ba|b=1;a=2;|x1"},
    {"ForOverString",
     "{% for c in 'héllo' %}{{ c }}.{% endfor %}",
     "[]", false, "{}", "", "",
     "h.é.l.l.o."},
    {"LoopCycle",
     "{% for x in range(4) %}{{ loop.cycle('a', 'b') }}{% endfor %}",
     "[]", false, "{}", "", "",
     "abab"},
    {"NestedLoops",
     "{% for i in range(2) %}{% for j in range(2) %}{{ i }}{{ j }}{{ loop.index }} {% endfor %}{{ loop.index }};{% endfor %}",
     "[]", false, "{}", "", "",
     "001 012 1;101 112 2;"},
    {"SetScoping",
     "{% set x = 1 %}{% for i in range(2) %}{% set x = x + 10 %}{{ x }} {% endfor %}{{ x }}",
     "[]", false, "{}", "", "",
     "11 11 1"},
    {"SetInIfIsGlobal",
     "{% if true %}{% set y = 5 %}{% endif %}{{ y }}",
     "[]", false, "{}", "", "",
     "5"},
    {"Namespace",
     "{% set ns = namespace(count=0, found=false) %}{% for i in range(3) %}{% set ns.count = ns.count + i %}{% endfor %}{{ ns.count }} {{ ns.found }}",
     "[]", false, "{}", "", "",
     "3 False"},
    {"SetTuple",
     "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c, d = [3, 4] %}{{ c }}{{ d }}",
     "[]", false, "{}", "", "",
     "1234"},
    {"SetBlock",
     "{% set block %}Hello {{ 'World' }}!{% endset %}[{{ block }}]",
     "[]", false, "{}", "", "",
     "[Hello World!]"},
    {"SetBlockFiltered",
     "{% set block | upper %}  hi  {% endset %}[{{ block }}]",
     "[]", false, "{}", "", "",
     "[  HI  ]"},
    {"Macro",
     "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', '?') }} {{ greet(name='Cy', punct='.') }}",
     "[]", false, "{}", "", "",
     "Hi Ann! Hi Bob? Hi Cy."},
    {"MacroRecursion",
     "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}",
     "[]", false, "{}", "", "",
     "120"},
    {"MacroMissingArg",
     "{% macro m(a, b) %}[{{ a }}|{{ b }}]{% endmacro %}{{ m(1) }}",
     "[]", false, "{}", "", "",
     "[1|]"},
    {"Generation",
     "{% generation %}gen {{ 1 }}{% endgeneration %}!",
     "[]", false, "{}", "", "",
     "gen 1!"},
    {"FilterBlock",
     "{% filter upper %}abc {{ 'd' }}{% endfilter %}",
     "[]", false, "{}", "", "",
     "ABC D"},
    {"Raw",
     "{% raw %}{{ not parsed }}{% endraw %}",
     "[]", false, "{}", "", "",
     "{{ not parsed }}"},
    {"AttributeAndItem",
     "{{ d.a }} {{ d['a'] }} {{ d.b.c }} {{ d['b']['c'] }} [{{ d.missing }}] [{{ d['missing'] }}] {{ l[0] }} {{ l[-1] }} {{ l.1 }} [{{ l[10] }}]",
     "[]", false, "{\"d\": {\"a\": 1, \"b\": {\"c\": \"x\"}}, \"l\": [10, 20, 30]}", "", "",
     "1 1 x x [] [] 10 30 20 []"},
    {"Slices",
     "{{ l[::-1] }} {{ l[1:] }} {{ l[:2] }} {{ l[-2:] }} {{ l[::2] }} {{ l[1:-1] }} {{ 'hello'[::-1] }} {{ 'hello'[1:3] }} {{ l[5:] }} {{ l[-100:1] }}",
     "[]", false, "{\"l\": [1, 2, 3, 4, 5]}", "", "",
     "[5, 4, 3, 2, 1] [2, 3, 4, 5] [1, 2] [4, 5] [1, 3, 5] [2, 3, 4] olleh el [] [1]"},
    {"Tests",
     "{{ x is defined }} {{ y is undefined }} {{ none is none }} {{ 'a' is string }} {{ 1 is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ true is boolean }} {{ {} is mapping }} {{ [] is iterable }} {{ 'a' is sequence }} {{ true is true }} {{ 0 is false }} {{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 2 is equalto 2 }} {{ 2 is eq(3) }} {{ x is not none }} {{ 1 is string }}",
     "[]", false, "{\"x\": 1}", "", "",
     "True True True True True True True True True True True True False True True True True False True False"},
    {"IsSameas",
     "{{ none is sameas none }} {{ false is sameas false }} {{ 0 is sameas false }}",
     "[]", false, "{}", "", "",
     "True True False"},
    {"FiltersString",
     "[{{ '  a b  '|trim }}] {{ 'abc'|upper }} {{ 'ABC'|lower }} {{ 'hello world'|capitalize }} {{ 'hello wORLD-x (y)'|title }} {{ 'aXa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'héllo'|length }} {{ [1, 2]|count }} {{ {'a': 1}|length }} {{ '--x--'|trim('-') }}",
     "[]", false, "{}", "", "",
     "[a b] ABC abc Hello world Hello World-X (Y) bXb bba 5 2 1 x"},
    {"FiltersDefault",
     "{{ u|default('dflt') }} {{ ''|default('e') }} {{ ''|default('e', true) }} {{ u|d('d') }} {{ none|default('n') }} [{{ u|default }}]",
     "[]", false, "{}", "", "",
     "dflt  e d None []"},
    {"FiltersSequence",
     "{{ [3, 1, 2]|first }} {{ [3, 1, 2]|last }} {{ [1, 2, 3]|reverse|list }} {{ 'abc'|reverse }} {{ 'abc'|list }} {{ [1, 2, 3]|join(', ') }} {{ ['b', 'A', 'c']|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ ['a', 'A', 'b', 'a']|unique|list }} {{ [1, 5, 3]|max }} {{ [4, 2, 8]|min }} {{ [1, 2, 3]|sum }}",
     "[]", false, "{}", "", "",
     "3 2 [3, 2, 1] cba ['a', 'b', 'c'] 1, 2, 3 ['A', 'b', 'c'] [3, 2, 1] ['a', 'b'] 5 2 6"},
    {"FiltersConvert",
     "{{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ '2.5'|float }} {{ 3|float }} {{ -3|abs }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ 3.5|round }} {{ 7|round }} {{ 2.1|round(0, 'ceil') }} {{ 42|string + '!' }} {{ [1]|string }}",
     "[]", false, "{}", "", "",
     "42 4 0 7 3 2.5 3.0 3 2.57 2.0 4.0 7 3.0 42! [1]"},
    {"FiltersAttr",
     "{{ users|selectattr('active')|map(attribute='name')|join(',') }} {{ users|rejectattr('active')|map(attribute='name')|list }} {{ users|selectattr('name', 'equalto', 'b')|list|length }} {{ users|sort(attribute='age')|map(attribute='name')|join }} {{ users|map(attribute='missing', default='?')|join }} {{ ['a', 'b']|map('upper')|list }} {{ [1, 2, 3, 4]|select('even')|list }} {{ [1, 2, 3]|reject('odd')|list }}",
     "[]", false, "{\"users\": [{\"active\": true, \"age\": 30, \"name\": \"a\"}, {\"active\": false, \"age\": 20, \"name\": \"b\"}, {\"active\": true, \"age\": 25, \"name\": \"c\"}]}", "", "",
     "a,c ['b'] 1 bca ??? ['A', 'B'] [2, 4] [2]"},
    {"FiltersDict",
     "{{ {'b': 2, 'a': 1}|dictsort }} {{ {'b': 1, 'a': 2}|dictsort(by='value') }} {{ {'a': 1}|items|list }}",
     "[]", false, "{}", "", "",
     "[('a', 1), ('b', 2)] [('b', 1), ('a', 2)] [('a', 1)]"},
    {"Tojson",
     "{{ v|tojson }}|{{ 'héllo \"q\"\\n'|tojson }}|{{ [1, 2.5, none, true, 'x']|tojson }}|{{ {'z': 1, 'a': [1, {'k': 'v'}], 'e': {}}|tojson }}|{{ {'a': [1, 2], 'b': {}}|tojson(indent=2) }}|{{ 1.0|tojson }}",
     "[]", false, "{\"v\": {\"n\": 1, \"name\": \"f\"}}", "", "",
     "{\"n\": 1, \"name\": \"f\"}|\"héllo \\\"q\\\"\\n\"|[1, 2.5, null, true, \"x\"]|{\"z\": 1, \"a\": [1, {\"k\": \"v\"}], \"e\": {}}|{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}|1.0"},
    {"Indent",
     "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}",
     "[]", false, "{}", "", "",
     "a\n    b\n\n    c|  a\n  b|a\n  \n  b"},
    {"StringMethods",
     "[{{ '  x  '.strip() }}] [{{ 'xxaxx'.strip('x') }}] [{{ '  x  '.lstrip() }}] [{{ '  x  '.rstrip() }}] {{ 'a,b,c'.split(',') }} {{ 'a b  c'.split() }} {{ 'a,b,c'.split(',', 1) }} {{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'aBc'.upper() }} {{ 'aBc'.lower() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'aaa'.replace('a', 'b') }} {{ 'a{}c{}'.format(1, 2) }} {{ 'abcb'.find('b') }} {{ 'abcb'.count('b') }} {{ '-'.join(['x', 'y']) }}",
     "[]", false, "{}", "", "",
     "[x] [a] [x  ] [  x] ['a', 'b', 'c'] ['a', 'b', 'c'] ['a', 'b,c'] True True ABC abc Hello World Hello bbb a1c2 1 2 x-y"},
    {"DictMethods",
     "{{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }} {{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 'dflt') }}",
     "[]", false, "{\"d\": {\"a\": 1, \"b\": 2}}", "", "",
     "['a', 'b'] [1, 2] [('a', 1), ('b', 2)] 1 None dflt"},
    {"Globals",
     "{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1, b='x') }} {{ namespace(a=1).a }}",
     "[]", false, "{}", "", "",
     "[0, 1, 2] [1, 3, 5] [5, 3, 1] {'a': 1, 'b': 'x'} 1"},
    {"UndefinedBehaviour",
     "[{{ u }}] [{{ u|length }}] [{% for x in u %}{{ x }}{% endfor %}] {{ u is defined }} {{ 'yes' if u else 'no' }} {{ u == u }} [{{ u ~ 'x' }}] [{{ u|string }}]",
     "[]", false, "{}", "", "",
     "[] [0] [] False no True [x] []"},
    {"DictMissingKeyIsUndefined",
     "{{ m.content is defined }} {{ m.tool_calls is defined }} {% if m.tool_calls %}tc{% else %}no tc{% endif %}",
     "[]", false, "{\"m\": {\"content\": \"c\"}}", "", "",
     "True False no tc"},
    {"MessagesLoop",
     "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m['content']|trim }}</{{ m.role }}>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}{{ eos_token }}",
     "[{\"content\": \"Sys\", \"role\": \"system\"}, {\"content\": \"Hello\", \"role\": \"user\"}, {\"content\": \"Yo\", \"role\": \"assistant\"}]", true, "{}", "<s>", "</s>",
     "<s><system>Sys</system><user>Hello</user><assistant>Yo</assistant><assistant></s>"},
    {"MessagesSingle",
     "{% for m in messages %}{{ loop.index }}:{{ m.content }}{% if loop.first and loop.last %} (only){% endif %}{% endfor %}",
     "[{\"content\": \"Hi\", \"role\": \"user\"}]", false, "{}", "", "",
     "1:Hi (only)"},
    {"MessagesEmpty",
     "{% for m in messages %}{{ m.content }}{% else %}nothing{% endfor %}|{{ messages|length }}",
     "[]", false, "{}", "", "",
     "nothing|0"},
    {"SystemMessageExtraction",
     "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}{% set loop_messages = messages[1:] %}{% else %}{% set system = 'default' %}{% set loop_messages = messages %}{% endif %}[{{ system }}]{% for m in loop_messages %}{{ m.role }};{% endfor %}",
     "[{\"content\": \"Sys\", \"role\": \"system\"}, {\"content\": \"Hello\", \"role\": \"user\"}, {\"content\": \"Yo\", \"role\": \"assistant\"}]", false, "{}", "", "",
     "[Sys]user;assistant;"},
    {"ChainedFiltersAndTests",
     "{{ messages|selectattr('role', 'equalto', 'user')|list|length }} {{ (messages|last).content }} {{ messages[-1].role is string and messages|length > 2 }}",
     "[{\"content\": \"Sys\", \"role\": \"system\"}, {\"content\": \"Hello\", \"role\": \"user\"}, {\"content\": \"Yo\", \"role\": \"assistant\"}]", false, "{}", "", "",
     "1 Yo True"},
    {"UnaryAndFilterPrecedence",
     "{{ -3|abs }} {{ not true or true }} {{ -(3)|abs }} {{ 1 - -1 }}",
     "[]", false, "{}", "", "",
     "3 True 3 2"},
    {"AdjacentStrings",
     "{{ 'a' 'b' \"c\" }}",
     "[]", false, "{}", "", "",
     "abc"},
    {"MultilineTag",
     "{{\n  'x'\n  ~ 'y'\n}}{%\n  if true\n%}z{% endif %}",
     "[]", false, "{}", "", "",
     "xyz"},
    {"BracesInExpressions",
     "{{ {'a': {'b': 1}} }}{{ [{'k': [1]}][0]['k'] }}",
     "[]", false, "{}", "", "",
     "{'a': {'b': 1}}[1]"},
    {"StrftimeNowIsString",
     "{{ strftime_now('%Y') is string }} {{ strftime_now('%Y')|length }}",
     "[]", false, "{}", "", "",
     "True 4"},
    {"Unicode",
     "{{ '日本語'|length }} {{ '日本語'[1] }} {{ '日本語'[::-1] }} {{ 'ünïcode'|length }} {{ ['ü'] }} {{ {'k': 'ü'}|tojson }}",
     "[]", false, "{}", "", "",
     "3 本 語本日 7 ['ü'] {\"k\": \"ü\"}"},
    {"ReprQuotes",
     "{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'nl\\n'] }}",
     "[]", false, "{}", "", "",
     "[\"it's\", 'say \"hi\"', 'both \\' \"', 'nl\\n']"},
    {"EmptyTemplate",
     "",
     "[]", false, "{}", "", "",
     ""},
    {"OnlyWhitespaceControl",
     "  {%- if true -%}  {%- endif -%}  ",
     "[]", false, "{}", "", "",
     ""},
};


// ---- small templates against Jinja2 ----

class ChatTemplateFeature : public ::testing::TestWithParam<TemplateCase> {};

TEST_P(ChatTemplateFeature, MatchesJinja2) {
  const TemplateCase& c = GetParam();
  const ChatTemplate tmpl = ChatTemplate::parse(c.source, "case.jinja", c.bos_token, c.eos_token);
  EXPECT_EQ(tmpl.render(json::parse(c.messages), c.add_generation_prompt, json::parse(c.extra)), c.expected)
      << "template: " << c.source;
}

INSTANTIATE_TEST_SUITE_P(ChatTemplateTemplates, ChatTemplateFeature, ::testing::ValuesIn(kTemplateCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(ChatTemplateApi, ChatMLRendersEachMessageAndPrompt) {
  const ChatTemplate chatml = ChatTemplate::chatml();
  const json messages = json::parse(R"([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])");
  EXPECT_EQ(chatml.render(messages, true),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(chatml.render(messages, false), "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n");
  EXPECT_EQ(chatml.render(json::array(), false), "");
}

TEST(ChatTemplateApi, MovedTemplateRendersAndKeepsOrigin) {
  ChatTemplate a = ChatTemplate::parse("{{ bos_token }}x{{ eos_token }}", "origin-a", "<s>", "</s>");
  ChatTemplate b = std::move(a);
  EXPECT_EQ(b.origin(), "origin-a");
  EXPECT_EQ(b.render(json::array(), false), "<s>x</s>");
}

TEST(ChatTemplateApi, ListAppendOnNamespaceList) {
  // Jinja2's immutable sandbox refuses list.append; templates that use it work here.
  EXPECT_EQ(render_source("{% set ns = namespace(items=[]) %}{% for i in range(3) %}{{ ns.items.append(i * 2) or '' }}"
                          "{% endfor %}{{ ns.items }}"),
            "[0, 2, 4]");
}

TEST(ChatTemplateApi, ExtraVariablesOverrideAndTypes) {
  EXPECT_EQ(render_source("{{ n + 1 }} {{ f }} {{ b }} {{ s }} {{ z }} {{ l|length }}",
                          json::parse(R"({"n": 41, "f": 0.5, "b": true, "s": "x", "z": null, "l": [1, 2]})")),
            "42 0.5 True x None 2");
}

TEST(ChatTemplateApi, ToolSchemasKeepTheCallersKeyOrder) {
  // A client's tool schema printed by tojson in the order it was written, as Python's
  // dicts keep it (expected: json.dumps(..., ensure_ascii=False) of the same dict).
  const auto tools = nlohmann::ordered_json::parse(
      R"([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
          "required": ["city"], "properties": {"city": {"type": "string"}}}}}])");
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  extra["tools"] = tools;
  EXPECT_EQ(ChatTemplate::parse("{% for t in tools %}{{ t | tojson }}{% endfor %}", "t.jinja")
                .render(nlohmann::ordered_json::array(), false, extra),
            R"({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", )"
            R"("required": ["city"], "properties": {"city": {"type": "string"}}}}})");
}

}  // namespace
