#include "model/chat_template/jinja/filters.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/chat_template/jinja/absl_compat.h"
#include "model/chat_template/jinja/builtins.h"
#include "model/chat_template/jinja/interpreter.h"
#include "model/chat_template/jinja/js_text.h"

namespace hydra::model::chat_template::jinja {
namespace {

absl::Status Fail(std::string_view message) {
  return absl::InvalidArgumentError(std::string(message));
}

absl::Status Unknown(std::string_view name, const Value& operand) {
  switch (operand.type()) {
    case Value::Type::kArray:
    case Value::Type::kString:
    case Value::Type::kObject:
    case Value::Type::kBool:
      return Fail(Cat("Unknown ", TypeName(operand), " filter: ", name));
    case Value::Type::kInteger:
    case Value::Type::kFloat:
      return Fail(Cat("Unknown NumericValue filter: ", name));
    default:
      return Fail(Cat("Cannot apply filter \"", name,
                      "\" to type: ", TypeName(operand)));
  }
}

// s.split(c), keeping empty parts.
std::vector<std::string_view> SplitOn(std::string_view s, char c) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = s.find(c); i != std::string_view::npos;
       i = s.find(c, start)) {
    parts.push_back(s.substr(start, i - start));
    start = i + 1;
  }
  parts.push_back(s.substr(start));
  return parts;
}

// JavaScript truthiness of the underlying value (arrays and objects are
// always true), which some filter flags use instead of Python's.
bool JsTruthy(const Value& v) {
  switch (v.type()) {
    case Value::Type::kArray:
    case Value::Type::kObject:
    case Value::Type::kNamespace:
    case Value::Type::kFunction:
      return true;
    default:
      return Truthy(v);
  }
}

// Positional argument i, else keyword `name`, else `fallback`.
Value Arg(const CallArgs& args, size_t i, std::string_view name,
          Value fallback) {
  if (i < args.positional.size()) return args.positional[i];
  if (const Value* v = args.Keyword(name)) return *v;
  return fallback;
}

absl::StatusOr<Value> CallMethod(const Value& method, CallArgs args) {
  Environment unused;
  return method.function().call(args, unused);
}

// A dotted path into objects and arrays ("a.b", "items.0"), for sort and map.
Value AttributeAt(const Value& item, std::string_view path) {
  Value v = item;
  for (std::string_view part : SplitOn(path, '.')) {
    if (v.is_attribute_container()) {
      const Value* next = v.object().Find(part);
      v = next ? *next : Value();
    } else if (v.is_array()) {
      // parseInt(part, 10): leading digits count, the rest is ignored.
      const double index = JsParseInt(part);
      if (std::isnan(index) || index < 0 ||
          index >= static_cast<double>(v.array().items.size())) {
        return Value();
      }
      v = v.array().items[static_cast<size_t>(index)];
    } else {
      return Value();
    }
  }
  return v;
}

absl::StatusOr<Value> SortedCopy(const Value& array, bool reverse,
                                 bool case_sensitive, const Value& attribute) {
  std::vector<Value> items = array.array().items;
  std::string path;
  if (attribute.is_integer()) path = JsNumberToString(attribute.number());
  if (attribute.is_string()) path = attribute.str();
  absl::Status error;
  // A comparison that fails makes the whole sort fail, whatever the order
  // the algorithm compares in: values of two incomparable kinds always
  // meet in some comparison.
  std::stable_sort(
      items.begin(), items.end(), [&](const Value& a, const Value& b) {
        if (!error.ok()) return false;
        const Value x = attribute.is_none() ? a : AttributeAt(a, path);
        const Value y = attribute.is_none() ? b : AttributeAt(b, path);
        absl::StatusOr<int> c = CompareValues(x, y, case_sensitive);
        if (!c.ok()) {
          error = c.status();
          return false;
        }
        return (reverse ? -*c : *c) < 0;
      });
  RETURN_IF_ERROR(error);
  return Value::MakeArray(std::move(items));
}

