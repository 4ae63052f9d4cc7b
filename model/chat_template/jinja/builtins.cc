#include "model/chat_template/jinja/builtins.h"

#include <cmath>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "model/chat_template/jinja/absl_compat.h"
#include "model/chat_template/jinja/interpreter.h"
#include "model/chat_template/jinja/js_text.h"

namespace hydra::model::chat_template::jinja {
namespace {

absl::Status Fail(std::string_view message) {
  return absl::InvalidArgumentError(std::string(message));
}

absl::Status NoKeywords(const CallArgs& args, std::string_view method) {
  if (args.keywords.empty()) return absl::OkStatus();
  return Fail(Cat(method, "() takes no keyword argument '",
                  args.keywords.front().first, "'"));
}

// A method that takes no arguments and maps the string.
Value StringMapper(const std::string& s, std::string name,
                   std::string (*fn)(std::string_view)) {
  return Value::MakeFunction(
      name, [s, fn](CallArgs&, Environment&) -> absl::StatusOr<Value> {
        return Value::String(fn(s));  // arguments ignored, as in the reference
      });
}

std::string TitleCase(std::string_view s) {
  // /\b\w/g with ASCII \w: a word character after a non-word one.
  const auto word = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || c == '_';
  };
  std::string out(s);
  for (size_t i = 0; i < out.size(); ++i) {
    if (word(out[i]) && (i == 0 || !word(out[i - 1])) && out[i] >= 'a' &&
        out[i] <= 'z') {
      out[i] = static_cast<char>(out[i] - 'a' + 'A');
    }
  }
  return out;
}

std::string Capitalize(std::string_view s) {
  // charAt(0).toUpperCase() + slice(1): only a first BMP character changes.
  if (s.empty()) return "";
  const DecodedChar d = DecodeUtf8(s, 0);
  if (d.code_point >= 0x10000) return std::string(s);
  return ToUpperJs(s.substr(0, d.size)) + std::string(s.substr(d.size));
}

std::string Strip(std::string_view s) { return std::string(TrimJs(s)); }
std::string Lstrip(std::string_view s) { return std::string(TrimStartJs(s)); }
std::string Rstrip(std::string_view s) { return std::string(TrimEndJs(s)); }
std::string Upper(std::string_view s) { return ToUpperJs(s); }
std::string Lower(std::string_view s) { return ToLowerJs(s); }
std::string Title(std::string_view s) { return TitleCase(s); }
std::string Cap(std::string_view s) { return Capitalize(s); }

// startswith/endswith: a string or a tuple of strings.
Value Affix(const std::string& s, std::string name, bool prefix) {
  return Value::MakeFunction(
      name,
      [s, name, prefix](CallArgs& args, Environment&) -> absl::StatusOr<Value> {
        if (args.positional.empty()) {
          return Fail(Cat(name, "() requires at least one argument"));
        }
        const auto matches = [&](const std::string& affix) {
          if (affix.size() > s.size()) return false;
          return prefix ? s.compare(0, affix.size(), affix) == 0
                        : s.compare(s.size() - affix.size(), affix.size(),
                                    affix) == 0;
        };
        const Value& pattern = args.positional[0];
        if (pattern.is_string()) return Value::Bool(matches(pattern.str()));
        if (pattern.is_array()) {
          for (const Value& item : pattern.array().items) {
            if (!item.is_string()) {
              return Fail(Cat(name, "() tuple elements must be strings"));
            }
            if (matches(item.str())) return Value::Bool(true);
          }
          return Value::Bool(false);
        }
        return Fail(
            Cat(name, "() argument must be a string or tuple of strings"));
      });
}

// Python's str.split(sep=None, maxsplit=-1), as the reference has it.
absl::StatusOr<Value> Split(const std::string& s, CallArgs& args) {
  RETURN_IF_ERROR(NoKeywords(args, "split"));
  const Value sep =
      args.positional.size() > 0 ? args.positional[0] : Value::None();
  if (!sep.is_string() && !sep.is_none()) {
    return Fail("sep argument must be a string or null");
  }
  const Value maxsplit =
      args.positional.size() > 1 ? args.positional[1] : Value::Integer(-1);
  if (!maxsplit.is_integer()) return Fail("maxsplit argument must be a number");
  const double limit = maxsplit.number();
  std::vector<std::string> parts;
  if (sep.is_none()) {
    const std::string_view text = TrimStartJs(s);
    size_t i = 0;
    while (i < text.size()) {
      if (size_t n = JsWhitespaceAt(text, i)) {
        i += n;
        continue;
      }
      size_t j = i;
      while (j < text.size() && JsWhitespaceAt(text, j) == 0) {
        j += DecodeUtf8(text, j).size;
      }
      if (limit != -1 && static_cast<double>(parts.size()) >= limit) {
        parts.emplace_back(text.substr(i));
        break;
      }
      parts.emplace_back(text.substr(i, j - i));
      i = j;
    }
  } else {
    const std::string& delimiter = sep.str();
    if (delimiter.empty()) return Fail("empty separator");
    size_t start = 0;
    while (true) {
      const size_t found = s.find(delimiter, start);
      if (found == std::string::npos) break;
      parts.push_back(s.substr(start, found - start));
      start = found + delimiter.size();
    }
    parts.push_back(s.substr(start));
    if (limit != -1 && static_cast<double>(parts.size()) > limit) {
      // JS splice(maxsplit) with a negative maxsplit counts from the end.
      double cut = limit < 0 ? std::max(0.0, parts.size() + limit) : limit;
      const size_t at = static_cast<size_t>(cut);
      std::vector<std::string> rest(parts.begin() + at, parts.end());
      parts.resize(at);
      parts.push_back(absl::StrJoin(rest, delimiter));
    }
  }
  std::vector<Value> items;
  for (std::string& p : parts) items.push_back(Value::String(std::move(p)));
  return Value::MakeArray(std::move(items));
}

// Python's str.replace(old, new, count=-1); an empty `old` matches between
// code points.
absl::StatusOr<Value> Replace(const std::string& s, CallArgs& args) {
  if (args.positional.size() + (args.keywords.empty() ? 0 : 1) < 2) {
    return Fail("replace() requires at least two arguments");
  }
  if (args.positional.size() < 2) {
    return Fail("replace() arguments must be strings");
  }
  const Value& from = args.positional[0];
  const Value& to = args.positional[1];
  if (!from.is_string() || !to.is_string()) {
    return Fail("replace() arguments must be strings");
  }
  Value count = Value::None();
  if (args.positional.size() > 2) {
    count = args.positional[2];
  } else if (const Value* c = args.Keyword("count")) {
    count = *c;
  }
  if (!count.is_integer() && !count.is_none()) {
    return Fail("replace() count argument must be a number or null");
  }
  double remaining = INFINITY;
  if (count.is_integer()) {
    if (count.number() == 0) return Value::String(s);
    if (count.number() > 0) remaining = count.number();
  }
  std::string out;
  if (from.str().empty()) {
    // The replacement goes between every two characters: bounded as the
    // text grows, as below.
    for (const std::string& cp : SplitCodePoints(s)) {
      if (remaining > 0) {
        out += to.str();
        --remaining;
      }
      out += cp;
      RETURN_IF_ERROR(CheckStringBytes(out.size()));
    }
    if (remaining > 0) out += to.str();
    return Value::String(std::move(out));
  }
  size_t start = 0;
  while (remaining > 0) {
    const size_t found = s.find(from.str(), start);
    if (found == std::string::npos) break;
    out.append(s, start, found - start);
    out += to.str();
    RETURN_IF_ERROR(CheckStringBytes(out.size()));
    start = found + from.str().size();
    --remaining;
  }
  out.append(s, start, std::string::npos);
  return Value::String(std::move(out));
}

Value ArrayOfPairs(const Object& object) {
  std::vector<Value> items;
  for (const auto& [k, v] : object.entries) {
    items.push_back(Value::MakeArray({Value::String(k), v}));
  }
  return Value::MakeArray(std::move(items));
}

// d.dictsort(case_sensitive=false, by='key', reverse=false).
absl::StatusOr<Value> DictSort(const Value& object, const CallArgs& args) {
  const auto arg = [&](size_t i, std::string_view name, Value fallback) {
    if (i < args.positional.size()) return args.positional[i];
    if (const Value* v = args.Keyword(name)) return *v;
    return fallback;
  };
  const Value case_sensitive = arg(0, "case_sensitive", Value::Bool(false));
  if (!case_sensitive.is_bool())
    return Fail("case_sensitive must be a boolean");
  const Value by = arg(1, "by", Value::String("key"));
  if (!by.is_string()) return Fail("by must be a string");
  if (by.str() != "key" && by.str() != "value") {
    return Fail("by must be either 'key' or 'value'");
  }
  const Value reverse = arg(2, "reverse", Value::Bool(false));
  if (!reverse.is_bool()) return Fail("reverse must be a boolean");
  const size_t index = by.str() == "key" ? 0 : 1;
  std::vector<Value> items = ArrayOfPairs(object.object()).array().items;
  absl::Status error;
  std::stable_sort(
      items.begin(), items.end(), [&](const Value& a, const Value& b) {
        if (!error.ok()) return false;
        absl::StatusOr<int> c =
            CompareValues(a.array().items[index], b.array().items[index],
                          case_sensitive.bool_value());
        if (!c.ok()) {
          error = c.status();
          return false;
        }
        return (reverse.bool_value() ? -*c : *c) < 0;
      });
  RETURN_IF_ERROR(error);
  return Value::MakeArray(std::move(items));
}

std::string Strftime(std::string_view format) {
  static constexpr const char* kMonths[] = {
      "January", "February", "March",     "April",   "May",      "June",
      "July",    "August",   "September", "October", "November", "December"};
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  const auto pad2 = [](int n) { return Cat(n < 10 ? "0" : "", n); };
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      out += format[i];
      continue;
    }
    const char c = format[i + 1];
    switch (c) {
      case 'Y':
        out += Cat(tm.tm_year + 1900);
        break;
      case 'm':
        out += pad2(tm.tm_mon + 1);
        break;
      case 'd':
        out += pad2(tm.tm_mday);
        break;
      case 'b':
        out += std::string(kMonths[tm.tm_mon]).substr(0, 3);
        break;
      case 'B':
        out += kMonths[tm.tm_mon];
        break;
      case 'H':
        out += pad2(tm.tm_hour);
        break;
      case 'M':
        out += pad2(tm.tm_min);
        break;
      case '%':
        out += '%';
        break;
      default:  // left as it is, like the reference
        out += '%';
        out += c;
        break;
    }
    ++i;
  }
  return out;
}

}  // namespace

