// What values offer without filters: attribute and item access with the
// methods of strings and objects (" a ".strip(), d.items(), ...), the `is`
// tests, and the global functions (namespace, range, raise_exception,
// strftime_now). Each behaves as in @huggingface/jinja's runtime.ts.
#ifndef HYDRA_MODEL_CHAT_TEMPLATE_JINJA_BUILTINS_H_
#define HYDRA_MODEL_CHAT_TEMPLATE_JINJA_BUILTINS_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "model/chat_template/jinja/value.h"

namespace hydra::model::chat_template::jinja {

// object.name / object[key]: an object's entry (else its method of that
// name), an array's or string's item by index (negative from the end) or
// its `length`, a string's method; undefined where there is none. Fails
// where the reference does (an object indexed by a number, ...).
absl::StatusOr<Value> GetMember(const Value& object, const Value& property);

// The methods an object has when it has no entry of that name (items,
// keys, values, get, dictsort); undefined otherwise. Filters reuse them.
Value ObjectMethod(const Value& object, std::string_view name);
// The methods of a string (upper, strip, split, replace, ...).
Value StringMethod(const Value& str, std::string_view name);

bool IsKnownTest(std::string_view name);
// `operand is name`; `argument` is the second operand where a test has one
// (selectattr's third argument), null where none was given.
absl::StatusOr<bool> ApplyTest(std::string_view name, const Value& operand,
                               const Value* argument);

// a < b for sort and dictsort: numbers (and booleans) with numbers,
// strings with strings (case-folded unless case_sensitive), none with
// none; anything else fails, as in the reference.
absl::StatusOr<int> CompareValues(const Value& a, const Value& b,
                                  bool case_sensitive);

// Sets false/true/none (and True/False/None), namespace, range,
// raise_exception and strftime_now in `env`.
void InstallGlobals(Environment& env);

// The message raise_exception() gives its error status, so that callers
// can tell a template's own refusal from other failures.
inline constexpr std::string_view kRaisedPrefix = "chat template raised: ";

}  // namespace hydra::model::chat_template::jinja

#endif  // HYDRA_MODEL_CHAT_TEMPLATE_JINJA_BUILTINS_H_