absl::StatusOr<Value> Join(const Value& operand, const std::string& separator) {
  std::string out;
  if (operand.is_string()) {
    const std::vector<std::string> chars = SplitCodePoints(operand.str());
    for (size_t i = 0; i < chars.size(); ++i) {
      if (i > 0) out += separator;
      AppendJs(out, chars[i]);
    }
    return Value::String(std::move(out));
  }
  const auto& items = operand.array().items;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) AppendJs(out, separator);
    // Array.prototype.join: null and undefined join as "".
    if (items[i].is_none() || items[i].is_undefined()) continue;
    ASSIGN_OR_RETURN(std::string s, ToJsPrimitiveString(items[i]));
    AppendJs(out, s);
    // Many items and a long separator multiply: bounded as it grows.
    RETURN_IF_ERROR(CheckStringBytes(out.size()));
  }
  return Value::String(std::move(out));
}

std::string Indent(const std::string& s, size_t width, bool first, bool blank) {
  const std::string pad(width, ' ');
  std::string out;
  size_t line = 0;
  for (std::string_view part : SplitOn(s, '\n')) {
    if (line > 0) out += '\n';
    if ((first || line > 0) && (blank || !part.empty())) out += pad;
    out.append(part);
    ++line;
  }
  return out;
}

Value Unique(const Value& array) {
  std::vector<Value> out;
  for (const Value& item : array.array().items) {
    bool seen = false;
    for (const Value& kept : out) seen = seen || SameValueZero(kept, item);
    if (!seen) out.push_back(item);
  }
  return Value::MakeArray(std::move(out));
}

// Jinja's escape (markupsafe): & < > " ' as entities.
std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Jinja's wordcount: runs of word characters (\w, Unicode).
int64_t WordCount(std::string_view s) {
  int64_t words = 0;
  bool in_word = false;
  for (size_t i = 0; i < s.size();) {
    const DecodedChar d = DecodeUtf8(s, i);
    const bool word =
        d.code_point == '_' || u_isalnum(static_cast<UChar32>(d.code_point));
    if (word && !in_word) ++words;
    in_word = word;
    i += d.size;
  }
  return words;
}

// Jinja's select/reject(test, arg): items for which the test holds (or,
// without a test, which are true).
absl::StatusOr<Value> SelectItems(const Value& array, const CallArgs* args,
                                  bool keep) {
  std::string test;
  const Value* argument = nullptr;
  if (args != nullptr && !args->positional.empty()) {
    if (!args->positional[0].is_string())
      return Fail("the test name must be a string");
    test = args->positional[0].str();
    if (!IsKnownTest(test)) return Fail(Cat("Unknown test: ", test));
    if (args->positional.size() > 1) argument = &args->positional[1];
  }
  std::vector<Value> out;
  for (const Value& item : array.array().items) {
    bool result = Truthy(item);
    if (!test.empty()) {
      ASSIGN_OR_RETURN(result, ApplyTest(test, item, argument));
    }
    if (result == keep) out.push_back(item);
  }
  return Value::MakeArray(std::move(out));
}

