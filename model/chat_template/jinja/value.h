// The values a template computes with, shaped after the reference renderer's
// runtime values (@huggingface/jinja, runtime.ts) so that every result can
// match it byte for byte:
//
//  - numbers are IEEE doubles, as in JavaScript; kInteger and kFloat differ
//    only in how they print ({{ 1.0 }} is "1.0", {{ 1 }} is "1") and in
//    what arithmetic returns;
//  - arrays, objects (insertion-ordered, like a JS Map) and namespaces are
//    shared by reference: `ns.x = ...` changes every copy, `==` on two
//    arrays compares identity;
//  - a tuple is an array with a flag (the reference's TupleValue, which
//    several operations treat differently from a list).
#ifndef HYDRA_MODEL_CHAT_TEMPLATE_JINJA_VALUE_H_
#define HYDRA_MODEL_CHAT_TEMPLATE_JINJA_VALUE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace hydra::model::chat_template::jinja {

class Value;
class Environment;

struct Array {
  std::vector<Value> items;
  bool is_tuple = false;
  int depth = 1;  // 1 + the deepest item's depth (a scalar's is 0)
  bool holds_namespace = false;  // an item is, or holds, a namespace
};

// Keys in insertion order; a key set again keeps its place (JS Map).
struct Object {
  std::vector<std::pair<std::string, Value>> entries;
  // At least 1 + the deepest entry's depth; Set raises it, never lowers it.
  int depth = 1;
  // This is a namespace, or an entry is or holds one (Set keeps it so).
  bool holds_namespace = false;

  const Value* Find(std::string_view key) const;
  void Set(std::string key, Value value);
};

// Arguments of a call: positional ones, then keyword ones in call order.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;

  const Value* Keyword(std::string_view name) const;
};

// A callable: a macro, a builtin (range, namespace, ...) or a method bound
// to its receiver (" a ".strip). `caller` is the environment of the call
// site: macros see the caller's variables, as in the reference.
using NativeFunction =
    std::function<absl::StatusOr<Value>(CallArgs& args, Environment& caller)>;
struct Function {
  std::string name;
  NativeFunction call;
};

class Value {
 public:
  enum class Type {
    kUndefined,
    kNone,
    kBool,
    kInteger,
    kFloat,
    kString,
    kArray,
    kObject,
    kNamespace,
    kFunction,
  };

  Value() = default;  // undefined
  static Value None();
  static Value Bool(bool b);
  static Value Integer(double n);
  static Value Float(double n);
  static Value String(std::string s);
  static Value MakeArray(std::vector<Value> items, bool is_tuple = false);
  static Value MakeObject(Object object = {});
  static Value MakeNamespace(Object object = {});
  static Value MakeFunction(std::string name, NativeFunction fn);

  Type type() const { return type_; }
  bool is_undefined() const { return type_ == Type::kUndefined; }
  bool is_none() const { return type_ == Type::kNone; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_integer() const { return type_ == Type::kInteger; }
  bool is_float() const { return type_ == Type::kFloat; }
  bool is_number() const { return is_integer() || is_float(); }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_tuple() const { return is_array() && array().is_tuple; }
  bool is_object() const { return type_ == Type::kObject; }
  bool is_namespace() const { return type_ == Type::kNamespace; }
  // Objects and namespaces both answer attribute and item access.
  bool is_attribute_container() const { return is_object() || is_namespace(); }
  bool is_function() const { return type_ == Type::kFunction; }

  bool bool_value() const { return std::get<bool>(data_); }
  double number() const { return std::get<double>(data_); }
  const std::string& str() const { return std::get<std::string>(data_); }
  Array& array() const { return *std::get<std::shared_ptr<Array>>(data_); }
  Object& object() const { return *std::get<std::shared_ptr<Object>>(data_); }
  const Function& function() const {
    return *std::get<std::shared_ptr<const Function>>(data_);
  }
  // Identity of a shared array, object or function (nullptr otherwise).
  const void* identity() const;

 private:
  Type type_ = Type::kUndefined;
  std::variant<std::monostate, bool, double, std::string,
               std::shared_ptr<Array>, std::shared_ptr<Object>,
               std::shared_ptr<const Function>>
      data_;
};

// What a template may build, its code coming from a model folder: a longer
// string or array, or values nested deeper, fail the render instead of
// exhausting the server's memory (a string doubled 40 times) or its stack
// (an array wrapped in itself 100000 times, freed recursively). Far above
// what a prompt needs: a million-token context is about 4 MiB of text.
inline constexpr size_t kMaxStringBytes = size_t{1} << 24;
inline constexpr size_t kMaxArrayItems = size_t{1} << 22;
inline constexpr int kMaxValueDepth = 100;

// How deeply arrays, objects and namespaces nest in `v` (0 for a scalar).
int Depth(const Value& v);
// Whether `v` is, or holds at any depth, the array, object or namespace
// whose identity() is `target`: a namespace assigned something that holds
// it would hold itself, never be freed and never finish printing.
bool Reaches(const Value& v, const void* target);
// OK, or the error for text of `bytes` bytes, past kMaxStringBytes.
absl::Status CheckStringBytes(size_t bytes);
// OK, or the error for a value past the bounds above.
absl::Status CheckBounds(const Value& v);

// The reference's type names ("StringValue", ...), for error messages.
std::string_view TypeName(const Value& v);

// Python-like truthiness as the reference has it: empty strings, arrays
// and objects, 0, NaN, none and undefined are false; namespaces and
// functions are true.
bool Truthy(const Value& v);

// How a value prints in output ({{ v }}), the reference's toString():
// 1.0 -> "1.0", true -> "true", arrays and objects as JSON-like text with
// undefined as "undefined"; none and undefined give "undefined" (output
// skips both). Fails for a function (the reference would print its
// JavaScript source) and for a tuple (the reference cannot print one).
absl::StatusOr<std::string> ToString(const Value& v);

// The JavaScript ToString of the underlying value, which `~`, string `+`
// and `join` use: 1.0 -> "1", an array -> its items' ToString joined by
// ",", an object -> "[object Map]".
absl::StatusOr<std::string> ToJsPrimitiveString(const Value& v);

struct JsonOptions {
  int64_t indent = 0;  // 0: one line
  bool ensure_ascii = false;
  std::optional<std::pair<std::string, std::string>> separators;
  bool sort_keys = false;
  bool undefined_as_null = true;  // false: "undefined" (ToString's form)
};
// The reference's toJSON (Python json.dumps spacing: ", " and ": ", or
// "," with indentation).
absl::StatusOr<std::string> ToJson(const Value& v, const JsonOptions& options);

// `a == b` as the reference computes it: JavaScript's loose equality of
// the underlying values (1 == 1.0, "1" == 1, none == undefined). none's
// underlying value is undefined, so none === undefined as well.
bool LooseEquals(const Value& a, const Value& b);
// JavaScript's ===, which `in` and the eq test use.
bool StrictEquals(const Value& a, const Value& b);
// SameValueZero (what a JS Set uses, for `unique`): === except NaN = NaN.
bool SameValueZero(const Value& a, const Value& b);

// A JSON document as the reference sees it after JSON.parse: integral
// numbers become kInteger, object keys keep the text's order except that
// array-index keys ("0", "17") come first in ascending order, as in
// every JavaScript object.
Value FromJson(const nlohmann::ordered_json& json);

}  // namespace hydra::model::chat_template::jinja

#endif  // HYDRA_MODEL_CHAT_TEMPLATE_JINJA_VALUE_H_
