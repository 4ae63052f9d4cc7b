// The Jinja engine of model/chat_template, construct by construct. The
// expected outputs are @huggingface/jinja's (the reference renderer, see
// tests/chat_templates), which chat_template.reference_equality checks
// against many more cases; this file pins the constructs one by one, the
// errors and refusals (messages, lines), the limits, and what hydra has
// that the reference lacks.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/chat_template/jinja/builtins.h"
#include "model/chat_template/jinja/js_text.h"
#include "model/chat_template/jinja/lexer.h"
#include "model/chat_template/jinja/template.h"
#include "model/chat_template/jinja/value.h"
#include "nlohmann/json.hpp"

namespace hydra::model::chat_template::jinja {
namespace {

using ::nlohmann::ordered_json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

absl::StatusOr<std::string> TryRender(
    std::string_view source,
    const ordered_json& context = ordered_json::object()) {
  absl::StatusOr<Template> t = Template::Parse(source);
  if (!t.ok()) return t.status();
  std::vector<std::pair<std::string, Value>> variables;
  for (const auto& [key, value] : context.items())
    variables.emplace_back(key, FromJson(value));
  return t->Render(variables);
}

// The output, or the error's message after "ERROR: ".
std::string Render(std::string_view source,
                   const ordered_json& context = ordered_json::object()) {
  absl::StatusOr<std::string> out = TryRender(source, context);
  return out.ok() ? *out : "ERROR: " + std::string(out.status().message());
}

std::string ParseError(std::string_view source) {
  absl::StatusOr<Template> t = Template::Parse(source);
  return t.ok() ? "parsed" : std::string(t.status().message());
}

TEST(JinjaLiterals, NumbersPrintAsTheReferenceDoes) {
  EXPECT_EQ(Render("{{ 1 }} {{ 1.0 }} {{ -0.0 }} {{ -0 }} {{ 1.5 }} {{ 10 / 4 "
                   "}} {{ 10 / 5 }}"),
            "1 1.0 -0.0 0 1.5 2.5 2.0");
  EXPECT_EQ(Render("{{ 10 // 4 }} {{ 10.0 // 4 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ "
                   "2 ** 10 }} {{ 2 ** -1 }}"),
            "2 2.0 1 -1 1024 0.5");
  EXPECT_EQ(
      Render("{{ 2 ** 70 }} {{ 0.1 + 0.2 }} {{ 100000000000000000000.0 }} "
             "{{ 1000000000000000000000.0 }} {{ 0.000001 }} {{ 0.0000001 }}"),
      "1.1805916207174113e+21 0.30000000000000004 100000000000000000000.0 "
      "1e+21 0.000001 1e-7");
  EXPECT_EQ(Render("{{ 1 / 0 }} {{ -1 / 0 }} {{ 0 / 0 }}"),
            "Infinity -Infinity NaN");
}

TEST(JinjaLiterals, StringsBooleansNoneListsObjects) {
  EXPECT_EQ(
      Render(
          R"({{ 'a\tb\nc\\d\'e"f' }}|{{ "\x41\u00e9\u4e2d" }}|{{ 'multi' 'ple' }})"),
      "a\tb\nc\\d'e\"f|A\xC3\xA9\xE4\xB8\xAD|multiple");
  EXPECT_EQ(Render("{{ true }} {{ True }} {{ false }} {{ False }}|{{ none "
                   "}}|{{ None }}|{{ nope }}|"),
            "true true false false||||");
  EXPECT_EQ(Render("{{ [1, 'a', 1.0, [2], {'k': 'v'}, none, nope] }}"),
            R"([1, "a", 1, [2], {"k": "v"}, null, undefined])");
  EXPECT_EQ(Render("{{ {'a': 1, 'b': [true, none]} }} {{ [] }} {{ {} }}"),
            R"({"a": 1, "b": [true, null]} [] {})");
}

TEST(JinjaExpressions, AttributeItemAndSlice) {
  const ordered_json ctx = {{"message", {{"role", "user"}, {"content", "hi"}}},
                            {"xs", {1, 2, 3, 4, 5}}};
  EXPECT_EQ(
      Render(
          "{{ message.role }} {{ message['content'] }} {{ message.missing }}|",
          ctx),
      "user hi |");
  EXPECT_EQ(Render("{{ xs[1:] }} {{ xs[::-1] }} {{ xs[1:4:2] }} {{ xs[-2:] }} "
                   "{{ xs[-1] }} {{ xs[9] }}|",
                   ctx),
            "[2, 3, 4, 5] [5, 4, 3, 2, 1] [2, 4] [4, 5] 5 |");
  EXPECT_EQ(
      Render(
          "{{ 'abc'[::-1] }} {{ 'abc'[0] }} {{ 'héllo'[1:3] }} {{ xs.length }}",
          ctx),
      "cba a él 5");
  // The reference returns undefined for attributes of undefined.
  EXPECT_EQ(Render("{{ nope.deeper.still }}|"), "|");
}

TEST(JinjaExpressions, Operators) {
  EXPECT_EQ(Render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ 10 "
                   "- 2 - 3 }} {{ -2 ** 2 }}"),
            "7 9 64 5 4");
  EXPECT_EQ(Render("{{ 'a' ~ 1 ~ 1.0 ~ true ~ [1, 2] }}|{{ 'a' + 1.5 }}|{{ [1] "
                   "+ [2, 3] }}"),
            "a11true1,2|a1.5|[1, 2, 3]");
  EXPECT_EQ(Render("{{ 1 == 1.0 }} {{ '1' == 1 }} {{ [1] == [1] }} {{ 1 != 2 "
                   "}} {{ 2.5 >= 2 }}"),
            "true true false true true");
  EXPECT_EQ(Render("{{ 'a' in 'abc' }} {{ 'k' in {'k': 1} }} {{ 2 in [1, 2] }} "
                   "{{ 'z' not in 'abc' }} "
                   "{{ 1 in nope }}"),
            "true true true true false");
  EXPECT_EQ(Render("{{ 0 or 'x' }} {{ '' and 'y' }}|{{ not [] }} {{ 1 if 0 "
                   "else 2 }} {{ 'y' if true }}|"
                   "{{ 'n' if false }}|"),
            "x |true 2 y||");
}

TEST(JinjaStatements, IfElifElse) {
  const std::string t =
      "{% if x == 1 %}one{% elif x == 2 %}two{% elif x == 3 %}three{% else "
      "%}many{% endif %}";
  EXPECT_EQ(Render(t, {{"x", 1}}), "one");
  EXPECT_EQ(Render(t, {{"x", 2}}), "two");
  EXPECT_EQ(Render(t, {{"x", 3}}), "three");
  EXPECT_EQ(Render(t, {{"x", 9}}), "many");
}

TEST(JinjaStatements, ForLoopVariablesElseAndFilter) {
  EXPECT_EQ(
      Render("{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 "
             "}}{{ loop.revindex }}"
             "{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}"),
      "103truefalse3;212falsefalse3;321falsetrue3;");
  EXPECT_EQ(Render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(Render("{% for x in [1, 2, 3, 4] if x is even %}{{ x }}/{{ "
                   "loop.length }};{% endfor %}"),
            "2/2;4/2;");
  EXPECT_EQ(Render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
                   {{"d", {{"b", 2}, {"a", 1}}}}),
            "b=2;a=1;");
  EXPECT_EQ(Render("{% for k in d %}{{ k }}{% endfor %}",
                   {{"d", {{"b", 2}, {"a", 1}}}}),
            "ba");
}

TEST(JinjaStatements, BreakAndContinueDropTheirIterationsOutput) {
  // As in the reference: the text an iteration wrote before break or
  // continue is lost, and an else block runs when every iteration
  // continued.
  EXPECT_EQ(Render("{% for x in [1, 2, 3, 4] %}{{ x }}{% if x == 2 %}{% "
                   "continue %}{% endif %}-"
                   "{% if x == 3 %}{% break %}{% endif %}{% endfor %}"),
            "1-");
  EXPECT_EQ(
      Render("{% for x in [1] %}{% continue %}{% else %}else{% endfor %}"),
      "else");
  EXPECT_THAT(Render("{% break %}"),
              HasSubstr("break or continue outside a loop"));
}

TEST(JinjaStatements, SetScopesAndNamespaces) {
  EXPECT_EQ(Render("{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ "
                   "x }}{% endfor %}{{ x }}"),
            "241");
  EXPECT_EQ(Render("{% set ns = namespace(n=0) %}{% for i in [1, 2, 3] %}{% "
                   "set ns.n = ns.n + i %}"
                   "{% endfor %}{{ ns.n }} {{ ns }}"),
            R"(6 {"n": 6})");
  EXPECT_EQ(Render("{% if true %}{% set y = 5 %}{% endif %}{{ y }}"), "5");
  EXPECT_EQ(Render("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
  EXPECT_EQ(
      Render("{% set block %}  inner {{ 1 + 1 }}  {% endset %}[{{ block }}]"),
      "[  inner 2  ]");
  EXPECT_EQ(Render("{% set messages = messages[1:] %}{{ messages|length }}",
                   {{"messages", {1, 2, 3}}}),
            "2");
}

TEST(JinjaStatements, MacrosAndCallBlocks) {
  EXPECT_EQ(Render("{% macro greet(name, greeting='Hello') %}{{ greeting }}, "
                   "{{ name }}!{% endmacro %}"
                   "{{ greet('Ann') }} {{ greet('Bob', 'Hi') }} {{ "
                   "greet(greeting='Yo', name='Cy') }}"),
            "Hello, Ann! Hi, Bob! Yo, Cy!");
  EXPECT_EQ(Render("{% macro kw() %}{{ kwargs }}{{ varargs }}{% endmacro %}{{ "
                   "kw(1, 2, a=3) }}"),
            R"({"a": 3}[1, 2])");
  // Macros see the variables of their call site, as in the reference.
  EXPECT_EQ(Render("{% macro m() %}{{ outer }}{% endmacro %}{% set outer = "
                   "'top' %}{{ m() }}"
                   "{% for outer in ['loop'] %}{{ m() }}{% endfor %}"),
            "toploop");
  EXPECT_EQ(Render("{% macro each(items) %}{% for i in items %}{{ caller(i) "
                   "}}{% endfor %}{% endmacro %}"
                   "{% call(x) each([1, 2]) %}<{{ x }}>{% endcall %}"),
            "<1><2>");
  EXPECT_EQ(Render("{% filter upper %}shout {{ 'this' }}{% endfilter %}"),
            "SHOUT THIS");
}

TEST(JinjaFilters, Strings) {
  EXPECT_EQ(Render("{{ ' x '|trim }}|{{ 'ab'|upper }}|{{ 'AB'|lower }}|{{ 'hi "
                   "there'|title }}|"
                   "{{ 'hI'|capitalize }}|{{ 'abc'|length }}|{{ '😀'|length }}"),
            "x|AB|ab|Hi There|HI|3|2");
  EXPECT_EQ(Render("{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}"),
            "a\n    b\n\n    c|  a\n  b");
  EXPECT_EQ(Render("{{ '42abc'|int }} {{ 'x'|int }} {{ 'x'|int(9) }} {{ "
                   "'3.5e2z'|float }} "
                   "{{ 'abc'|join('-') }} {{ 'a b a'|replace(' ', '_') }} {{ "
                   "'x'|safe }} {{ 'x'|string }}"),
            "42 0 9 350.0 a-b-c a_b_a x x");
}

TEST(JinjaFilters, Lists) {
  EXPECT_EQ(
      Render(
          "{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'c']|sort }} {{ [3, 1, "
          "2]|sort(reverse=true) }} "
          "{{ [1, 2, 3]|first }} {{ [1, 2, 3]|last }} {{ [1, 2, 3]|reverse }} "
          "{{ [1, 2, 2, 1.0, '1']|unique }} {{ [1, none, 'a', 1.5]|join(',') "
          "}} {{ [1, 2]|list }}"),
      R"([1, 2, 3] ["A", "b", "c"] [3, 2, 1] 1 3 [3, 2, 1] [1, 2, "1"] 1,,a,1.5 [1, 2])");
  const ordered_json users = {{"users",
                               {{{"name", "a"}, {"active", true}, {"age", 3}},
                                {{"name", "b"}, {"active", false}, {"age", 1}},
                                {{"name", "c"}, {"age", 2}}}}};
  EXPECT_EQ(
      Render("{{ users|selectattr('active')|map(attribute='name')|join(',') }} "
             "{{ users|rejectattr('active')|map(attribute='name')|list }} "
             "{{ users|selectattr('name', 'equalto', 'b')|list|length }} "
             "{{ users|map(attribute='missing', default='?')|list }} "
             "{{ users|sort(attribute='age')|map(attribute='name')|join }}",
             users),
      R"(a ["b", "c"] 1 ["?", "?", "?"] bca)");
}

TEST(JinjaFilters, TojsonKeepsKeyOrderAndSpacing) {
  const ordered_json ctx = {
      {"x", ordered_json::parse(
                R"({"b": [1, 2.5, {"c": null}], "a": "ü", "e": []})")}};
  EXPECT_EQ(Render("{{ x|tojson }}", ctx),
            R"({"b": [1, 2.5, {"c": null}], "a": "ü", "e": []})");
  EXPECT_EQ(Render("{{ x|tojson(indent=2) }}", ctx),
            "{\n  \"b\": [\n    1,\n    2.5,\n    {\n      \"c\": null\n    "
            "}\n  ],\n  \"a\": \"ü\",\n"
            "  \"e\": []\n}");
  EXPECT_EQ(Render("{{ x|tojson(ensure_ascii=true) }}", ctx),
            R"({"b": [1, 2.5, {"c": null}], "a": "\u00fc", "e": []})");
  EXPECT_EQ(Render("{{ x|tojson(separators=(',', ':')) }}", ctx),
            R"({"b":[1,2.5,{"c":null}],"a":"ü","e":[]})");
  // Array-index keys come first in every JavaScript object.
  EXPECT_EQ(
      Render("{{ d|tojson }}",
             {{"d", ordered_json::parse(R"({"b": 1, "10": 2, "2": 3})")}}),
      R"({"2": 3, "10": 2, "b": 1})");
}

TEST(JinjaFilters, DefaultAndObjects) {
  EXPECT_EQ(Render("{{ nope|default('dflt') }}|{{ none|default('dflt') }}|{{ "
                   "''|default('e', true) }}|"
                   "{{ 0|default(5, boolean=true) }}"),
            "dflt||e|5");
  const ordered_json d = {{"d", {{"b", 2}, {"a", 1}}}};
  EXPECT_EQ(
      Render("{{ d.keys() }} {{ d.values() }} {{ d.get('a') }} {{ d.get('z', "
             "'dflt') }} "
             "{{ d|length }} {{ d|items }} {{ d|dictsort }}",
             d),
      R"(["b", "a"] [2, 1] 1 dflt 2 [["b", 2], ["a", 1]] [["a", 1], ["b", 2]])");
}

TEST(JinjaTests, Builtins) {
  EXPECT_EQ(
      Render("{{ 1 is number }}{{ 1.5 is integer }}{{ 'a' is string }}{{ none "
             "is none }}"
             "{{ x is defined }}{{ y is undefined }}{{ [1] is iterable }}{{ {} "
             "is mapping }}"
             "{{ [] is sequence }}{{ true is boolean }}{{ 3 is odd }}{{ 4 is "
             "even }}"
             "{{ true is true }}{{ 0 is false }}{{ 'abc' is lower }}{{ 'ABC' "
             "is upper }}"
             "{{ x is not none }}",
             {{"x", 0}}),
      "truefalsetruetruetruetruetruetruetruetruetruetruetruefalsetruetruetrue");
}

TEST(JinjaMethods, Strings) {
  EXPECT_EQ(
      Render("{{ '  hi  '.strip() }}|{{ ' a '.lstrip() }}|{{ ' a '.rstrip() }}|"
             "{{ 'hello world'.title() }}|{{ 'abc'.startswith('a') }}{{ "
             "'abc'.endswith(('x', 'c')) }}|"
             "{{ 'a,b,,c'.split(',') }}|{{ '  a  b '.split() }}|{{ "
             "'aaa'.replace('a', 'b', 2) }}|"
             "{{ 'Hi'.upper() }}{{ 'Hi'.lower() }}"),
      R"(hi|a | a|Hello World|truetrue|["a", "b", "", "c"]|["a", "b"]|bba|HIhi)");
  // Python would strip only "x"; the reference ignores the argument.
  EXPECT_EQ(
      Render("{{ 'xxhixx'.strip('x') }}|{{ '\\n\\nq \\n'.rstrip('\\n') }}"),
      "xxhixx|\n\nq");
}

TEST(JinjaGlobals, RangeNamespaceStrftimeRaise) {
  EXPECT_EQ(
      Render("{{ range(3) }} {{ range(1, 10, 3) }} {{ range(5, 0, -2) }}"),
      "[0, 1, 2] [1, 4, 7] [5, 3, 1]");
  EXPECT_EQ(Render("{{ namespace({'k': 1}, z=2).z }} {{ strftime_now('%%') }} "
                   "{{ strftime_now('%Y')|length }}"),
            "2 % 4");
  absl::StatusOr<std::string> raised =
      TryRender("before{{ raise_exception('boom: ' ~ 42) }}after");
  ASSERT_FALSE(raised.ok());
  EXPECT_EQ(raised.status().message(), std::string(kRaisedPrefix) + "boom: 42");
}

TEST(JinjaWhitespace, DashesTrimAndLstripBlocks) {
  // trim_blocks drops the newline after a tag, lstrip_blocks the indent
  // before one; {{ }} keeps both; a dash strips all whitespace on its side.
  EXPECT_EQ(Render("line1\n  {% if true %}\n    yes\n  {% endif %}\nline2\n{{- "
                   "' joined' }}\n"
                   "  {{ 'kept' -}}   \n  after\n{# comment #}\nend\n"),
            "line1\n    yes\nline2 joined\n  keptafter\nend");
  EXPECT_EQ(Render("  {{ 'expr' }}\n\t{% if true %}tab{% endif %}\n   {# c "
                   "#}\ntext {% if true %}\nmid{% endif %}"),
            "  expr\ntabtext mid");
  // The reference applies trim_blocks to the text itself, tags or not.
  EXPECT_EQ(Render("50%}\nnext"), "50%}next");
  // The last newline of a template is dropped, the one before it kept.
  EXPECT_EQ(Render("x\n\n"), "x\n");
  // Unicode spaces count as whitespace, as in JavaScript.
  EXPECT_EQ(Render("{{- 'a' }}\u00a0\u3000 {{- 'b' }}"), "ab");
  EXPECT_EQ(Preprocess("  {% if x %}\n  y\n{% endif %}\n"),
            "{% if x %}  y\n{% endif %}");
}

TEST(JinjaWhitespace, GenerationTagsVanish) {
  EXPECT_EQ(Render("a{% generation %}b{% endgeneration %}c {%- generation -%}  "
                   "d  {%- endgeneration %}"),
            "abcd");
}

TEST(JinjaRefusals, UnsupportedAndUnknownConstructsAreNamedWithTheirLine) {
  EXPECT_EQ(ParseError("line one\n{{ x }}\n{% include 'other.jinja' %}"),
            "chat template line 3: unsupported tag 'include'");
  EXPECT_EQ(ParseError("{% extends 'base.jinja' %}"),
            "chat template line 1: unsupported tag 'extends'");
  EXPECT_EQ(ParseError("{% block body %}{% endblock %}"),
            "chat template line 1: unsupported tag 'block'");
  EXPECT_EQ(ParseError("{% import 'm.jinja' as m %}"),
            "chat template line 1: unsupported tag 'import'");
  EXPECT_EQ(ParseError("a\nb\n{{ x|frobnicate }}"),
            "chat template line 3: unknown filter 'frobnicate'");
  EXPECT_EQ(ParseError("{{ x is prime }}"),
            "chat template line 1: unknown test 'prime'");
  EXPECT_EQ(ParseError("{% whatever %}"),
            "chat template line 1: unknown tag 'whatever'");
  EXPECT_EQ(ParseError("x{% endif %}"),
            "chat template line 1: unexpected tag 'endif'");
  EXPECT_EQ(ParseError("{% for x in xs recursive %}{% endfor %}"),
            "chat template line 1: unsupported loop modifier 'recursive'");
  EXPECT_EQ(ParseError("{{ x is eq(3) }}"),
            "chat template line 1: unsupported test with arguments 'eq(...)'");
  EXPECT_EQ(ParseError("{{ users|selectattr(name) }}"),
            "chat template line 1: the arguments of 'selectattr' must be "
            "string literals");
}

TEST(JinjaRefusals, UnclosedBlocksAndSyntaxErrors) {
  EXPECT_EQ(ParseError("a\n{% if true %}x\n\n"),
            "chat template line 2: unclosed 'if' block: expected {% endif %}");
  EXPECT_EQ(
      ParseError("{% for x in xs %}x"),
      "chat template line 1: unclosed 'for' block: expected {% endfor %}");
  EXPECT_EQ(
      ParseError("{% macro m() %}x"),
      "chat template line 1: unclosed 'macro' block: expected {% endmacro %}");
  EXPECT_THAT(ParseError("{{ 'abc }}"),
              StartsWith("chat template line 1: Unexpected end of input"));
  EXPECT_THAT(ParseError("x\n{# never closed"),
              StartsWith("chat template line 2: Missing end of comment tag"));
  EXPECT_THAT(ParseError("{{ '\\q' }}"),
              HasSubstr("Unexpected escaped character: q"));
  EXPECT_THAT(ParseError("{{ a ! b }}"), HasSubstr("Unexpected character: !"));
  EXPECT_THAT(ParseError("{{ 1e3 }}"), HasSubstr("expected '}}', got 'e3'"));
  EXPECT_THAT(ParseError("{{ x"), StartsWith("chat template line 1:"));
  // Lines are those of the template as written, after trim_blocks removed
  // newlines.
  EXPECT_EQ(
      ParseError(
          "{% if a %}\n{% if b %}\n{% endif %}\n{% endif %}\n{{ x|nope }}"),
      "chat template line 5: unknown filter 'nope'");
  EXPECT_THAT(ParseError(std::string("ok \xff bad")),
              HasSubstr("invalid UTF-8"));
}

TEST(JinjaRenderErrors, NameTheLine) {
  EXPECT_EQ(
      Render("a\n{{ none + 1 }}"),
      "ERROR: chat template line 2: Cannot perform operation + on null values");
  EXPECT_EQ(Render("{{ [1]|trim }}"),
            "ERROR: chat template line 1: Unknown ArrayValue filter: trim");
  EXPECT_EQ(Render("{% for x in 'abc' %}{% endfor %}"),
            "ERROR: chat template line 1: Expected iterable or object type in "
            "for loop: got StringValue");
  EXPECT_EQ(Render("{{ (1, 2) }}"),
            "ERROR: chat template line 1: Cannot convert to JSON: TupleValue");
  EXPECT_EQ(Render("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}"),
            "ERROR: chat template line 1: macro 'm' takes not more than 1 "
            "argument(s)");
  EXPECT_EQ(Render("{{ x() }}", {{"x", 1}}),
            "ERROR: chat template line 1: Cannot call something that is not a "
            "function: got IntegerValue");
  // The reference would print a macro's JavaScript source.
  EXPECT_THAT(Render("{% macro m() %}{% endmacro %}{{ m }}"),
              HasSubstr("cannot print the function 'm'"));
  // Globals cannot be given again as variables.
  EXPECT_EQ(Render("x", {{"namespace", 1}}),
            "ERROR: chat template: variable already declared: namespace");
}

TEST(JinjaLimits, RecursionRangeAndSteps) {
  EXPECT_THAT(Render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
              HasSubstr("nests deeper than 400 evaluations"));
  EXPECT_EQ(Render("{% macro f(n) %}{{ f(n + 1) if n < 40 else n }}"
                   "{% endmacro %}{{ f(0) }}"),
            "40");
  EXPECT_THAT(Render("{{ range(100000000)|length }}"),
              HasSubstr("range() too long"));
  EXPECT_THAT(Render("{% for a in range(1000) %}{% for b in range(1000) %}{% "
                     "for c in range(3) %}"
                     "{% endfor %}{% endfor %}{% endfor %}"),
              HasSubstr("too many steps"));
}

// Found by tests/fuzz/chat_template_fuzzer and its sanitizers: a double
// index or indent beyond int64 was cast to an integer (undefined behaviour,
// UBSan), and a template could exhaust memory or the stack with a few bytes
// of source. Each now fails the render, or returns what the reference does.
TEST(JinjaLimits, HugeIndexesAndIndentsAreNotCastToIntegers) {
  EXPECT_EQ(Render("[{{ 'abc'[100000000000000000000] }}]"), "[]");
  EXPECT_EQ(Render("[{{ 'abc'[-100000000000000000000] }}]"), "[]");
  EXPECT_EQ(Render("[{{ 'abc'[-1] }}]"), "[c]");
  EXPECT_THAT(Render("{{ [1]|tojson(indent=100000000000000000000) }}"),
              HasSubstr("a string of more than"));
  EXPECT_EQ(Render("{{ [1]|tojson(indent=2) }}"), "[\n  1\n]");
}

TEST(JinjaLimits, TextAndArraysCannotExhaustMemory) {
  EXPECT_THAT(Render("{% set ns = namespace(s='x') %}{% for i in range(40) %}"
                     "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}"),
              HasSubstr("a string of more than 16777216 bytes"));
  EXPECT_THAT(Render("{% set ns = namespace(a=[1]) %}{% for i in range(40) %}"
                     "{% set ns.a = ns.a + ns.a %}{% endfor %}"),
              HasSubstr("an array of more than 4194304 items"));
  EXPECT_THAT(Render("{{ 'a\nb'|indent(1000000000000) }}"),
              HasSubstr("a string of more than"));
  EXPECT_THAT(Render("{{ range(1000000)|tojson(indent=100) }}"),
              HasSubstr("a string of more than"));
  EXPECT_THAT(Render("{{ range(1000000)|join('xxxxxxxxxxxxxxxxxxxxxxxxx') }}"),
              HasSubstr("a string of more than"));
  EXPECT_THAT(Render("{{ ('x' ~ range(10000)|join(''))|replace('', "
                     "range(3000)|join('')) }}"),
              HasSubstr("a string of more than"));
  EXPECT_THAT(Render("{% for i in range(20000) %}{{ range(1000)|join }}"
                     "{% endfor %}"),
              HasSubstr("a string of more than"));
}

TEST(JinjaLimits, NestingCannotExhaustTheStack) {
  const auto repeat = [](std::string_view s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += s;
    return out;
  };
  EXPECT_THAT(
      ParseError("{{ " + repeat("(", 1500) + "1" + repeat(")", 1500) + " }}"),
      HasSubstr("nested deeper than 64 levels"));
  EXPECT_THAT(ParseError("{{ " + repeat("[", 1500) + repeat("]", 1500) + " }}"),
              HasSubstr("nested deeper than 64 levels"));
  EXPECT_THAT(ParseError("{{ " + repeat("not ", 1500) + "1 }}"),
              HasSubstr("nested deeper than 64 levels"));
  EXPECT_THAT(ParseError(repeat("{% if 1 %}", 1500)),
              HasSubstr("nested deeper than 64 levels"));
  // A left-deep chain nests in the interpreter, not in the parser.
  EXPECT_THAT(Render("{{ 1" + repeat(" + 1", 3000) + " }}"),
              HasSubstr("nests deeper than 400 evaluations"));
  EXPECT_EQ(Render("{{ 1" + repeat(" + 1", 99) + " }}"), "100");
  // Arrays wrapped in themselves were freed recursively, past the stack.
  EXPECT_THAT(Render("{% set ns = namespace(a=[]) %}{% for i in range(200000) "
                     "%}{% set ns.a = [ns.a] %}{% endfor %}"),
              HasSubstr("values nested deeper than 100"));
  // A namespace holding itself was never freed (LeakSanitizer).
  EXPECT_THAT(Render("{% set ns = namespace(a=1) %}{% set ns.a = ns %}"),
              HasSubstr("a namespace cannot hold itself"));
  EXPECT_THAT(Render("{% set a = namespace() %}{% set b = namespace(x=[a]) %}"
                     "{% set a.y = {'k': b} %}"),
              HasSubstr("a namespace cannot hold itself"));
  EXPECT_EQ(Render("{% set a = namespace(v=1) %}{% set b = namespace(x=a) %}"
                   "{{ b.x.v }}"),
            "1");
}

// Jinja's, which the reference lacks; hydra gives them Jinja's meaning.
TEST(JinjaExtensions, CountEscapeWordcountSelectReject) {
  EXPECT_EQ(Render("{{ [1, 2, 3]|count }} {{ 'abc'|count }}"), "3 3");
  EXPECT_EQ(Render("{{ '<a href=\"x\">&\\'</a>'|e }} {{ '<b>'|escape }}"),
            "&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt; &lt;b&gt;");
  EXPECT_EQ(Render("{{ 'one two,three  four_five é'|wordcount }}"), "5");
  EXPECT_EQ(Render("{{ [1, 2, 3, 4]|select('even')|list }} {{ [1, 2, 3, "
                   "4]|reject('odd')|list }} "
                   "{{ ['a', 'code_interpreter']|reject('equalto', "
                   "'code_interpreter')|join(', ') }} "
                   "{{ [0, 1, '', 'x']|select|list }}"),
            R"([2, 4] [2, 4] a [1, "x"])");
  EXPECT_EQ(Render("{{ nope|d('dflt') }}"), "dflt");
}

TEST(JsText, NumbersAndStrings) {
  EXPECT_EQ(JsNumberToString(1e21), "1e+21");
  EXPECT_EQ(JsNumberToString(123456789012345680000.0), "123456789012345680000");
  EXPECT_EQ(JsNumberToString(-1.5e-7), "-1.5e-7");
  EXPECT_EQ(JsNumberToString(5e-324), "5e-324");
  EXPECT_EQ(JsToFixed1(123456789012345680000.0), "123456789012345683968.0");
  EXPECT_EQ(JsStringToNumber(" 0x1F "), 31);
  EXPECT_EQ(JsParseInt("  -12.9px"), -12);
  EXPECT_EQ(JsParseFloat("1.5e3x"), 1500);
  EXPECT_EQ(Utf16Length("a\xF0\x9F\x98\x80"), 3u);
  EXPECT_EQ(JsonQuote("\xF0\x9F\x98\x80\x7f", true), R"("\ud83d\ude00\u007f")");
  EXPECT_EQ(ToUpperJs("stra\xC3\x9F"
                      "e"),
            "STRASSE");
  // U+FFFF sorts after U+1F600 (D83D DE00) by UTF-16 code units.
  EXPECT_GT(CompareUtf16("\xEF\xBF\xBF", "\xF0\x9F\x98\x80"), 0);
}

}  // namespace
}  // namespace hydra::model::chat_template::jinja