absl::StatusOr<Value> Bare(std::string_view name, const Value& operand) {
  if (name == "safe") return operand;
  if (name == "tojson") {
    ASSIGN_OR_RETURN(std::string json, ToJson(operand, JsonOptions{}));
    return Value::String(std::move(json));
  }
  if (name == "e" || name == "escape") {
    if (!operand.is_string()) return Unknown(name, operand);
    return Value::String(HtmlEscape(operand.str()));
  }
  if (operand.is_array()) {
    const auto& items = operand.array().items;
    if (name == "list") return operand;
    if (name == "first" || name == "last") {
      // The reference hands back JavaScript's undefined, which breaks
      // whatever uses it next.
      if (items.empty()) return Fail(Cat(name, " of an empty list"));
      return name == "first" ? items.front() : items.back();
    }
    if (name == "length")
      return Value::Integer(static_cast<double>(items.size()));
    if (name == "reverse") {
      return Value::MakeArray(std::vector<Value>(items.rbegin(), items.rend()));
    }
    if (name == "sort") return SortedCopy(operand, false, false, Value::None());
    if (name == "join") return Join(operand, "");
    if (name == "string") {
      JsonOptions o;
      o.undefined_as_null = false;
      ASSIGN_OR_RETURN(std::string s, ToJson(operand, o));
      return Value::String(std::move(s));
    }
    if (name == "unique") return Unique(operand);
    if (name == "select" || name == "reject") {
      return SelectItems(operand, nullptr, name == "select");
    }
    return Unknown(name, operand);
  }
  if (operand.is_string()) {
    const std::string& s = operand.str();
    if (name == "length")
      return Value::Integer(static_cast<double>(Utf16Length(s)));
    if (name == "upper" || name == "lower" || name == "title" ||
        name == "capitalize") {
      return CallMethod(StringMethod(operand, name), CallArgs{});
    }
    if (name == "trim") return Value::String(std::string(TrimJs(s)));
    if (name == "indent") return Value::String(Indent(s, 4, false, false));
    if (name == "join" || name == "string") return operand;
    if (name == "int") {
      const double v = JsParseInt(s);
      return Value::Integer(std::isnan(v) ? 0 : v);
    }
    if (name == "float") {
      const double v = JsParseFloat(s);
      return Value::Float(std::isnan(v) ? 0 : v);
    }
    if (name == "wordcount")
      return Value::Integer(static_cast<double>(WordCount(s)));
    return Unknown(name, operand);
  }
  if (operand.is_number()) {
    const double v = operand.number();
    if (name == "abs") {
      return operand.is_integer() ? Value::Integer(std::fabs(v))
                                  : Value::Float(std::fabs(v));
    }
    if (name == "int") return Value::Integer(std::floor(v));
    if (name == "float") return Value::Float(v);
    if (name == "string") {
      ASSIGN_OR_RETURN(std::string s, ToString(operand));
      return Value::String(std::move(s));
    }
    return Unknown(name, operand);
  }
  if (operand.is_object()) {
    if (name == "items")
      return CallMethod(ObjectMethod(operand, "items"), CallArgs{});
    if (name == "length") {
      return Value::Integer(
          static_cast<double>(operand.object().entries.size()));
    }
    const Value method = ObjectMethod(operand, name);
    if (method.is_function()) return CallMethod(method, CallArgs{});
    return Unknown(name, operand);
  }
  if (operand.is_bool()) {
    const bool b = operand.bool_value();
    if (name == "bool") return operand;
    if (name == "int") return Value::Integer(b ? 1 : 0);
    if (name == "float") return Value::Float(b ? 1 : 0);
    if (name == "string") return Value::String(b ? "true" : "false");
    return Unknown(name, operand);
  }
  return Unknown(name, operand);
}

absl::StatusOr<Value> ToJsonFilter(const Value& operand, const CallArgs& args) {
  JsonOptions o;
  const Value* indent = args.Keyword("indent");
  if (indent != nullptr && !indent->is_integer() && !indent->is_none()) {
    return Fail("If set, indent must be a number");
  }
  if (indent != nullptr && indent->is_integer()) {
    // Compared as a double first: casting 1e20 to int64 is undefined.
    if (indent->number() > static_cast<double>(kMaxStringBytes)) {
      return CheckStringBytes(kMaxStringBytes + 1);
    }
    o.indent = static_cast<int64_t>(indent->number());
  }
  const Value* ascii = args.Keyword("ensure_ascii");
  if (ascii != nullptr && !ascii->is_bool()) {
    return Fail("If set, ensure_ascii must be a boolean");
  }
  o.ensure_ascii = ascii != nullptr && ascii->bool_value();
  const Value* sort = args.Keyword("sort_keys");
  if (sort != nullptr && !sort->is_bool())
    return Fail("If set, sort_keys must be a boolean");
  o.sort_keys = sort != nullptr && sort->bool_value();
  if (const Value* seps = args.Keyword("separators");
      seps && !seps->is_none()) {
    if (!seps->is_array() || seps->array().items.size() != 2 ||
        !seps->array().items[0].is_string() ||
        !seps->array().items[1].is_string()) {
      return Fail("separators must be a tuple of two strings");
    }
    o.separators.emplace(seps->array().items[0].str(),
                         seps->array().items[1].str());
  }
  ASSIGN_OR_RETURN(std::string json, ToJson(operand, o));
  return Value::String(std::move(json));
}