Value StringMethod(const Value& str, std::string_view name) {
  const std::string& s = str.str();
  if (name == "upper") return StringMapper(s, "upper", Upper);
  if (name == "lower") return StringMapper(s, "lower", Lower);
  // Python's strip(chars) removes `chars`; the reference ignores the
  // argument and trims whitespace. Matching it is the point here.
  if (name == "strip") return StringMapper(s, "strip", Strip);
  if (name == "lstrip") return StringMapper(s, "lstrip", Lstrip);
  if (name == "rstrip") return StringMapper(s, "rstrip", Rstrip);
  if (name == "title") return StringMapper(s, "title", Title);
  if (name == "capitalize") return StringMapper(s, "capitalize", Cap);
  if (name == "length")
    return Value::Integer(static_cast<double>(Utf16Length(s)));
  if (name == "startswith") return Affix(s, "startswith", true);
  if (name == "endswith") return Affix(s, "endswith", false);
  if (name == "split") {
    return Value::MakeFunction(
        "split", [s](CallArgs& args, Environment&) { return Split(s, args); });
  }
  if (name == "replace") {
    return Value::MakeFunction("replace", [s](CallArgs& args, Environment&) {
      return Replace(s, args);
    });
  }
  return Value();
}

Value ObjectMethod(const Value& object, std::string_view name) {
  if (name == "get") {
    return Value::MakeFunction(
        "get", [object](CallArgs& args, Environment&) -> absl::StatusOr<Value> {
          if (args.positional.empty() || !args.positional[0].is_string()) {
            return Fail(Cat("Object key must be a string: got ",
                            args.positional.empty()
                                ? "nothing"
                                : TypeName(args.positional[0])));
          }
          if (const Value* v = object.object().Find(args.positional[0].str()))
            return *v;
          if (args.positional.size() > 1) return args.positional[1];
          return Value::None();
        });
  }
  if (name == "items") {
    return Value::MakeFunction("items", [object](CallArgs&, Environment&) {
      return absl::StatusOr<Value>(ArrayOfPairs(object.object()));
    });
  }
  if (name == "keys") {
    return Value::MakeFunction("keys", [object](CallArgs&, Environment&) {
      std::vector<Value> keys;
      for (const auto& [k, _] : object.object().entries)
        keys.push_back(Value::String(k));
      return absl::StatusOr<Value>(Value::MakeArray(std::move(keys)));
    });
  }
  if (name == "values") {
    return Value::MakeFunction("values", [object](CallArgs&, Environment&) {
      std::vector<Value> values;
      for (const auto& [_, v] : object.object().entries) values.push_back(v);
      return absl::StatusOr<Value>(Value::MakeArray(std::move(values)));
    });
  }
  if (name == "dictsort") {
    return Value::MakeFunction("dictsort",
                               [object](CallArgs& args, Environment&) {
                                 return DictSort(object, args);
                               });
  }
  return Value();
}

