#include "model/chat_template/jinja/interpreter.h"

#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/chat_template/jinja/absl_compat.h"
#include "model/chat_template/jinja/builtins.h"
#include "model/chat_template/jinja/filters.h"
#include "model/chat_template/jinja/js_text.h"
#include "model/chat_template/jinja/lexer.h"

namespace hydra::model::chat_template::jinja {

Value Environment::Lookup(std::string_view name) const {
  for (const Environment* e = this; e != nullptr; e = e->parent_) {
    if (auto it = e->variables_.find(Av(name)); it != e->variables_.end()) {
      return it->second;
    }
  }
  return Value();
}

void Environment::Set(std::string name, Value value) {
  variables_.insert_or_assign(std::move(name), std::move(value));
}

namespace {

absl::Status Fail(std::string_view message) {
  return absl::InvalidArgumentError(std::string(message));
}

// Names the line of `node` in an error that does not name one yet.
absl::Status At(const Node& node, const absl::Status& status) {
  if (status.ok() || absl::StartsWith(status.message(), "chat template")) {
    return status;
  }
  return absl::Status(status.code(), AtLine(node.line, Sv(status.message())));
}

template <typename T>
absl::StatusOr<T> At(const Node& node, absl::StatusOr<T> result) {
  if (result.ok()) return result;
  return At(node, result.status());
}

// Appends rendered text, within kMaxStringBytes.
absl::Status Emit(std::string& out, std::string_view s) {
  RETURN_IF_ERROR(CheckStringBytes(out.size() + s.size()));
  AppendJs(out, s);
  return absl::OkStatus();
}

bool NumericLike(const Value& v) { return v.is_number() || v.is_bool(); }
double NumericValue(const Value& v) {
  return v.is_bool() ? (v.bool_value() ? 1 : 0) : v.number();
}

// JavaScript's a ** b where it differs from C's pow: NaN for 1 ** NaN and
// (+-1) ** +-Infinity.
double JsPow(double a, double b) {
  if (std::isnan(b)) return NAN;
  if (std::isinf(b) && std::fabs(a) == 1) return NAN;
  return std::pow(a, b);
}

// Python-style slicing as the reference's utils.slice computes it.
std::vector<size_t> SliceIndices(size_t size, std::optional<double> start,
                                 std::optional<double> stop, double step) {
  const double len = static_cast<double>(size);
  const double direction = step > 0 ? 1 : (step < 0 ? -1 : 0);
  double s, e;
  if (direction >= 0) {
    s = start.value_or(0);
    s = s < 0 ? std::max(len + s, 0.0) : std::min(s, len);
    e = stop.value_or(len);
    e = e < 0 ? std::max(len + e, 0.0) : std::min(e, len);
  } else {
    s = start.value_or(len - 1);
    s = s < 0 ? std::max(len + s, -1.0) : std::min(s, len - 1);
    e = stop.value_or(-1);
    e = e < -1 ? std::max(len + e, -1.0) : std::min(e, len - 1);
  }
  std::vector<size_t> out;
  for (double i = s; direction * i < direction * e; i += step) {
    out.push_back(static_cast<size_t>(i));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> Interpreter::Run(const Program& program,
                                             Environment& globals) {
  std::string out;
  ASSIGN_OR_RETURN(Flow flow, ExecBlock(program.body, globals, out));
  if (flow != Flow::kNormal)
    return Fail("chat template: break or continue outside a loop");
  return out;
}

absl::StatusOr<Interpreter::Flow> Interpreter::ExecBlock(const Body& body,
                                                         Environment& env,
                                                         std::string& out) {
  for (const NodePtr& node : body) {
    ASSIGN_OR_RETURN(Flow flow, Exec(*node, env, out));
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

absl::Status Interpreter::Step(const Node& node) {
  if (++steps_ > kMaxSteps) {
    return Fail(
        AtLine(node.line, "the template takes too many steps to render"));
  }
  return absl::OkStatus();
}

absl::Status Interpreter::Depth::Check(const Node& node) const {
  if (depth_ <= kMaxEvalDepth) return absl::OkStatus();
  return Fail(AtLine(node.line, Cat("the template nests deeper than ",
                                    kMaxEvalDepth, " evaluations")));
}

absl::StatusOr<Interpreter::Flow> Interpreter::Exec(const Node& node,
                                                    Environment& env,
                                                    std::string& out) {
  const Depth depth(*this);
  RETURN_IF_ERROR(depth.Check(node));
  RETURN_IF_ERROR(Step(node));
  switch (node.kind) {
    case Node::Kind::kComment:
      return Flow::kNormal;
    case Node::Kind::kBreak:
      return Flow::kBreak;
    case Node::Kind::kContinue:
      return Flow::kContinue;
    case Node::Kind::kIf: {
      const auto& n = As<If>(node);
      ASSIGN_OR_RETURN(Value test, Eval(*n.test, env));
      return ExecBlock(Truthy(test) ? n.body : n.alternate, env, out);
    }
    case Node::Kind::kFor:
      return ExecFor(As<For>(node), env, out);
    case Node::Kind::kSet:
      return ExecSet(As<Set>(node), env);
    case Node::Kind::kMacro:
      DefineMacro(As<Macro>(node), env);
      return Flow::kNormal;
    case Node::Kind::kCallBlock:
      return ExecCallBlock(As<CallBlock>(node), env, out);
    case Node::Kind::kFilterBlock: {
      const auto& n = As<FilterBlock>(node);
      std::string rendered;
      ASSIGN_OR_RETURN(Flow flow, ExecBlock(n.body, env, rendered));
      if (flow != Flow::kNormal) return flow;
      ASSIGN_OR_RETURN(Value v, EvalFilter(Value::String(std::move(rendered)),
                                           *n.filter, env));
      if (v.is_none() || v.is_undefined()) return Flow::kNormal;
      ASSIGN_OR_RETURN(std::string s, At(node, ToString(v)));
      RETURN_IF_ERROR(At(node, Emit(out, s)));
      return Flow::kNormal;
    }
    default: {
      ASSIGN_OR_RETURN(Value v, Eval(node, env));
      // As the reference prints: none and undefined print nothing.
      if (v.is_none() || v.is_undefined()) return Flow::kNormal;
      ASSIGN_OR_RETURN(std::string s, At(node, ToString(v)));
      RETURN_IF_ERROR(At(node, Emit(out, s)));
      return Flow::kNormal;
    }
  }
}

absl::StatusOr<Interpreter::Flow> Interpreter::ExecFor(const For& node,
                                                       Environment& env,
                                                       std::string& out) {
  Environment scope(&env);
  const Node* filter = nullptr;
  const Node* iterable_node = node.iterable.get();
  if (iterable_node->kind == Node::Kind::kSelect) {
    filter = As<Select>(*iterable_node).test.get();
    iterable_node = As<Select>(*iterable_node).lhs.get();
  }
  ASSIGN_OR_RETURN(Value iterable, Eval(*iterable_node, scope));
  std::vector<Value> candidates;
  if (iterable.is_array()) {
    candidates = iterable.array().items;
  } else if (iterable.is_object()) {
    for (const auto& [k, _] : iterable.object().entries) {
      candidates.push_back(Value::String(k));
    }
  } else {
    return Fail(AtLine(node.line,
                       Cat("Expected iterable or object type in for loop: got ",
                           TypeName(iterable))));
  }

  // Binds the loop variable(s) to an item.
  const auto bind = [&node](const Value& item,
                            Environment& target) -> absl::Status {
    if (node.loopvar->kind == Node::Kind::kIdentifier) {
      target.Set(As<Identifier>(*node.loopvar).name, item);
      return absl::OkStatus();
    }
    const auto& names = As<Sequence>(*node.loopvar).items;
    // Only a list unpacks: the reference refuses its own tuples here.
    if (!item.is_array() || item.is_tuple()) {
      return Fail(AtLine(
          node.line, Cat("Cannot unpack non-iterable type: ", TypeName(item))));
    }
    const auto& values = item.array().items;
    if (names.size() != values.size()) {
      return Fail(AtLine(
          node.line, Cat("Too ", names.size() > values.size() ? "few" : "many",
                         " items to unpack")));
    }
    for (size_t j = 0; j < names.size(); ++j) {
      if (names[j]->kind != Node::Kind::kIdentifier) {
        return Fail(AtLine(node.line, "Cannot unpack to a non-name"));
      }
      target.Set(As<Identifier>(*names[j]).name, values[j]);
    }
    return absl::OkStatus();
  };

  std::vector<Value> items;
  for (const Value& item : candidates) {
    if (filter != nullptr) {
      Environment loop_scope(&scope);
      RETURN_IF_ERROR(bind(item, loop_scope));
      ASSIGN_OR_RETURN(Value keep, Eval(*filter, loop_scope));
      if (!Truthy(keep)) continue;
    } else if (node.loopvar->kind != Node::Kind::kIdentifier) {
      // Unpacking errors surface before the first iteration, as there.
      Environment probe(&scope);
      RETURN_IF_ERROR(bind(item, probe));
    }
    items.push_back(item);
  }

  std::string result;
  bool no_iteration = true;
  const double n = static_cast<double>(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    RETURN_IF_ERROR(Step(node));  // an empty body costs its iterations too
    const double k = static_cast<double>(i);
    Object loop;
    loop.entries.reserve(9);  // distinct keys: no need for Set's lookup
    loop.entries.emplace_back("index", Value::Integer(k + 1));
    loop.entries.emplace_back("index0", Value::Integer(k));
    loop.entries.emplace_back("revindex", Value::Integer(n - k));
    loop.entries.emplace_back("revindex0", Value::Integer(n - k - 1));
    loop.entries.emplace_back("first", Value::Bool(i == 0));
    loop.entries.emplace_back("last", Value::Bool(i + 1 == items.size()));
    loop.entries.emplace_back("length", Value::Integer(n));
    loop.entries.emplace_back("previtem", i > 0 ? items[i - 1] : Value());
    loop.entries.emplace_back("nextitem",
                              i + 1 < items.size() ? items[i + 1] : Value());
    scope.Set("loop", Value::MakeObject(std::move(loop)));
    RETURN_IF_ERROR(bind(items[i], scope));
    // An iteration ended by break or continue leaves no output, as in
    // the reference (its partial text is thrown away with the exception).
    std::string iteration;
    ASSIGN_OR_RETURN(Flow flow, ExecBlock(node.body, scope, iteration));
    if (flow == Flow::kContinue) continue;
    if (flow == Flow::kBreak) break;
    RETURN_IF_ERROR(At(node, Emit(result, iteration)));
    no_iteration = false;
  }
  if (no_iteration) {
    ASSIGN_OR_RETURN(Flow flow, ExecBlock(node.default_block, scope, result));
    if (flow != Flow::kNormal) return flow;
  }
  RETURN_IF_ERROR(At(node, Emit(out, result)));
  return Flow::kNormal;
}

absl::StatusOr<Interpreter::Flow> Interpreter::ExecSet(const Set& node,
                                                       Environment& env) {
  Value rhs;
  if (node.value) {
    ASSIGN_OR_RETURN(rhs, Eval(*node.value, env));
  } else {
    std::string rendered;
    ASSIGN_OR_RETURN(Flow flow, ExecBlock(node.body, env, rendered));
    if (flow != Flow::kNormal) return flow;
    rhs = Value::String(std::move(rendered));
  }
  const Node& target = *node.assignee;
  switch (target.kind) {
    case Node::Kind::kIdentifier:
      env.Set(As<Identifier>(target).name, std::move(rhs));
      return Flow::kNormal;
    case Node::Kind::kTupleLiteral: {
      const auto& names = As<Sequence>(target).items;
      if (!rhs.is_array()) {
        return Fail(AtLine(
            node.line,
            Cat("Cannot unpack non-iterable type in set: ", TypeName(rhs))));
      }
      const auto values = rhs.array().items;
      if (names.size() != values.size()) {
        return Fail(
            AtLine(node.line,
                   Cat("Too ", names.size() > values.size() ? "few" : "many",
                       " items to unpack in set")));
      }
      for (size_t i = 0; i < names.size(); ++i) {
        if (names[i]->kind != Node::Kind::kIdentifier) {
          return Fail(AtLine(node.line, "Cannot unpack to a non-name in set"));
        }
        env.Set(As<Identifier>(*names[i]).name, values[i]);
      }
      return Flow::kNormal;
    }
    case Node::Kind::kMember: {
      const auto& member = As<Member>(target);
      ASSIGN_OR_RETURN(Value object, Eval(*member.object, env));
      if (!object.is_namespace()) {
        return Fail(AtLine(node.line,
                           "cannot assign attribute on non-namespace object"));
      }
      if (member.property->kind != Node::Kind::kIdentifier) {
        return Fail(AtLine(
            node.line, "Cannot assign to member with non-identifier property"));
      }
      if (Reaches(rhs, object.identity())) {
        return Fail(AtLine(node.line, "a namespace cannot hold itself"));
      }
      object.object().Set(As<Identifier>(*member.property).name,
                          std::move(rhs));
      return Flow::kNormal;
    }
    default:
      return Fail(AtLine(node.line, "Invalid left-hand side of set"));
  }
}

void Interpreter::DefineMacro(const Macro& node, Environment& env) {
  env.Set(
      node.name,
      Value::MakeFunction(
          node.name,
          [this, &node](CallArgs& args,
                        Environment& caller) -> absl::StatusOr<Value> {
            Environment scope(&caller);
            RETURN_IF_ERROR(BindArguments(Cat("'", node.name, "'"), node.params,
                                          node.special, args, scope));
            return RenderBody(node.body, scope);
          }));
}

absl::StatusOr<Value> Interpreter::RenderBody(const Body& body,
                                              Environment& scope) {
  if (call_depth_ >= kMaxCallDepth) {
    return Fail(Cat("calls nested deeper than ", kMaxCallDepth));
  }
  ++call_depth_;
  std::string out;
  absl::StatusOr<Flow> flow = ExecBlock(body, scope, out);
  --call_depth_;
  if (!flow.ok()) return flow.status();
  if (*flow != Flow::kNormal) return Fail("break or continue outside a loop");
  return Value::String(std::move(out));
}

absl::Status Interpreter::BindArguments(std::string_view display_name,
                                        const std::vector<NodePtr>& params,
                                        const SpecialArguments& special,
                                        CallArgs& args, Environment& scope) {
  std::vector<std::pair<std::string, Value>> keywords = args.keywords;
  std::vector<std::pair<std::string, const Node*>> pending_defaults;
  for (size_t i = 0; i < params.size(); ++i) {
    const Node& p = *params[i];
    const bool has_default = p.kind == Node::Kind::kKeywordArgument;
    const std::string& name =
        has_default ? As<KeywordArgument>(p).key : As<Identifier>(p).name;
    std::optional<Value> value;
    if (i < args.positional.size()) value = args.positional[i];
    if (!value) {
      for (auto it = keywords.begin(); it != keywords.end(); ++it) {
        if (it->first == name) {
          value = it->second;
          keywords.erase(it);
          break;
        }
      }
    }
    if (!value && has_default) {
      pending_defaults.emplace_back(name, As<KeywordArgument>(p).value.get());
    }
    scope.Set(name, value.value_or(Value()));
  }
  if (special.kwargs) {
    Object kwargs;
    for (auto& [k, v] : keywords) kwargs.Set(k, v);
    scope.Set("kwargs", Value::MakeObject(std::move(kwargs)));
  } else if (!keywords.empty()) {
    return Fail(Cat("macro ", display_name, " takes no keyword argument '",
                    keywords.front().first, "'"));
  }
  if (special.varargs) {
    std::vector<Value> rest;
    for (size_t i = params.size(); i < args.positional.size(); ++i) {
      rest.push_back(args.positional[i]);
    }
    scope.Set("varargs", Value::MakeArray(std::move(rest)));
  } else if (args.positional.size() > params.size()) {
    return Fail(Cat("macro ", display_name, " takes not more than ",
                    params.size(), " argument(s)"));
  }
  for (const auto& [name, expr] : pending_defaults) {
    ASSIGN_OR_RETURN(Value v, Eval(*expr, scope));
    scope.Set(name, std::move(v));
  }
  return absl::OkStatus();
}

absl::StatusOr<Interpreter::Flow> Interpreter::ExecCallBlock(
    const CallBlock& node, Environment& env, std::string& out) {
  // caller() may only run while this block runs: `alive` lets a copy that
  // escaped (stored in a namespace) fail instead of touching a dead scope.
  auto alive = std::make_shared<bool>(true);
  std::weak_ptr<bool> weak = alive;
  Value caller = Value::MakeFunction(
      "caller",
      [this, &node, &env, weak](CallArgs& args,
                                Environment&) -> absl::StatusOr<Value> {
        if (weak.expired())
          return Fail("caller() called outside its call block");
        Environment scope(&env);
        RETURN_IF_ERROR(BindArguments("None", node.caller_params, node.special,
                                      args, scope));
        return RenderBody(node.body, scope);
      });
  const auto& call = As<Call>(*node.call);
  ASSIGN_OR_RETURN(CallArgs args, EvalArguments(call.args, env));
  ASSIGN_OR_RETURN(Value fn, Eval(*call.callee, env));
  if (!fn.is_function()) {
    return Fail(AtLine(node.line,
                       Cat("Cannot call something that is not a function: got ",
                           TypeName(fn))));
  }
  Environment call_env(&env);
  call_env.Set("caller", std::move(caller));
  ASSIGN_OR_RETURN(Value result, At(node, fn.function().call(args, call_env)));
  if (result.is_none() || result.is_undefined()) return Flow::kNormal;
  ASSIGN_OR_RETURN(std::string s, At(node, ToString(result)));
  RETURN_IF_ERROR(At(node, Emit(out, s)));
  return Flow::kNormal;
}

absl::StatusOr<CallArgs> Interpreter::EvalArguments(
    const std::vector<NodePtr>& args, Environment& env) {
  CallArgs out;
  // The whole positional part first, then the keywords, as in Python.
  for (const NodePtr& arg : args) {
    if (arg->kind == Node::Kind::kSpread) {
      ASSIGN_OR_RETURN(Value v, Eval(*As<Spread>(*arg).argument, env));
      if (!v.is_array()) {
        return Fail(AtLine(
            arg->line, Cat("Cannot unpack non-iterable type: ", TypeName(v))));
      }
      for (const Value& item : v.array().items) out.positional.push_back(item);
    } else if (arg->kind != Node::Kind::kKeywordArgument &&
               arg->kind != Node::Kind::kKeywordSpread) {
      ASSIGN_OR_RETURN(Value v, Eval(*arg, env));
      out.positional.push_back(std::move(v));
    }
  }
  const auto add = [&](const Node& at, std::string key,
                       Value value) -> absl::Status {
    if (out.Keyword(key) != nullptr) {
      return Fail(
          AtLine(at.line,
                 Cat("Got multiple values for keyword argument '", key, "'")));
    }
    out.keywords.emplace_back(std::move(key), std::move(value));
    return absl::OkStatus();
  };
  for (const NodePtr& arg : args) {
    if (arg->kind == Node::Kind::kKeywordArgument) {
      const auto& kw = As<KeywordArgument>(*arg);
      ASSIGN_OR_RETURN(Value v, Eval(*kw.value, env));
      RETURN_IF_ERROR(add(*arg, kw.key, std::move(v)));
    } else if (arg->kind == Node::Kind::kKeywordSpread) {
      ASSIGN_OR_RETURN(Value v, Eval(*As<Spread>(*arg).argument, env));
      if (!v.is_object()) {
        return Fail(AtLine(
            arg->line,
            Cat("Argument after ** must be a mapping, not ", TypeName(v))));
      }
      for (const auto& [k, value] : v.object().entries) {
        RETURN_IF_ERROR(add(*arg, k, value));
      }
    }
  }
  return out;
}

absl::StatusOr<Value> Interpreter::EvalFilter(const Value& operand,
                                              const Node& filter,
                                              Environment& env) {
  if (filter.kind == Node::Kind::kIdentifier) {
    return At(filter,
              ApplyFilter(As<Identifier>(filter).name, operand, nullptr));
  }
  const auto& call = As<Call>(filter);
  ASSIGN_OR_RETURN(CallArgs args, EvalArguments(call.args, env));
  return At(filter,
            ApplyFilter(As<Identifier>(*call.callee).name, operand, &args));
}

absl::StatusOr<Value> Interpreter::EvalSlice(const Value& object,
                                             const Slice& slice,
                                             Environment& env) {
  if (!object.is_array() && !object.is_string()) {
    return Fail(AtLine(slice.line, "Slice object must be an array or string"));
  }
  std::optional<double> parts[3];
  const Node* nodes[3] = {slice.start.get(), slice.stop.get(),
                          slice.step.get()};
  for (int i = 0; i < 3; ++i) {
    if (nodes[i] == nullptr) continue;
    ASSIGN_OR_RETURN(Value v, Eval(*nodes[i], env));
    if (v.is_undefined()) continue;  // like an omitted part
    if (!v.is_integer()) {
      return Fail(
          AtLine(slice.line,
                 "Slice start, stop and step must be integers or undefined"));
    }
    parts[i] = v.number();
  }
  const double step = parts[2].value_or(1);
  if (object.is_array()) {
    const auto& items = object.array().items;
    std::vector<Value> out;
    for (size_t i : SliceIndices(items.size(), parts[0], parts[1], step)) {
      out.push_back(items[i]);
    }
    return Value::MakeArray(std::move(out));
  }
  const std::vector<std::string> chars = SplitCodePoints(object.str());
  std::string out;
  for (size_t i : SliceIndices(chars.size(), parts[0], parts[1], step)) {
    AppendJs(out, chars[i]);
  }
  return Value::String(std::move(out));
}

absl::StatusOr<Value> Interpreter::EvalMember(const Member& node,
                                              Environment& env) {
  ASSIGN_OR_RETURN(Value object, Eval(*node.object, env));
  Value property;
  if (node.computed) {
    if (node.property->kind == Node::Kind::kSlice) {
      return EvalSlice(object, As<Slice>(*node.property), env);
    }
    ASSIGN_OR_RETURN(property, Eval(*node.property, env));
  } else if (node.property->kind == Node::Kind::kIntegerLiteral) {
    property = Value::Integer(As<NumberLiteral>(*node.property).value);
  } else {
    property = Value::String(As<Identifier>(*node.property).name);
  }
  return At(node, GetMember(object, property));
}

absl::StatusOr<Value> Interpreter::EvalBinary(const Binary& node,
                                              Environment& env) {
  const std::string& op = node.op;
  ASSIGN_OR_RETURN(Value left, Eval(*node.left, env));
  if (op == "and") return Truthy(left) ? Eval(*node.right, env) : left;
  if (op == "or") return Truthy(left) ? left : Eval(*node.right, env);
  ASSIGN_OR_RETURN(Value right, Eval(*node.right, env));
  if (op == "==") return Value::Bool(LooseEquals(left, right));
  if (op == "!=") return Value::Bool(!LooseEquals(left, right));
  const bool membership = op == "in" || op == "not in";

  if (left.is_undefined() || right.is_undefined()) {
    if (right.is_undefined() && membership) return Value::Bool(op == "not in");
    return Fail(AtLine(node.line, Cat("Cannot perform operation ", op,
                                      " on undefined values")));
  }
  if (left.is_none() || right.is_none()) {
    return Fail(AtLine(
        node.line, Cat("Cannot perform operation ", op, " on null values")));
  }
  const auto concat = [&]() -> absl::StatusOr<Value> {
    ASSIGN_OR_RETURN(std::string a, At(node, ToJsPrimitiveString(left)));
    ASSIGN_OR_RETURN(std::string b, At(node, ToJsPrimitiveString(right)));
    AppendJs(a, b);
    return Value::String(std::move(a));
  };
  if (op == "~") return concat();
  if (op == "**" && NumericLike(left) && NumericLike(right)) {
    const double a = NumericValue(left);
    const double b = NumericValue(right);
    if (a == 0 && b < 0) {
      return Fail(
          AtLine(node.line, "0.0 cannot be raised to a negative power"));
    }
    const double result = JsPow(a, b);
    if (!std::isfinite(result)) {
      return Fail(AtLine(node.line,
                         "Exponentiation result is not a finite real number"));
    }
    const bool is_float = left.is_float() || right.is_float() || b < 0;
    return is_float ? Value::Float(result) : Value::Integer(result);
  }
  if (left.is_number() && right.is_number()) {
    const double a = left.number();
    const double b = right.number();
    const bool is_float = left.is_float() || right.is_float();
    const auto number = [is_float](double v) {
      return is_float ? Value::Float(v) : Value::Integer(v);
    };
    if (op == "+") return number(a + b);
    if (op == "-") return number(a - b);
    if (op == "*") return number(a * b);
    if (op == "/") return Value::Float(a / b);
    if (op == "//") return number(std::floor(a / b));
    if (op == "%") return number(std::fmod(a, b));  // JavaScript's %
    if (op == "<") return Value::Bool(a < b);
    if (op == ">") return Value::Bool(a > b);
    if (op == ">=") return Value::Bool(a >= b);
    if (op == "<=") return Value::Bool(a <= b);
  } else if (left.is_array() && right.is_array()) {
    if (op == "+") {
      std::vector<Value> items = left.array().items;
      for (const Value& v : right.array().items) items.push_back(v);
      return Value::MakeArray(std::move(items));
    }
  } else if (right.is_array() && membership) {
    bool member = false;
    for (const Value& v : right.array().items)
      member = member || StrictEquals(v, left);
    return Value::Bool(member == (op == "in"));
  }
  if ((left.is_string() || right.is_string()) && op == "+") return concat();
  if (left.is_string() && right.is_string() && membership) {
    const bool found = right.str().find(left.str()) != std::string::npos;
    return Value::Bool(found == (op == "in"));
  }
  if (left.is_string() && right.is_object() && membership) {
    const bool found = right.object().Find(left.str()) != nullptr;
    return Value::Bool(found == (op == "in"));
  }
  return Fail(AtLine(node.line, Cat("Unknown operator \"", op, "\" between ",
                                    TypeName(left), " and ", TypeName(right))));
}

absl::StatusOr<Value> Interpreter::Eval(const Node& node, Environment& env) {
  const Depth depth(*this);
  RETURN_IF_ERROR(depth.Check(node));
  ASSIGN_OR_RETURN(Value v, EvalNode(node, env));
  RETURN_IF_ERROR(At(node, CheckBounds(v)));
  return v;
}

absl::StatusOr<Value> Interpreter::EvalNode(const Node& node,
                                            Environment& env) {
  RETURN_IF_ERROR(Step(node));
  switch (node.kind) {
    case Node::Kind::kIdentifier:
      return env.Lookup(As<Identifier>(node).name);
    case Node::Kind::kIntegerLiteral:
      return Value::Integer(As<NumberLiteral>(node).value);
    case Node::Kind::kFloatLiteral:
      return Value::Float(As<NumberLiteral>(node).value);
    case Node::Kind::kStringLiteral:
      return Value::String(As<StringLiteral>(node).value);
    case Node::Kind::kArrayLiteral:
    case Node::Kind::kTupleLiteral: {
      std::vector<Value> items;
      for (const NodePtr& item : As<Sequence>(node).items) {
        ASSIGN_OR_RETURN(Value v, Eval(*item, env));
        items.push_back(std::move(v));
      }
      return Value::MakeArray(std::move(items),
                              node.kind == Node::Kind::kTupleLiteral);
    }
    case Node::Kind::kObjectLiteral: {
      Object object;
      for (const auto& [key_node, value_node] :
           As<ObjectLiteral>(node).entries) {
        ASSIGN_OR_RETURN(Value key, Eval(*key_node, env));
        if (!key.is_string()) {
          return Fail(AtLine(node.line, Cat("Object keys must be strings: got ",
                                            TypeName(key))));
        }
        ASSIGN_OR_RETURN(Value value, Eval(*value_node, env));
        object.Set(key.str(), std::move(value));
      }
      return Value::MakeObject(std::move(object));
    }
    case Node::Kind::kMember:
      return EvalMember(As<Member>(node), env);
    case Node::Kind::kCall: {
      const auto& call = As<Call>(node);
      ASSIGN_OR_RETURN(CallArgs args, EvalArguments(call.args, env));
      ASSIGN_OR_RETURN(Value fn, Eval(*call.callee, env));
      if (!fn.is_function()) {
        return Fail(AtLine(
            node.line, Cat("Cannot call something that is not a function: got ",
                           TypeName(fn))));
      }
      return At(node, fn.function().call(args, env));
    }
    case Node::Kind::kBinary:
      return EvalBinary(As<Binary>(node), env);
    case Node::Kind::kUnary: {
      const auto& n = As<Unary>(node);
      ASSIGN_OR_RETURN(Value v, Eval(*n.argument, env));
      if (n.op == "not") return Value::Bool(!Truthy(v));
      if (!NumericLike(v)) {
        return Fail(AtLine(node.line, Cat("Unknown operator \"", n.op,
                                          "\" for ", TypeName(v))));
      }
      const double result = (n.op == "-" ? -1 : 1) * NumericValue(v);
      return v.is_float() ? Value::Float(result) : Value::Integer(result);
    }
    case Node::Kind::kFilter: {
      const auto& n = As<Filter>(node);
      ASSIGN_OR_RETURN(Value operand, Eval(*n.operand, env));
      return EvalFilter(operand, *n.filter, env);
    }
    case Node::Kind::kTest: {
      const auto& n = As<Test>(node);
      ASSIGN_OR_RETURN(Value operand, Eval(*n.operand, env));
      ASSIGN_OR_RETURN(bool result,
                       At(node, ApplyTest(n.name, operand, nullptr)));
      return Value::Bool(result != n.negate);
    }
    case Node::Kind::kSelect: {
      const auto& n = As<Select>(node);
      ASSIGN_OR_RETURN(Value test, Eval(*n.test, env));
      if (!Truthy(test)) return Value();
      return Eval(*n.lhs, env);
    }
    case Node::Kind::kTernary: {
      const auto& n = As<Ternary>(node);
      ASSIGN_OR_RETURN(Value condition, Eval(*n.condition, env));
      return Eval(Truthy(condition) ? *n.true_expr : *n.false_expr, env);
    }
    default:
      // Statements, keyword arguments and slices only stand where the
      // parser puts them (a body, a call, a subscript).
      return Fail(AtLine(node.line, "unexpected construct in an expression"));
  }
}

}  // namespace hydra::model::chat_template::jinja