absl::StatusOr<Value> SelectAttr(const Value& operand, const CallArgs& args,
                                 bool select) {
  const std::string name = select ? "selectattr" : "rejectattr";
  for (const Value& item : operand.array().items) {
    if (!item.is_attribute_container()) {
      return Fail(Cat("`", name, "` can only be applied to array of objects"));
    }
  }
  // The parser lets only string literals through; checked again here so
  // that no other caller can reach str() on something else.
  for (const Value& arg : args.positional) {
    if (!arg.is_string()) {
      return Fail(Cat("arguments of `", name, "` must be strings"));
    }
  }
  if (args.positional.empty())
    return Fail(Cat("`", name, "` needs an attribute"));
  const std::string& attr = args.positional[0].str();
  std::string test;
  if (args.positional.size() > 1) {
    test = args.positional[1].str();
    if (!IsKnownTest(test)) return Fail(Cat("Unknown test: ", test));
  }
  const Value* argument =
      args.positional.size() > 2 ? &args.positional[2] : nullptr;
  std::vector<Value> out;
  for (const Value& item : operand.array().items) {
    const Value* a = item.object().Find(attr);
    bool result = false;
    if (a != nullptr) {
      if (test.empty()) {
        result = Truthy(*a);
      } else {
        ASSIGN_OR_RETURN(result, ApplyTest(test, *a, argument));
      }
    }
    if (result == select) out.push_back(item);
  }
  return Value::MakeArray(std::move(out));
}

absl::StatusOr<Value> MapAttribute(const Value& operand, const CallArgs& args) {
  const Value* attr = args.Keyword("attribute");
  if (attr == nullptr) {
    return Fail(
        "`map` expressions without `attribute` set are not currently "
        "supported.");
  }
  if (!attr->is_string()) return Fail("attribute must be a string");
  const Value* fallback = args.Keyword("default");
  std::vector<Value> out;
  for (const Value& item : operand.array().items) {
    if (!item.is_attribute_container())
      return Fail("items in map must be an object");
    Value v = AttributeAt(item, attr->str());
    if (v.is_undefined() && fallback != nullptr) v = *fallback;
    out.push_back(std::move(v));
  }
  return Value::MakeArray(std::move(out));
}

