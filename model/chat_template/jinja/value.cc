#include "model/chat_template/jinja/value.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/chat_template/jinja/absl_compat.h"
#include "model/chat_template/jinja/js_text.h"

namespace hydra::model::chat_template::jinja {

const Value* Object::Find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

namespace {

// Whether `v` is a namespace or holds one.
bool HoldsNamespace(const Value& v) {
  if (v.is_array()) return v.array().holds_namespace;
  if (v.is_attribute_container()) return v.object().holds_namespace;
  return false;
}

}  // namespace

void Object::Set(std::string key, Value value) {
  depth = std::max(depth, 1 + Depth(value));
  holds_namespace = holds_namespace || HoldsNamespace(value);
  for (auto& [k, v] : entries) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

const Value* CallArgs::Keyword(std::string_view name) const {
  for (const auto& [k, v] : keywords) {
    if (k == name) return &v;
  }
  return nullptr;
}

Value Value::None() {
  Value v;
  v.type_ = Type::kNone;
  return v;
}

Value Value::Bool(bool b) {
  Value v;
  v.type_ = Type::kBool;
  v.data_ = b;
  return v;
}

Value Value::Integer(double n) {
  Value v;
  v.type_ = Type::kInteger;
  v.data_ = n;
  return v;
}

Value Value::Float(double n) {
  Value v;
  v.type_ = Type::kFloat;
  v.data_ = n;
  return v;
}

Value Value::String(std::string s) {
  Value v;
  v.type_ = Type::kString;
  v.data_ = std::move(s);
  return v;
}

Value Value::MakeArray(std::vector<Value> items, bool is_tuple) {
  int depth = 1;
  bool holds_namespace = false;
  for (const Value& item : items) {
    depth = std::max(depth, 1 + Depth(item));
    holds_namespace = holds_namespace || HoldsNamespace(item);
  }
  Value v;
  v.type_ = Type::kArray;
  v.data_ = std::make_shared<Array>(
      Array{std::move(items), is_tuple, depth, holds_namespace});
  return v;
}

Value Value::MakeObject(Object object) {
  for (const auto& entry : object.entries) {
    object.depth = std::max(object.depth, 1 + Depth(entry.second));
    object.holds_namespace =
        object.holds_namespace || HoldsNamespace(entry.second);
  }
  Value v;
  v.type_ = Type::kObject;
  v.data_ = std::make_shared<Object>(std::move(object));
  return v;
}

Value Value::MakeNamespace(Object object) {
  Value v = MakeObject(std::move(object));
  v.type_ = Type::kNamespace;
  v.object().holds_namespace = true;
  return v;
}

Value Value::MakeFunction(std::string name, NativeFunction fn) {
  Value v;
  v.type_ = Type::kFunction;
  v.data_ = std::make_shared<const Function>(
      Function{std::move(name), std::move(fn)});
  return v;
}

bool Reaches(const Value& v, const void* target) {
  if (v.identity() == target) return true;
  if (!HoldsNamespace(v)) return false;  // only namespaces can close a loop
  if (v.is_array()) {
    for (const Value& item : v.array().items) {
      if (Reaches(item, target)) return true;
    }
    return false;
  }
  for (const auto& entry : v.object().entries) {
    if (Reaches(entry.second, target)) return true;
  }
  return false;
}

int Depth(const Value& v) {
  if (v.is_array()) return v.array().depth;
  if (v.is_attribute_container()) return v.object().depth;
  return 0;
}

absl::Status CheckStringBytes(size_t bytes) {
  if (bytes <= kMaxStringBytes) return absl::OkStatus();
  return absl::InvalidArgumentError(
      Cat("a string of more than ", kMaxStringBytes, " bytes"));
}

absl::Status CheckBounds(const Value& v) {
  if (v.is_string()) return CheckStringBytes(v.str().size());
  if (v.is_array() && v.array().items.size() > kMaxArrayItems) {
    return absl::InvalidArgumentError(
        Cat("an array of more than ", kMaxArrayItems, " items"));
  }
  if (Depth(v) > kMaxValueDepth) {
    return absl::InvalidArgumentError(
        Cat("values nested deeper than ", kMaxValueDepth));
  }
  return absl::OkStatus();
}

const void* Value::identity() const {
  switch (type_) {
    case Type::kArray:
      return std::get<std::shared_ptr<Array>>(data_).get();
    case Type::kObject:
    case Type::kNamespace:
      return std::get<std::shared_ptr<Object>>(data_).get();
    case Type::kFunction:
      return std::get<std::shared_ptr<const Function>>(data_).get();
    default:
      return nullptr;
  }
}

std::string_view TypeName(const Value& v) {
  switch (v.type()) {
    case Value::Type::kUndefined:
      return "UndefinedValue";
    case Value::Type::kNone:
      return "NullValue";
    case Value::Type::kBool:
      return "BooleanValue";
    case Value::Type::kInteger:
      return "IntegerValue";
    case Value::Type::kFloat:
      return "FloatValue";
    case Value::Type::kString:
      return "StringValue";
    case Value::Type::kArray:
      return v.is_tuple() ? "TupleValue" : "ArrayValue";
    case Value::Type::kObject:
      return "ObjectValue";
    case Value::Type::kNamespace:
      return "NamespaceValue";
    case Value::Type::kFunction:
      return "FunctionValue";
  }
  return "?";
}

bool Truthy(const Value& v) {
  switch (v.type()) {
    case Value::Type::kUndefined:
    case Value::Type::kNone:
      return false;
    case Value::Type::kBool:
      return v.bool_value();
    case Value::Type::kInteger:
    case Value::Type::kFloat:
      return v.number() != 0 && !std::isnan(v.number());
    case Value::Type::kString:
      return !v.str().empty();
    case Value::Type::kArray:
      return !v.array().items.empty();
    case Value::Type::kObject:
      return !v.object().entries.empty();
    case Value::Type::kNamespace:
    case Value::Type::kFunction:
      return true;
  }
  return false;
}

namespace {

std::string FloatToString(double v) {
  if (v == 0 && std::signbit(v)) return "-0.0";
  if (std::isfinite(v) && std::fmod(v, 1) == 0) return JsToFixed1(v);
  return JsNumberToString(v);
}

absl::Status CannotConvert(const Value& v) {
  return absl::InvalidArgumentError(
      Cat("Cannot convert to JSON: ", TypeName(v)));
}

absl::StatusOr<std::string> ToJsonAt(const Value& v, const JsonOptions& o,
                                     int64_t depth) {
  // Python's json.dumps: "," between items when indenting, else ", ".
  const std::string item_sep =
      o.separators ? o.separators->first : (o.indent != 0 ? "," : ", ");
  const std::string key_sep = o.separators ? o.separators->second : ": ";
  switch (v.type()) {
    case Value::Type::kNone:
      return "null";
    case Value::Type::kUndefined:
      return o.undefined_as_null ? "null" : "undefined";
    case Value::Type::kBool:
      return v.bool_value() ? "true" : "false";
    case Value::Type::kInteger:
    case Value::Type::kFloat:
      // JSON.stringify: shortest digits, non-finite as null.
      return std::isfinite(v.number()) ? JsNumberToString(v.number()) : "null";
    case Value::Type::kString:
      return JsonQuote(v.str(), o.ensure_ascii);
    case Value::Type::kFunction:
      return CannotConvert(v);
    default:
      break;
  }
  if (v.is_tuple()) return CannotConvert(v);
  if (o.indent < 0) {
    return absl::InvalidArgumentError("Invalid count value: negative indent");
  }
  const std::string unit(static_cast<size_t>(o.indent), ' ');
  std::string base = "\n";
  for (int64_t i = 0; i < depth; ++i) base += unit;
  const std::string child = base + unit;
  std::vector<std::string> core;
  if (v.is_array()) {
    for (const Value& item : v.array().items) {
      ASSIGN_OR_RETURN(std::string s, ToJsonAt(item, o, depth + 1));
      core.push_back(std::move(s));
    }
    if (o.indent != 0 && !core.empty()) {
      std::string out = "[" + child;
      for (size_t i = 0; i < core.size(); ++i) {
        if (i > 0) out += item_sep + child;
        out += core[i];
        // Each item repeats the indentation: bounded as the text grows.
        RETURN_IF_ERROR(CheckStringBytes(out.size()));
      }
      return out + base + "]";
    }
    std::string out = "[";
    for (size_t i = 0; i < core.size(); ++i) {
      if (i > 0) out += item_sep;
      out += core[i];
    }
    return out + "]";
  }
  std::vector<const std::pair<std::string, Value>*> entries;
  for (const auto& entry : v.object().entries) entries.push_back(&entry);
  if (o.sort_keys) {
    std::stable_sort(entries.begin(), entries.end(),
                     [](const auto* a, const auto* b) {
                       return LocaleCompare(a->first, b->first) < 0;
                     });
  }
  std::string out = "{";
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += item_sep;
    if (o.indent != 0) out += child;
    ASSIGN_OR_RETURN(std::string s, ToJsonAt(entries[i]->second, o, depth + 1));
    out += JsonQuote(entries[i]->first, o.ensure_ascii) + key_sep + s;
    RETURN_IF_ERROR(CheckStringBytes(out.size()));
  }
  if (o.indent != 0 && !entries.empty()) out += base;
  return out + "}";
}

// JavaScript's type classes for == and ===.
enum class JsKind { kUndefined, kBoolean, kNumber, kString, kObject };

JsKind KindOf(const Value& v) {
  switch (v.type()) {
    // none's underlying value is undefined too (see ToString).
    case Value::Type::kUndefined:
    case Value::Type::kNone:
      return JsKind::kUndefined;
    case Value::Type::kBool:
      return JsKind::kBoolean;
    case Value::Type::kInteger:
    case Value::Type::kFloat:
      return JsKind::kNumber;
    case Value::Type::kString:
      return JsKind::kString;
    default:
      return JsKind::kObject;
  }
}

bool SameKindEquals(const Value& a, const Value& b, JsKind kind,
                    bool nan_equal) {
  switch (kind) {
    case JsKind::kUndefined:
      return true;
    case JsKind::kBoolean:
      return a.bool_value() == b.bool_value();
    case JsKind::kNumber:
      if (nan_equal && std::isnan(a.number()) && std::isnan(b.number())) {
        return true;
      }
      return a.number() == b.number();
    case JsKind::kString:
      return a.str() == b.str();
    case JsKind::kObject:
      return a.identity() == b.identity();
  }
  return false;
}

}  // namespace

absl::StatusOr<std::string> ToString(const Value& v) {
  switch (v.type()) {
    case Value::Type::kUndefined:
    // The reference builds none as `new NullValue()`, whose underlying
    // JavaScript value is undefined, not null.
    case Value::Type::kNone:
      return "undefined";
    case Value::Type::kBool:
      return v.bool_value() ? "true" : "false";
    case Value::Type::kInteger:
      return JsNumberToString(v.number());
    case Value::Type::kFloat:
      return FloatToString(v.number());
    case Value::Type::kString:
      return v.str();
    case Value::Type::kFunction:
      return absl::InvalidArgumentError(
          Cat("cannot print the function '", v.function().name, "' (call it)"));
    default: {
      JsonOptions o;
      o.undefined_as_null = false;
      return ToJson(v, o);
    }
  }
}

absl::StatusOr<std::string> ToJsPrimitiveString(const Value& v) {
  switch (v.type()) {
    case Value::Type::kInteger:
    case Value::Type::kFloat:
      return JsNumberToString(v.number());
    case Value::Type::kObject:
    case Value::Type::kNamespace:
      return "[object Map]";
    case Value::Type::kArray: {
      std::string out;
      for (size_t i = 0; i < v.array().items.size(); ++i) {
        if (i > 0) out += ',';
        ASSIGN_OR_RETURN(std::string s, ToString(v.array().items[i]));
        AppendJs(out, s);
      }
      return out;
    }
    default:
      return ToString(v);
  }
}

absl::StatusOr<std::string> ToJson(const Value& v, const JsonOptions& options) {
  return ToJsonAt(v, options, 0);
}

bool LooseEquals(const Value& a, const Value& b) {
  const JsKind ka = KindOf(a);
  const JsKind kb = KindOf(b);
  if (ka == kb) return SameKindEquals(a, b, ka, /*nan_equal=*/false);
  if (ka == JsKind::kUndefined || kb == JsKind::kUndefined) return false;
  if (ka == JsKind::kBoolean) {
    return LooseEquals(Value::Integer(a.bool_value() ? 1 : 0), b);
  }
  if (kb == JsKind::kBoolean) {
    return LooseEquals(a, Value::Integer(b.bool_value() ? 1 : 0));
  }
  if (ka == JsKind::kNumber && kb == JsKind::kString) {
    return a.number() == JsStringToNumber(b.str());
  }
  if (ka == JsKind::kString && kb == JsKind::kNumber) {
    return JsStringToNumber(a.str()) == b.number();
  }
  // An object against a number or string: compare its primitive form.
  const Value& object = ka == JsKind::kObject ? a : b;
  const Value& primitive = ka == JsKind::kObject ? b : a;
  if (object.is_function()) return false;
  absl::StatusOr<std::string> s = ToJsPrimitiveString(object);
  if (!s.ok()) return false;
  return LooseEquals(Value::String(*std::move(s)), primitive);
}

bool StrictEquals(const Value& a, const Value& b) {
  const JsKind ka = KindOf(a);
  return ka == KindOf(b) && SameKindEquals(a, b, ka, /*nan_equal=*/false);
}

bool SameValueZero(const Value& a, const Value& b) {
  const JsKind ka = KindOf(a);
  return ka == KindOf(b) && SameKindEquals(a, b, ka, /*nan_equal=*/true);
}

namespace {

// "0", "1", ... "4294967294": the keys JavaScript orders first.
bool IsArrayIndexKey(std::string_view key) {
  if (key.empty() || key.size() > 10) return false;
  if (key.size() > 1 && key[0] == '0') return false;
  uint64_t n = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n < 4294967295ULL;
}

}  // namespace

Value FromJson(const nlohmann::ordered_json& json) {
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::null:
      return Value::None();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::Bool(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::Integer(static_cast<double>(json.get<int64_t>()));
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value::Integer(static_cast<double>(json.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: {
      const double d = json.get<double>();
      return std::isfinite(d) && std::trunc(d) == d ? Value::Integer(d)
                                                    : Value::Float(d);
    }
    case nlohmann::ordered_json::value_t::string:
      return Value::String(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(FromJson(item));
      return Value::MakeArray(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Object object;
      std::vector<std::pair<uint64_t, std::string>> index_keys;
      for (const auto& [key, _] : json.items()) {
        if (IsArrayIndexKey(key))
          index_keys.emplace_back(std::stoull(key), key);
      }
      std::sort(index_keys.begin(), index_keys.end());
      for (const auto& [_, key] : index_keys) {
        object.Set(key, FromJson(json.at(key)));
      }
      for (const auto& [key, value] : json.items()) {
        if (!IsArrayIndexKey(key)) object.Set(key, FromJson(value));
      }
      return Value::MakeObject(std::move(object));
    }
    default:  // binary, discarded
      return Value();
  }
}

}  // namespace hydra::model::chat_template::jinja
