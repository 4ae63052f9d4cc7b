// Evaluates a parsed template, as @huggingface/jinja's Interpreter does:
// scopes (a for loop and a macro call each open one; if and set do not),
// macros that see their caller's variables, loop variables, break and
// continue (which drop the output of the iteration they end, as there).
#ifndef HYDRA_MODEL_CHAT_TEMPLATE_JINJA_INTERPRETER_H_
#define HYDRA_MODEL_CHAT_TEMPLATE_JINJA_INTERPRETER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "model/chat_template/jinja/absl_compat.h"
#include "model/chat_template/jinja/ast.h"
#include "model/chat_template/jinja/value.h"

namespace hydra::model::chat_template::jinja {

// One scope of variables; lookups fall back to the enclosing scopes.
class Environment {
 public:
  explicit Environment(Environment* parent = nullptr) : parent_(parent) {}
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  // Undefined when no scope has `name`.
  Value Lookup(std::string_view name) const;
  bool HasOwn(std::string_view name) const {
    return variables_.contains(Av(name));
  }
  // Sets `name` in this scope (never in an enclosing one).
  void Set(std::string name, Value value);

 private:
  Environment* parent_;
  absl::flat_hash_map<std::string, Value> variables_;
};

class Interpreter {
 public:
  // Renders `program` with `globals` as the outermost scope.
  absl::StatusOr<std::string> Run(const Program& program, Environment& globals);

 private:
  // How a block ended: normally, or by {% break %} / {% continue %}.
  enum class Flow { kNormal, kBreak, kContinue };

  absl::StatusOr<Flow> ExecBlock(const Body& body, Environment& env,
                                 std::string& out);
  absl::StatusOr<Flow> Exec(const Node& node, Environment& env,
                            std::string& out);
  absl::StatusOr<Flow> ExecFor(const For& node, Environment& env,
                               std::string& out);
  absl::StatusOr<Flow> ExecSet(const Set& node, Environment& env);
  absl::StatusOr<Flow> ExecCallBlock(const CallBlock& node, Environment& env,
                                     std::string& out);
  void DefineMacro(const Macro& node, Environment& env);

  // EvalNode, then the bounds of value.h on what it made.
  absl::StatusOr<Value> Eval(const Node& node, Environment& env);
  absl::StatusOr<Value> EvalNode(const Node& node, Environment& env);
  absl::StatusOr<Value> EvalBinary(const Binary& node, Environment& env);
  absl::StatusOr<Value> EvalMember(const Member& node, Environment& env);
  absl::StatusOr<Value> EvalSlice(const Value& object, const Slice& slice,
                                  Environment& env);
  absl::StatusOr<Value> EvalFilter(const Value& operand, const Node& filter,
                                   Environment& env);
  absl::StatusOr<CallArgs> EvalArguments(const std::vector<NodePtr>& args,
                                         Environment& env);

  // Binds a macro's (or caller()'s) parameters in `scope`.
  absl::Status BindArguments(std::string_view display_name,
                             const std::vector<NodePtr>& params,
                             const SpecialArguments& special, CallArgs& args,
                             Environment& scope);
  // Renders a macro or caller() body into a string value.
  absl::StatusOr<Value> RenderBody(const Body& body, Environment& scope);

  // Counts one evaluation step; fails past kMaxSteps.
  absl::Status Step(const Node& node);
  // Counts one level of Exec or Eval while it lives; Check fails past
  // kMaxEvalDepth.
  class Depth {
   public:
    explicit Depth(Interpreter& interpreter) : depth_(interpreter.eval_depth_) {
      ++depth_;
    }
    ~Depth() { --depth_; }
    Depth(const Depth&) = delete;
    Depth& operator=(const Depth&) = delete;
    absl::Status Check(const Node& node) const;

   private:
    int& depth_;
  };

  // Bounds that keep a hostile template from taking the server down with
  // it: nested calls (recursive macros) and evaluation steps (each node
  // evaluated and each loop iteration: well under a second of work, where a
  // real template takes about 60 a message).
  static constexpr int kMaxCallDepth = 256;
  static constexpr int64_t kMaxSteps = 2'000'000;
  // Exec and Eval nested in each other: a left-deep chain (1 + 1 + ... + 1)
  // nests without nesting in the source, and recursive macros nest too.
  static constexpr int kMaxEvalDepth = 400;
  int call_depth_ = 0;
  int eval_depth_ = 0;
  int64_t steps_ = 0;
};

}  // namespace hydra::model::chat_template::jinja

#endif  // HYDRA_MODEL_CHAT_TEMPLATE_JINJA_INTERPRETER_H_