absl::StatusOr<Value> GetMember(const Value& object, const Value& property) {
  if (object.is_attribute_container()) {
    if (!property.is_string()) {
      return Fail(Cat("Cannot access property with non-string: got ",
                      TypeName(property)));
    }
    if (const Value* v = object.object().Find(property.str())) return *v;
    return object.is_object() ? ObjectMethod(object, property.str()) : Value();
  }
  if (object.is_array() || object.is_string()) {
    if (property.is_integer()) {
      const double index = property.number();
      if (object.is_string()) {
        // Past any string either way, and an int64 cast of a larger double
        // is undefined behaviour.
        if (!(std::fabs(index) < 0x1p53)) return Value();
        std::optional<std::string> unit =
            CodeUnitAt(object.str(), static_cast<int64_t>(index));
        return unit ? Value::String(*std::move(unit)) : Value();
      }
      const auto& items = object.array().items;
      double i = std::trunc(index);
      if (i < 0) i += static_cast<double>(items.size());
      if (i < 0 || i >= static_cast<double>(items.size())) return Value();
      return items[static_cast<size_t>(i)];
    }
    if (property.is_string()) {
      if (object.is_string()) return StringMethod(object, property.str());
      if (property.str() == "length") {
        return Value::Integer(static_cast<double>(object.array().items.size()));
      }
      return Value();
    }
    return Fail(Cat("Cannot access property with non-string/non-number: got ",
                    TypeName(property)));
  }
  if (!property.is_string()) {
    return Fail(Cat("Cannot access property with non-string: got ",
                    TypeName(property)));
  }
  return Value();
}

