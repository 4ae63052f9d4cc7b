// The syntax tree, node for node the reference's ast.ts: statements and
// expressions share one base (a template body holds text, tags and {{ }}
// expressions alike). Every node owns its children and knows its line.
#ifndef HYDRA_MODEL_CHAT_TEMPLATE_JINJA_AST_H_
#define HYDRA_MODEL_CHAT_TEMPLATE_JINJA_AST_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hydra::model::chat_template::jinja {

struct Node {
  enum class Kind {
    // Statements.
    kIf,
    kFor,
    kBreak,
    kContinue,
    kSet,
    kMacro,
    kComment,
    kCallBlock,    // {% call %}
    kFilterBlock,  // {% filter %}
    // Expressions.
    kIdentifier,
    kIntegerLiteral,
    kFloatLiteral,
    kStringLiteral,  // also the text between tags
    kArrayLiteral,
    kTupleLiteral,
    kObjectLiteral,
    kMember,
    kCall,
    kBinary,
    kFilter,
    kTest,
    kUnary,
    kSlice,
    kKeywordArgument,
    kSpread,         // *args in a call
    kKeywordSpread,  // **kwargs in a call
    kSelect,         // `a if b` without else: undefined when b is false
    kTernary,
  };

  Node(Kind kind, int line) : kind(kind), line(line) {}
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const Kind kind;
  const int line;
};

using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

template <typename T>
const T& As(const Node& node) {
  return static_cast<const T&>(node);
}

struct If : Node {
  explicit If(int line) : Node(Kind::kIf, line) {}
  NodePtr test;
  Body body;
  Body alternate;
};

struct For : Node {
  explicit For(int line) : Node(Kind::kFor, line) {}
  NodePtr loopvar;   // an identifier or a tuple of identifiers
  NodePtr iterable;  // a kSelect here filters the items
  Body body;
  Body default_block;  // rendered when no iteration completed
};

struct Set : Node {
  explicit Set(int line) : Node(Kind::kSet, line) {}
  NodePtr assignee;
  NodePtr value;  // null for {% set x %}...{% endset %}
  Body body;
};

// kwargs and varargs exist in a macro only where its body reads them.
struct SpecialArguments {
  bool kwargs = false;
  bool varargs = false;
};

struct Macro : Node {
  explicit Macro(int line) : Node(Kind::kMacro, line) {}
  std::string name;
  std::vector<NodePtr> params;  // identifiers or keyword arguments (defaults)
  Body body;
  SpecialArguments special;
};

struct CallBlock : Node {
  explicit CallBlock(int line) : Node(Kind::kCallBlock, line) {}
  NodePtr call;                        // a kCall
  std::vector<NodePtr> caller_params;  // of the caller() it defines
  Body body;
  SpecialArguments special;
};

struct FilterBlock : Node {
  explicit FilterBlock(int line) : Node(Kind::kFilterBlock, line) {}
  NodePtr filter;  // an identifier or a call of one
  Body body;
};

struct Identifier : Node {
  Identifier(int line, std::string name)
      : Node(Kind::kIdentifier, line), name(std::move(name)) {}
  std::string name;
};

struct NumberLiteral : Node {
  NumberLiteral(Kind kind, int line, double value)
      : Node(kind, line), value(value) {}
  double value;
};

struct StringLiteral : Node {
  StringLiteral(int line, std::string value)
      : Node(Kind::kStringLiteral, line), value(std::move(value)) {}
  std::string value;
};

// kArrayLiteral, kTupleLiteral.
struct Sequence : Node {
  Sequence(Kind kind, int line) : Node(kind, line) {}
  std::vector<NodePtr> items;
};

struct ObjectLiteral : Node {
  explicit ObjectLiteral(int line) : Node(Kind::kObjectLiteral, line) {}
  std::vector<std::pair<NodePtr, NodePtr>> entries;
};

struct Member : Node {
  explicit Member(int line) : Node(Kind::kMember, line) {}
  NodePtr object;
  NodePtr property;  // identifier or integer when !computed
  bool computed = false;
};

struct Call : Node {
  explicit Call(int line) : Node(Kind::kCall, line) {}
  NodePtr callee;
  std::vector<NodePtr> args;
};

struct Binary : Node {
  Binary(int line, std::string op)
      : Node(Kind::kBinary, line), op(std::move(op)) {}
  std::string op;  // "+", "and", "not in", ...
  NodePtr left;
  NodePtr right;
};

struct Filter : Node {
  explicit Filter(int line) : Node(Kind::kFilter, line) {}
  NodePtr operand;
  NodePtr filter;  // an identifier or a call of one
};

struct Test : Node {
  explicit Test(int line) : Node(Kind::kTest, line) {}
  NodePtr operand;
  bool negate = false;
  std::string name;
};

struct Unary : Node {
  Unary(int line, std::string op)
      : Node(Kind::kUnary, line), op(std::move(op)) {}
  std::string op;  // "not", "-", "+"
  NodePtr argument;
};

struct Slice : Node {
  explicit Slice(int line) : Node(Kind::kSlice, line) {}
  NodePtr start, stop, step;  // each may be null
};

struct KeywordArgument : Node {
  KeywordArgument(int line, std::string key)
      : Node(Kind::kKeywordArgument, line), key(std::move(key)) {}
  std::string key;
  NodePtr value;
};

// kSpread, kKeywordSpread.
struct Spread : Node {
  Spread(Kind kind, int line) : Node(kind, line) {}
  NodePtr argument;
};

struct Select : Node {
  explicit Select(int line) : Node(Kind::kSelect, line) {}
  NodePtr lhs;
  NodePtr test;
};

struct Ternary : Node {
  explicit Ternary(int line) : Node(Kind::kTernary, line) {}
  NodePtr condition;
  NodePtr true_expr;
  NodePtr false_expr;
};

// Nodes without fields of their own: break, continue, comment.
struct Leaf : Node {
  Leaf(Kind kind, int line) : Node(kind, line) {}
};

struct Program {
  Body body;
};

}  // namespace hydra::model::chat_template::jinja

#endif  // HYDRA_MODEL_CHAT_TEMPLATE_JINJA_AST_H_
