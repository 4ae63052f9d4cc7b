// String operations with JavaScript's semantics, on UTF-8 text.
//
// The reference renderer (@huggingface/jinja) runs on JavaScript strings:
// UTF-16 code units, its own whitespace set (`\s`, String.prototype.trim),
// Unicode case mapping, UTF-16 ordering. hydra keeps strings as UTF-8 and
// reproduces those results here so that rendered prompts match byte for
// byte. A lone surrogate (which JS strings can hold, e.g. from "\ud83d")
// is kept as its 3-byte generalized UTF-8 ("WTF-8") form and joined with a
// following low surrogate when two strings are concatenated, as JS does.
#ifndef HYDRA_MODEL_CHAT_TEMPLATE_JINJA_JS_TEXT_H_
#define HYDRA_MODEL_CHAT_TEMPLATE_JINJA_JS_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hydra::model::chat_template::jinja {

// One code point decoded from (generalized) UTF-8: its value and its length
// in bytes. Invalid bytes decode one at a time as U+FFFD.
struct DecodedChar {
  char32_t code_point;
  size_t size;
};
DecodedChar DecodeUtf8(std::string_view s, size_t pos);

// Appends `cp` as UTF-8; surrogates (U+D800..U+DFFF) get their 3-byte form.
void AppendUtf8(char32_t cp, std::string& out);

// dst += src, joining a trailing high surrogate of dst with a leading low
// surrogate of src into one 4-byte character, as JS concatenation does.
void AppendJs(std::string& dst, std::string_view src);

// JavaScript's whitespace (the `\s` class, what trim() removes).
bool IsJsWhitespace(char32_t cp);
// Byte length of the whitespace character starting at `pos` (0 if none).
size_t JsWhitespaceAt(std::string_view s, size_t pos);
// Byte length of the whitespace character ending at `end` (0 if none).
size_t JsWhitespaceBefore(std::string_view s, size_t end);

std::string_view TrimStartJs(std::string_view s);
std::string_view TrimEndJs(std::string_view s);
std::string_view TrimJs(std::string_view s);

// String.prototype.length: UTF-16 code units.
size_t Utf16Length(std::string_view s);
// String.prototype.at(index): one UTF-16 code unit (a lone surrogate for
// half of an astral character); nullopt when out of range.
std::optional<std::string> CodeUnitAt(std::string_view s, int64_t index);
// Array.from(s): the code points, each as its own string.
std::vector<std::string> SplitCodePoints(std::string_view s);

// toUpperCase()/toLowerCase(): full Unicode case mapping (ICU, root locale).
std::string ToUpperJs(std::string_view s);
std::string ToLowerJs(std::string_view s);

// a < b as JavaScript compares strings: by UTF-16 code units.
int CompareUtf16(std::string_view a, std::string_view b);
// a.localeCompare(b) under the root collation (ICU).
int LocaleCompare(std::string_view a, std::string_view b);

// Number.prototype.toString(): the shortest round-trip digits, laid out as
// JavaScript does ("1e+21", "0.000001", "1e-7", "-0" prints as "0").
std::string JsNumberToString(double v);
// Number.prototype.toFixed(1) for an integral value (exact digits below
// 1e21, like JavaScript).
std::string JsToFixed1(double v);
// Number(s) for a string: NaN when it is not a numeric literal.
double JsStringToNumber(std::string_view s);
// parseInt(s, 10) and parseFloat(s): NaN when no digits lead.
double JsParseInt(std::string_view s);
double JsParseFloat(std::string_view s);

// JSON.stringify(s): quotes, escapes and (ensure_ascii) \uXXXX for every
// UTF-16 code unit from U+007F on.
std::string JsonQuote(std::string_view s, bool ensure_ascii);

}  // namespace hydra::model::chat_template::jinja

#endif  // HYDRA_MODEL_CHAT_TEMPLATE_JINJA_JS_TEXT_H_