bool IsKnownTest(std::string_view name) {
  static constexpr std::string_view kTests[] = {
      "boolean",  "callable",  "odd",      "even",   "false",
      "true",     "none",      "string",   "number", "integer",
      "iterable", "mapping",   "sequence", "lower",  "upper",
      "defined",  "undefined", "equalto",  "eq",
  };
  for (std::string_view t : kTests) {
    if (t == name) return true;
  }
  return false;
}

absl::StatusOr<bool> ApplyTest(std::string_view name, const Value& v,
                               const Value* argument) {
  if (name == "boolean") return v.is_bool();
  if (name == "callable") return v.is_function();
  if (name == "odd" || name == "even") {
    if (!v.is_integer()) return Fail(Cat("cannot ", name, " on ", TypeName(v)));
    const bool odd = std::fmod(v.number(), 2) != 0;
    return name == "odd" ? odd : !odd;
  }
  if (name == "false") return v.is_bool() && !v.bool_value();
  if (name == "true") return v.is_bool() && v.bool_value();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_integer();
  // Tuples, objects and namespaces are not "iterable" in the reference.
  if (name == "iterable")
    return (v.is_array() && !v.is_tuple()) || v.is_string();
  if (name == "mapping") return v.is_object();
  if (name == "sequence") return v.is_array() || v.is_object() || v.is_string();
  if (name == "lower") return v.is_string() && v.str() == ToLowerJs(v.str());
  if (name == "upper") return v.is_string() && v.str() == ToUpperJs(v.str());
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "eq" || name == "equalto") {
    if (argument == nullptr) {
      return Fail(Cat("the '", name, "' test needs a value to compare with"));
    }
    return StrictEquals(v, *argument);
  }
  return Fail(Cat("Unknown test: ", name));
}