absl::StatusOr<Value> Called(std::string_view name, const Value& operand,
                             const CallArgs& args) {
  if (name == "tojson") return ToJsonFilter(operand, args);
  if (name == "join") {
    if (!operand.is_string() && !operand.is_array()) {
      return Fail(
          Cat("Cannot apply filter \"join\" to type: ", TypeName(operand)));
    }
    const Value sep = Arg(args, 0, "separator", Value::String(""));
    if (!sep.is_string()) return Fail("separator must be a string");
    return Join(operand, sep.str());
  }
  if (name == "int" || name == "float") {
    const bool is_int = name == "int";
    const Value fallback =
        Arg(args, 0, "default", is_int ? Value::Integer(0) : Value::Float(0));
    if (operand.is_string()) {
      const double v =
          is_int ? JsParseInt(operand.str()) : JsParseFloat(operand.str());
      if (std::isnan(v)) return fallback;
      return is_int ? Value::Integer(v) : Value::Float(v);
    }
    if (operand.is_number()) return operand;
    if (operand.is_bool()) {
      const double v = operand.bool_value() ? 1 : 0;
      return is_int ? Value::Integer(v) : Value::Float(v);
    }
    return Fail(
        Cat("Cannot apply filter \"", name, "\" to type: ", TypeName(operand)));
  }
  if (name == "default") {
    const Value fallback =
        args.positional.empty() ? Value::String("") : args.positional[0];
    const Value boolean = Arg(args, 1, "boolean", Value::Bool(false));
    if (!boolean.is_bool())
      return Fail("`default` filter flag must be a boolean");
    if (operand.is_undefined() || (boolean.bool_value() && !Truthy(operand))) {
      return fallback;
    }
    return operand;
  }
  if (operand.is_array()) {
    if (name == "sort") {
      const Value reverse = Arg(args, 0, "reverse", Value::Bool(false));
      if (!reverse.is_bool()) return Fail("reverse must be a boolean");
      const Value case_sensitive =
          Arg(args, 1, "case_sensitive", Value::Bool(false));
      if (!case_sensitive.is_bool())
        return Fail("case_sensitive must be a boolean");
      const Value attribute = Arg(args, 2, "attribute", Value::None());
      if (!attribute.is_string() && !attribute.is_integer() &&
          !attribute.is_none()) {
        return Fail("attribute must be a string, integer, or null");
      }
      return SortedCopy(operand, reverse.bool_value(),
                        case_sensitive.bool_value(), attribute);
    }
    if (name == "selectattr" || name == "rejectattr") {
      return SelectAttr(operand, args, name == "selectattr");
    }
    if (name == "map") return MapAttribute(operand, args);
    if (name == "select" || name == "reject") {
      return SelectItems(operand, &args, name == "select");
    }
    return Unknown(name, operand);
  }
  if (operand.is_string()) {
    if (name == "indent") {
      const Value width = Arg(args, 0, "width", Value::Integer(4));
      if (!width.is_integer()) return Fail("width must be a number");
      if (width.number() < 0)
        return Fail("Invalid count value: negative indent");
      // Every line gets `width` spaces: bounded before any is written (and
      // before a huge double is cast to size_t, which is undefined).
      const double lines =
          1 + std::count(operand.str().begin(), operand.str().end(), '\n');
      RETURN_IF_ERROR(CheckStringBytes(static_cast<size_t>(
          std::min(width.number() * lines + operand.str().size(),
                   static_cast<double>(kMaxStringBytes) + 1))));
      const Value first = Arg(args, 1, "first", Value::Bool(false));
      const Value blank = Arg(args, 2, "blank", Value::Bool(false));
      return Value::String(Indent(operand.str(),
                                  static_cast<size_t>(width.number()),
                                  JsTruthy(first), JsTruthy(blank)));
    }
    if (name == "replace")
      return CallMethod(StringMethod(operand, "replace"), args);
    return Unknown(name, operand);
  }
  if (operand.is_object()) {
    const Value method = ObjectMethod(operand, name);
    if (method.is_function()) return CallMethod(method, args);
    return Unknown(name, operand);
  }
  return Fail(
      Cat("Cannot apply filter \"", name, "\" to type: ", TypeName(operand)));
}

}  // namespace

bool IsKnownFilter(std::string_view name) {
  static constexpr std::string_view kFilters[] = {
      // The reference's.
      "safe",
      "tojson",
      "list",
      "first",
      "last",
      "length",
      "reverse",
      "sort",
      "join",
      "string",
      "unique",
      "upper",
      "lower",
      "title",
      "capitalize",
      "trim",
      "indent",
      "int",
      "float",
      "abs",
      "items",
      "bool",
      "keys",
      "values",
      "dictsort",
      "get",
      "default",
      "selectattr",
      "rejectattr",
      "map",
      "replace",
      // Jinja's, which the reference lacks.
      "count",
      "d",
      "e",
      "escape",
      "wordcount",
      "select",
      "reject",
  };
  for (std::string_view f : kFilters) {
    if (f == name) return true;
  }
  return false;
}

absl::StatusOr<Value> ApplyFilter(std::string_view name, const Value& operand,
                                  const CallArgs* args) {
  // Jinja's aliases, each exactly its original here.
  if (name == "count") name = "length";
  if (name == "d") name = "default";
  return args == nullptr ? Bare(name, operand) : Called(name, operand, *args);
}

}  // namespace hydra::model::chat_template::jinja