absl::StatusOr<int> CompareValues(const Value& a, const Value& b,
                                  bool case_sensitive) {
  if (a.is_none() && b.is_none()) return 0;
  if (a.is_none() || b.is_none() || a.is_undefined() != b.is_undefined()) {
    return Fail(Cat("Cannot compare ", TypeName(a), " with ", TypeName(b)));
  }
  if (a.is_undefined()) return 0;
  const auto numeric = [](const Value& v) {
    return v.is_number() || v.is_bool();
  };
  if (numeric(a) && numeric(b)) {
    const double x = a.is_bool() ? (a.bool_value() ? 1 : 0) : a.number();
    const double y = b.is_bool() ? (b.bool_value() ? 1 : 0) : b.number();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (TypeName(a) != TypeName(b)) {
    return Fail(Cat("Cannot compare different types: ", TypeName(a), " and ",
                    TypeName(b)));
  }
  if (!a.is_string()) return Fail(Cat("Cannot compare type: ", TypeName(a)));
  if (case_sensitive) return CompareUtf16(a.str(), b.str());
  return CompareUtf16(ToLowerJs(a.str()), ToLowerJs(b.str()));
}

void InstallGlobals(Environment& env) {
  env.Set("false", Value::Bool(false));
  env.Set("true", Value::Bool(true));
  env.Set("none", Value::None());
  env.Set("False", Value::Bool(false));
  env.Set("True", Value::Bool(true));
  env.Set("None", Value::None());

  env.Set("namespace",
          Value::MakeFunction(
              "namespace",
              [](CallArgs& args, Environment&) -> absl::StatusOr<Value> {
                if (args.positional.size() > 1) {
                  return Fail(Cat("namespace expected at most 1 argument, got ",
                                  args.positional.size()));
                }
                Object entries;
                if (args.positional.size() == 1) {
                  const Value& source = args.positional[0];
                  if (source.is_object()) {
                    for (const auto& [k, v] : source.object().entries)
                      entries.Set(k, v);
                  } else if (source.is_array()) {
                    for (const Value& pair : source.array().items) {
                      std::vector<Value> kv;
                      if (pair.is_array()) kv = pair.array().items;
                      if (pair.is_string()) {
                        for (std::string& c : SplitCodePoints(pair.str())) {
                          kv.push_back(Value::String(std::move(c)));
                        }
                      }
                      if (kv.size() != 2) {
                        return Fail(
                            "namespace expected an object or an iterable of "
                            "[key, value] pairs");
                      }
                      if (!kv[0].is_string())
                        return Fail("namespace keys must be strings");
                      entries.Set(kv[0].str(), kv[1]);
                    }
                  } else {
                    return Fail(
                        Cat("'", TypeName(source), "' object is not iterable"));
                  }
                }
                for (const auto& [k, v] : args.keywords) entries.Set(k, v);
                return Value::MakeNamespace(std::move(entries));
              }));

  env.Set("raise_exception",
          Value::MakeFunction(
              "raise_exception",
              [](CallArgs& args, Environment&) -> absl::StatusOr<Value> {
                std::string message;
                if (!args.positional.empty()) {
                  ASSIGN_OR_RETURN(message,
                                   ToJsPrimitiveString(args.positional[0]));
                }
                return absl::InvalidArgumentError(Cat(kRaisedPrefix, message));
              }));

  env.Set(
      "range",
      Value::MakeFunction(
          "range", [](CallArgs& args, Environment&) -> absl::StatusOr<Value> {
            RETURN_IF_ERROR(NoKeywords(args, "range"));
            if (args.positional.empty() || args.positional.size() > 3) {
              return Fail("range() takes 1 to 3 numbers");
            }
            for (const Value& v : args.positional) {
              if (!v.is_number()) return Fail("range() takes numbers");
            }
            double start = 0, stop = args.positional[0].number(), step = 1;
            if (args.positional.size() >= 2) {
              start = args.positional[0].number();
              stop = args.positional[1].number();
            }
            if (args.positional.size() == 3) step = args.positional[2].number();
            if (step == 0) return Fail("range() step must not be zero");
            // A bound the reference lacks: no template needs a huge range, and
            // a server must not build one on a request's behalf.
            constexpr double kMaxItems = 1 << 20;
            if ((stop - start) / step > kMaxItems)
              return Fail("range() too long");
            std::vector<Value> items;
            for (double i = start; step > 0 ? i < stop : i > stop; i += step) {
              items.push_back(std::trunc(i) == i ? Value::Integer(i)
                                                 : Value::Float(i));
            }
            return Value::MakeArray(std::move(items));
          }));

  env.Set(
      "strftime_now",
      Value::MakeFunction(
          "strftime_now",
          [](CallArgs& args, Environment&) -> absl::StatusOr<Value> {
            if (args.positional.empty() || !args.positional[0].is_string()) {
              return Fail("strftime_now() takes a format string");
            }
            return Value::String(Strftime(args.positional[0].str()));
          }));
}

}  // namespace hydra::model::chat_template::jinja
