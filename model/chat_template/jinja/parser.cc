#include "model/chat_template/jinja/parser.h"

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/chat_template/jinja/absl_compat.h"
#include "model/chat_template/jinja/builtins.h"
#include "model/chat_template/jinja/filters.h"
#include "model/chat_template/jinja/js_text.h"
#include "model/chat_template/jinja/special_arguments.h"

namespace hydra::model::chat_template::jinja {
namespace {

// Jinja tags this renderer does not implement, named as such in errors
// (anything else unknown is "unknown tag").
constexpr std::string_view kUnsupportedTags[] = {
    "include", "extends",    "block", "import", "from",      "with",
    "raw",     "autoescape", "trans", "do",     "pluralize",
};

// The names of block ends and middles: "unexpected" where they stray.
constexpr std::string_view kBlockWords[] = {
    "endif",   "elif",      "else",     "endfor",  "endmacro", "endset",
    "endcall", "endfilter", "endblock", "endwith", "endraw",   "endautoescape",
};

template <std::size_t N>
bool OneOf(std::string_view name, const std::string_view (&names)[N]) {
  for (std::string_view n : names) {
    if (n == name) return true;
  }
  return false;
}

enum class ArgsMode { kCall, kParameters };

class Parser {
 public:
  explicit Parser(const std::vector<Token>& tokens) : tokens_(tokens) {}

  absl::StatusOr<std::unique_ptr<Program>> Run() {
    auto program = std::make_unique<Program>();
    while (current_ < tokens_.size()) {
      ASSIGN_OR_RETURN(NodePtr node, ParseAny());
      program->body.push_back(std::move(node));
    }
    return program;
  }

 private:
  // --- token helpers --------------------------------------------------------
  bool AtEnd() const { return current_ >= tokens_.size(); }
  int Line() const {
    if (tokens_.empty()) return 1;
    return tokens_[std::min(current_, tokens_.size() - 1)].line;
  }
  absl::Status Error(std::string_view message) const {
    return absl::InvalidArgumentError(AtLine(Line(), message));
  }
  absl::Status ErrorAt(int line, std::string_view message) const {
    return absl::InvalidArgumentError(AtLine(line, message));
  }

  bool Is(TokenType type, size_t ahead = 0) const {
    return current_ + ahead < tokens_.size() &&
           tokens_[current_ + ahead].type == type;
  }
  bool IsIdentifier(std::string_view name, size_t ahead = 0) const {
    return Is(TokenType::kIdentifier, ahead) &&
           tokens_[current_ + ahead].value == name;
  }
  bool IsStatement(std::initializer_list<std::string_view> names) const {
    if (!Is(TokenType::kOpenStatement) || !Is(TokenType::kIdentifier, 1)) {
      return false;
    }
    for (std::string_view n : names) {
      if (tokens_[current_ + 1].value == n) return true;
    }
    return false;
  }

  absl::StatusOr<const Token*> Expect(TokenType type, std::string_view what) {
    if (AtEnd()) {
      return Error(Cat("expected ", what, ", got the end of the template"));
    }
    const Token& t = tokens_[current_];
    if (t.type != type) {
      return Error(Cat("expected ", what, ", got '", t.value, "'"));
    }
    ++current_;
    return &t;
  }
  absl::Status ExpectIdentifier(std::string_view name) {
    if (!IsIdentifier(name)) {
      return Error(Cat("expected '", name, "'"));
    }
    ++current_;
    return absl::OkStatus();
  }
  // {% name %}
  absl::Status ExpectEndTag(std::string_view name) {
    RETURN_IF_ERROR(Expect(TokenType::kOpenStatement, "'{%'").status());
    RETURN_IF_ERROR(ExpectIdentifier(name));
    return Expect(TokenType::kCloseStatement, "'%}'").status();
  }

  // Parses nodes into `body` until one of `ends` opens a tag; `opened`
  // names the block for the error when the template ends first.
  absl::Status ParseUntil(std::initializer_list<std::string_view> ends,
                          std::string_view opened, int line, Body& body) {
    while (!IsStatement(ends)) {
      if (AtEnd()) {
        return ErrorAt(line, Cat("unclosed '", opened, "' block: expected {% ",
                                 *ends.begin(), " %}"));
      }
      ASSIGN_OR_RETURN(NodePtr node, ParseAny());
      body.push_back(std::move(node));
    }
    return absl::OkStatus();
  }

  // Nesting (blocks, parentheses, brackets, unary operators) is bounded:
  // each level costs stack frames here and in the interpreter, and a
  // template of 1500 '(' overflowed the stack (chat_template_fuzzer).
  static constexpr int kMaxNesting = 64;
  class Nest {
   public:
    explicit Nest(Parser& parser) : parser_(parser) { ++parser_.nesting_; }
    ~Nest() { --parser_.nesting_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
    absl::Status Check() const {
      if (parser_.nesting_ <= kMaxNesting) return absl::OkStatus();
      return parser_.Error(Cat("nested deeper than ", kMaxNesting, " levels"));
    }

   private:
    Parser& parser_;
  };

  // --- statements -----------------------------------------------------------
  absl::StatusOr<NodePtr> ParseAny() {
    const Nest nest(*this);
    RETURN_IF_ERROR(nest.Check());
    const Token& t = tokens_[current_];
    switch (t.type) {
      case TokenType::kComment:
        ++current_;
        return NodePtr(std::make_unique<Leaf>(Node::Kind::kComment, t.line));
      case TokenType::kText:
        ++current_;
        return NodePtr(std::make_unique<StringLiteral>(t.line, t.value));
      case TokenType::kOpenStatement:
        return ParseStatement();
      case TokenType::kOpenExpression: {
        ++current_;
        ASSIGN_OR_RETURN(NodePtr e, ParseExpression());
        RETURN_IF_ERROR(Expect(TokenType::kCloseExpression, "'}}'").status());
        return e;
      }
      default:
        return Error(Cat("unexpected '", t.value, "'"));
    }
  }

  absl::StatusOr<NodePtr> ParseStatement() {
    const int line = tokens_[current_].line;
    ++current_;  // {%
    if (!Is(TokenType::kIdentifier)) {
      return Error(AtEnd() ? "expected a tag name, got the end of the template"
                           : Cat("expected a tag name, got '",
                                 tokens_[current_].value, "'"));
    }
    const std::string name = tokens_[current_].value;
    ++current_;
    if (name == "set") return ParseSet(line);
    if (name == "if") {
      ASSIGN_OR_RETURN(NodePtr node, ParseIf(line));
      RETURN_IF_ERROR(ExpectEndTag("endif"));
      return node;
    }
    if (name == "for") {
      ASSIGN_OR_RETURN(NodePtr node, ParseFor(line));
      RETURN_IF_ERROR(ExpectEndTag("endfor"));
      return node;
    }
    if (name == "macro") {
      ASSIGN_OR_RETURN(NodePtr node, ParseMacro(line));
      RETURN_IF_ERROR(ExpectEndTag("endmacro"));
      return node;
    }
    if (name == "call") return ParseCallBlock(line);
    if (name == "filter") return ParseFilterBlock(line);
    if (name == "break" || name == "continue") {
      RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
      return NodePtr(std::make_unique<Leaf>(
          name == "break" ? Node::Kind::kBreak : Node::Kind::kContinue, line));
    }
    if (OneOf(name, kUnsupportedTags)) {
      return ErrorAt(line, Cat("unsupported tag '", name, "'"));
    }
    if (OneOf(name, kBlockWords)) {
      return ErrorAt(line, Cat("unexpected tag '", name, "'"));
    }
    return ErrorAt(line, Cat("unknown tag '", name, "'"));
  }

  // {% set x = v %}, {% set a, b = v %}, {% set ns.x = v %},
  // {% set x %}...{% endset %}.
  absl::StatusOr<NodePtr> ParseSet(int line) {
    auto node = std::make_unique<Set>(line);
    ASSIGN_OR_RETURN(node->assignee, ParseExpressionSequence(false));
    if (Is(TokenType::kEquals)) {
      ++current_;
      ASSIGN_OR_RETURN(node->value, ParseExpressionSequence(false));
    } else {
      RETURN_IF_ERROR(
          Expect(TokenType::kCloseStatement, "'=' or '%}'").status());
      RETURN_IF_ERROR(ParseUntil({"endset"}, "set", line, node->body));
      current_ += 1;  // {%
      RETURN_IF_ERROR(ExpectIdentifier("endset"));
    }
    RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
    return NodePtr(std::move(node));
  }

  absl::StatusOr<NodePtr> ParseIf(int line) {
    auto node = std::make_unique<If>(line);
    ASSIGN_OR_RETURN(node->test, ParseExpression());
    RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
    RETURN_IF_ERROR(
        ParseUntil({"endif", "elif", "else"}, "if", line, node->body));
    if (IsStatement({"elif"})) {
      const int elif_line = tokens_[current_].line;
      current_ += 2;
      ASSIGN_OR_RETURN(NodePtr nested, ParseIf(elif_line));
      node->alternate.push_back(std::move(nested));
    } else if (IsStatement({"else"})) {
      current_ += 2;
      RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
      RETURN_IF_ERROR(ParseUntil({"endif"}, "if", line, node->alternate));
    }
    return NodePtr(std::move(node));
  }

  absl::StatusOr<NodePtr> ParseFor(int line) {
    auto node = std::make_unique<For>(line);
    ASSIGN_OR_RETURN(node->loopvar, ParseExpressionSequence(true));
    if (node->loopvar->kind != Node::Kind::kIdentifier &&
        node->loopvar->kind != Node::Kind::kTupleLiteral) {
      return ErrorAt(line, "expected a name or names after 'for'");
    }
    if (!IsIdentifier("in"))
      return Error("expected 'in' after the loop variable");
    ++current_;
    ASSIGN_OR_RETURN(node->iterable, ParseExpression());
    if (IsIdentifier("recursive")) {
      return Error("unsupported loop modifier 'recursive'");
    }
    RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
    RETURN_IF_ERROR(ParseUntil({"endfor", "else"}, "for", line, node->body));
    if (IsStatement({"else"})) {
      current_ += 2;
      RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
      RETURN_IF_ERROR(ParseUntil({"endfor"}, "for", line, node->default_block));
    }
    return NodePtr(std::move(node));
  }

  absl::StatusOr<NodePtr> ParseMacro(int line) {
    auto node = std::make_unique<Macro>(line);
    ASSIGN_OR_RETURN(NodePtr name, ParsePrimary());
    if (name->kind != Node::Kind::kIdentifier) {
      return ErrorAt(line, "expected a name after 'macro'");
    }
    node->name = As<Identifier>(*name).name;
    ASSIGN_OR_RETURN(node->params, ParseArgs(ArgsMode::kParameters));
    RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
    RETURN_IF_ERROR(ParseUntil({"endmacro"}, "macro", line, node->body));
    node->special = FindSpecialArguments(node->params, node->body);
    return NodePtr(std::move(node));
  }

  absl::StatusOr<NodePtr> ParseCallBlock(int line) {
    auto node = std::make_unique<CallBlock>(line);
    if (Is(TokenType::kOpenParen)) {
      ASSIGN_OR_RETURN(node->caller_params, ParseArgs(ArgsMode::kParameters));
    }
    ASSIGN_OR_RETURN(NodePtr callee, ParsePrimary());
    if (callee->kind != Node::Kind::kIdentifier) {
      return ErrorAt(line, "expected a macro name after 'call'");
    }
    auto call = std::make_unique<Call>(line);
    call->callee = std::move(callee);
    ASSIGN_OR_RETURN(call->args, ParseArgs(ArgsMode::kCall));
    node->call = std::move(call);
    RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
    RETURN_IF_ERROR(ParseUntil({"endcall"}, "call", line, node->body));
    RETURN_IF_ERROR(ExpectEndTag("endcall"));
    node->special = FindSpecialArguments(node->caller_params, node->body);
    return NodePtr(std::move(node));
  }

  absl::StatusOr<NodePtr> ParseFilterBlock(int line) {
    auto node = std::make_unique<FilterBlock>(line);
    ASSIGN_OR_RETURN(node->filter, ParsePrimary());
    if (node->filter->kind == Node::Kind::kIdentifier &&
        Is(TokenType::kOpenParen)) {
      ASSIGN_OR_RETURN(node->filter,
                       ParseCallExpression(std::move(node->filter)));
    }
    RETURN_IF_ERROR(CheckFilter(*node->filter, line));
    RETURN_IF_ERROR(Expect(TokenType::kCloseStatement, "'%}'").status());
    RETURN_IF_ERROR(ParseUntil({"endfilter"}, "filter", line, node->body));
    RETURN_IF_ERROR(ExpectEndTag("endfilter"));
    return NodePtr(std::move(node));
  }

  // --- expressions, lowest precedence first ---------------------------------
  absl::StatusOr<NodePtr> ParseExpressionSequence(bool primary) {
    const int line = Line();
    auto parse = [&]() { return primary ? ParsePrimary() : ParseExpression(); };
    ASSIGN_OR_RETURN(NodePtr first, parse());
    if (!Is(TokenType::kComma)) return first;
    auto tuple = std::make_unique<Sequence>(Node::Kind::kTupleLiteral, line);
    tuple->items.push_back(std::move(first));
    while (true) {
      ++current_;  // ,
      ASSIGN_OR_RETURN(NodePtr next, parse());
      tuple->items.push_back(std::move(next));
      if (!Is(TokenType::kComma)) break;
    }
    return NodePtr(std::move(tuple));
  }

  absl::StatusOr<NodePtr> ParseExpression() {
    const Nest nest(*this);
    RETURN_IF_ERROR(nest.Check());
    const int line = Line();
    ASSIGN_OR_RETURN(NodePtr a, ParseLogicalOr());
    if (!IsIdentifier("if")) return a;
    ++current_;
    ASSIGN_OR_RETURN(NodePtr test, ParseLogicalOr());
    if (IsIdentifier("else")) {
      ++current_;
      auto node = std::make_unique<Ternary>(line);
      node->condition = std::move(test);
      node->true_expr = std::move(a);
      ASSIGN_OR_RETURN(node->false_expr, ParseExpression());
      return NodePtr(std::move(node));
    }
    auto node = std::make_unique<Select>(line);
    node->lhs = std::move(a);
    node->test = std::move(test);
    return NodePtr(std::move(node));
  }

  template <typename Next>
  absl::StatusOr<NodePtr> ParseLogical(std::string_view op, Next next) {
    ASSIGN_OR_RETURN(NodePtr left, next());
    while (IsIdentifier(op)) {
      auto node = std::make_unique<Binary>(Line(), std::string(op));
      ++current_;
      node->left = std::move(left);
      ASSIGN_OR_RETURN(node->right, next());
      left = std::move(node);
    }
    return left;
  }
  absl::StatusOr<NodePtr> ParseLogicalOr() {
    return ParseLogical("or", [this] { return ParseLogicalAnd(); });
  }
  absl::StatusOr<NodePtr> ParseLogicalAnd() {
    return ParseLogical("and", [this] { return ParseLogicalNot(); });
  }

  absl::StatusOr<NodePtr> ParseLogicalNot() {
    const Nest nest(*this);
    RETURN_IF_ERROR(nest.Check());
    NodePtr result;
    // As in the reference: `not not x` nests; each `not` takes what follows.
    while (IsIdentifier("not")) {
      auto node = std::make_unique<Unary>(Line(), "not");
      ++current_;
      ASSIGN_OR_RETURN(node->argument, ParseLogicalNot());
      result = std::move(node);
    }
    if (result) return result;
    return ParseComparison();
  }

  absl::StatusOr<NodePtr> ParseComparison() {
    ASSIGN_OR_RETURN(NodePtr left, ParseAdditive());
    while (true) {
      std::string op;
      const int line = Line();
      if (IsIdentifier("not") && IsIdentifier("in", 1)) {
        op = "not in";
        current_ += 2;
      } else if (IsIdentifier("in") ||
                 Is(TokenType::kComparisonBinaryOperator)) {
        op = tokens_[current_++].value;
      } else {
        break;
      }
      auto node = std::make_unique<Binary>(line, op);
      node->left = std::move(left);
      ASSIGN_OR_RETURN(node->right, ParseAdditive());
      left = std::move(node);
    }
    return left;
  }

  template <typename Next>
  absl::StatusOr<NodePtr> ParseBinary(TokenType type, Next next) {
    ASSIGN_OR_RETURN(NodePtr left, next());
    while (Is(type)) {
      auto node = std::make_unique<Binary>(Line(), tokens_[current_].value);
      ++current_;
      node->left = std::move(left);
      ASSIGN_OR_RETURN(node->right, next());
      left = std::move(node);
    }
    return left;
  }
  absl::StatusOr<NodePtr> ParseAdditive() {
    return ParseBinary(TokenType::kAdditiveBinaryOperator,
                       [this] { return ParseMultiplicative(); });
  }
  absl::StatusOr<NodePtr> ParseMultiplicative() {
    return ParseBinary(TokenType::kMultiplicativeBinaryOperator,
                       [this] { return ParsePower(); });
  }
  // Left-associative like Jinja's: 2 ** 3 ** 2 == (2 ** 3) ** 2.
  absl::StatusOr<NodePtr> ParsePower() {
    return ParseBinary(TokenType::kExponentiationBinaryOperator,
                       [this] { return ParseTest(); });
  }

  absl::StatusOr<NodePtr> ParseTest() {
    ASSIGN_OR_RETURN(NodePtr operand, ParseFilter());
    while (IsIdentifier("is")) {
      auto node = std::make_unique<Test>(Line());
      ++current_;
      node->negate = IsIdentifier("not");
      if (node->negate) ++current_;
      ASSIGN_OR_RETURN(NodePtr name, ParsePrimary());
      if (name->kind != Node::Kind::kIdentifier) {
        return ErrorAt(node->line, "expected a test name after 'is'");
      }
      node->name = As<Identifier>(*name).name;
      if (!IsKnownTest(node->name)) {
        return ErrorAt(node->line, Cat("unknown test '", node->name, "'"));
      }
      if (Is(TokenType::kOpenParen)) {
        return ErrorAt(node->line, Cat("unsupported test with arguments '",
                                       node->name, "(...)'"));
      }
      node->operand = std::move(operand);
      operand = std::move(node);
    }
    return operand;
  }

  absl::StatusOr<NodePtr> ParseFilter() {
    ASSIGN_OR_RETURN(NodePtr operand, ParseUnarySign());
    while (Is(TokenType::kPipe)) {
      auto node = std::make_unique<Filter>(Line());
      ++current_;
      ASSIGN_OR_RETURN(node->filter, ParsePrimary());
      if (node->filter->kind != Node::Kind::kIdentifier) {
        return ErrorAt(node->line, "expected a filter name after '|'");
      }
      if (Is(TokenType::kOpenParen)) {
        ASSIGN_OR_RETURN(node->filter,
                         ParseCallExpression(std::move(node->filter)));
      }
      RETURN_IF_ERROR(CheckFilter(*node->filter, node->line));
      node->operand = std::move(operand);
      operand = std::move(node);
    }
    return operand;
  }

  // Refuses a filter the renderer does not know, and a call form that is
  // not name(args) (e.g. `x|f(a).b`).
  absl::Status CheckFilter(const Node& filter, int line) const {
    const Node* name = &filter;
    if (filter.kind == Node::Kind::kCall) {
      name = As<Call>(filter).callee.get();
      if (name->kind != Node::Kind::kIdentifier) {
        return ErrorAt(line, "unsupported filter expression");
      }
    } else if (filter.kind != Node::Kind::kIdentifier) {
      return ErrorAt(line, "unsupported filter expression");
    }
    const std::string& n = As<Identifier>(*name).name;
    if (!IsKnownFilter(n)) {
      return ErrorAt(line, Cat("unknown filter '", n, "'"));
    }
    if ((n == "selectattr" || n == "rejectattr") &&
        filter.kind == Node::Kind::kCall) {
      for (const NodePtr& arg : As<Call>(filter).args) {
        if (arg->kind != Node::Kind::kStringLiteral) {
          return ErrorAt(
              line, Cat("the arguments of '", n, "' must be string literals"));
        }
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<NodePtr> ParseUnarySign() {
    const Nest nest(*this);
    RETURN_IF_ERROR(nest.Check());
    if ((Is(TokenType::kUnaryOperator) ||
         Is(TokenType::kAdditiveBinaryOperator)) &&
        (tokens_[current_].value == "-" || tokens_[current_].value == "+")) {
      auto node = std::make_unique<Unary>(Line(), tokens_[current_].value);
      ++current_;
      ASSIGN_OR_RETURN(node->argument, ParseUnarySign());
      return NodePtr(std::move(node));
    }
    ASSIGN_OR_RETURN(NodePtr primary, ParsePrimary());
    ASSIGN_OR_RETURN(NodePtr member, ParseMember(std::move(primary)));
    if (Is(TokenType::kOpenParen))
      return ParseCallExpression(std::move(member));
    return member;
  }

  absl::StatusOr<NodePtr> ParseCallExpression(NodePtr callee) {
    auto call = std::make_unique<Call>(Line());
    call->callee = std::move(callee);
    ASSIGN_OR_RETURN(call->args, ParseArgs(ArgsMode::kCall));
    ASSIGN_OR_RETURN(NodePtr expression, ParseMember(std::move(call)));
    if (Is(TokenType::kOpenParen))
      return ParseCallExpression(std::move(expression));
    return expression;
  }

  absl::StatusOr<std::vector<NodePtr>> ParseArgs(ArgsMode mode) {
    RETURN_IF_ERROR(Expect(TokenType::kOpenParen, "'('").status());
    std::vector<NodePtr> args;
    std::vector<std::string> names;
    bool saw_keyword = false;
    bool saw_spread = false;
    while (!Is(TokenType::kCloseParen)) {
      if (AtEnd()) return Error("expected ')', got the end of the template");
      const int line = Line();
      const bool keyword_spread = Is(TokenType::kExponentiationBinaryOperator);
      const bool spread = Is(TokenType::kMultiplicativeBinaryOperator) &&
                          tokens_[current_].value == "*";
      if (mode == ArgsMode::kParameters && (keyword_spread || spread)) {
        return Error(
            "argument unpacking is not allowed in parameter declarations");
      }
      if (keyword_spread) {
        ++current_;
        auto node = std::make_unique<Spread>(Node::Kind::kKeywordSpread, line);
        ASSIGN_OR_RETURN(node->argument, ParseExpression());
        args.push_back(std::move(node));
        if (Is(TokenType::kComma)) ++current_;
        if (!Is(TokenType::kCloseParen)) {
          return Error("'**' must be applied to the final argument");
        }
        break;
      }
      NodePtr argument;
      if (spread) {
        if (saw_spread)
          return Error("only one '*' argument unpacking is allowed");
        saw_spread = true;
        ++current_;
        auto node = std::make_unique<Spread>(Node::Kind::kSpread, line);
        ASSIGN_OR_RETURN(node->argument, ParseExpression());
        argument = std::move(node);
      } else {
        ASSIGN_OR_RETURN(argument, ParseExpression());
        if (Is(TokenType::kEquals)) {
          ++current_;
          if (argument->kind != Node::Kind::kIdentifier) {
            return Error(mode == ArgsMode::kParameters
                             ? "expected a name for a parameter"
                             : "expected a name for a keyword argument");
          }
          auto kw = std::make_unique<KeywordArgument>(
              line, As<Identifier>(*argument).name);
          ASSIGN_OR_RETURN(kw->value, ParseExpression());
          argument = std::move(kw);
        }
        if (mode == ArgsMode::kParameters) {
          std::string name;
          if (argument->kind == Node::Kind::kIdentifier) {
            name = As<Identifier>(*argument).name;
          } else if (argument->kind == Node::Kind::kKeywordArgument) {
            name = As<KeywordArgument>(*argument).key;
          } else {
            return Error("expected a name for a parameter");
          }
          for (const std::string& n : names) {
            if (n == name)
              return Error(Cat("duplicate parameter '", name, "'"));
          }
          names.push_back(name);
        }
        if (argument->kind == Node::Kind::kKeywordArgument) {
          saw_keyword = true;
        } else if (saw_keyword) {
          return Error(
              mode == ArgsMode::kCall
                  ? "positional arguments must come before keyword arguments"
                  : "non-default argument follows default argument");
        } else if (saw_spread) {
          return Error("positional arguments must not follow '*' unpacking");
        }
      }
      args.push_back(std::move(argument));
      if (Is(TokenType::kComma)) ++current_;
    }
    ++current_;  // )
    return args;
  }

  // What [...] holds: an index or key, or a slice a:b:c.
  absl::StatusOr<NodePtr> ParseSubscript() {
    const int line = Line();
    std::vector<NodePtr> parts;
    bool is_slice = false;
    while (!Is(TokenType::kCloseSquareBracket)) {
      if (AtEnd()) return Error("expected ']', got the end of the template");
      if (Is(TokenType::kColon)) {
        parts.push_back(nullptr);
        ++current_;
        is_slice = true;
      } else {
        ASSIGN_OR_RETURN(NodePtr part, ParseExpression());
        parts.push_back(std::move(part));
        if (Is(TokenType::kColon)) {
          ++current_;
          is_slice = true;
        }
      }
    }
    if (parts.empty()) return Error("expected an index, key or slice in []");
    if (!is_slice) return std::move(parts[0]);
    if (parts.size() > 3) return Error("a slice takes at most 3 parts");
    auto slice = std::make_unique<Slice>(line);
    parts.resize(3);
    slice->start = std::move(parts[0]);
    slice->stop = std::move(parts[1]);
    slice->step = std::move(parts[2]);
    return NodePtr(std::move(slice));
  }

  absl::StatusOr<NodePtr> ParseMember(NodePtr object) {
    while (Is(TokenType::kDot) || Is(TokenType::kOpenSquareBracket)) {
      auto node = std::make_unique<Member>(Line());
      node->computed = Is(TokenType::kOpenSquareBracket);
      ++current_;
      if (node->computed) {
        ASSIGN_OR_RETURN(node->property, ParseSubscript());
        RETURN_IF_ERROR(Expect(TokenType::kCloseSquareBracket, "']'").status());
      } else {
        ASSIGN_OR_RETURN(node->property, ParsePrimary());
        if (node->property->kind != Node::Kind::kIdentifier &&
            node->property->kind != Node::Kind::kIntegerLiteral) {
          return ErrorAt(node->line, "expected a name or integer after '.'");
        }
      }
      node->object = std::move(object);
      object = std::move(node);
    }
    return object;
  }

  absl::StatusOr<NodePtr> ParsePrimary() {
    if (AtEnd())
      return Error("expected an expression, got the end of the template");
    const Token& t = tokens_[current_++];
    switch (t.type) {
      case TokenType::kNumericLiteral: {
        const bool is_float = t.value.find('.') != std::string::npos;
        return NodePtr(std::make_unique<NumberLiteral>(
            is_float ? Node::Kind::kFloatLiteral : Node::Kind::kIntegerLiteral,
            t.line, JsStringToNumber(t.value)));
      }
      case TokenType::kStringLiteral: {
        std::string value = t.value;
        while (Is(TokenType::kStringLiteral))
          AppendJs(value, tokens_[current_++].value);
        return NodePtr(
            std::make_unique<StringLiteral>(t.line, std::move(value)));
      }
      case TokenType::kIdentifier:
        return NodePtr(std::make_unique<Identifier>(t.line, t.value));
      case TokenType::kOpenParen: {
        ASSIGN_OR_RETURN(NodePtr e, ParseExpressionSequence(false));
        RETURN_IF_ERROR(Expect(TokenType::kCloseParen, "')'").status());
        return e;
      }
      case TokenType::kOpenSquareBracket: {
        auto node =
            std::make_unique<Sequence>(Node::Kind::kArrayLiteral, t.line);
        while (!Is(TokenType::kCloseSquareBracket)) {
          ASSIGN_OR_RETURN(NodePtr item, ParseExpression());
          node->items.push_back(std::move(item));
          if (Is(TokenType::kComma)) ++current_;
        }
        ++current_;  // ]
        return NodePtr(std::move(node));
      }
      case TokenType::kOpenCurlyBracket: {
        auto node = std::make_unique<ObjectLiteral>(t.line);
        while (!Is(TokenType::kCloseCurlyBracket)) {
          ASSIGN_OR_RETURN(NodePtr key, ParseExpression());
          RETURN_IF_ERROR(Expect(TokenType::kColon, "':'").status());
          ASSIGN_OR_RETURN(NodePtr value, ParseExpression());
          node->entries.emplace_back(std::move(key), std::move(value));
          if (Is(TokenType::kComma)) ++current_;
        }
        ++current_;  // }
        return NodePtr(std::move(node));
      }
      default:
        --current_;
        return Error(Cat("unexpected '", t.value, "'"));
    }
  }

  const std::vector<Token>& tokens_;
  size_t current_ = 0;
  int nesting_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Program>> Parse(
    const std::vector<Token>& tokens) {
  return Parser(tokens).Run();
}

}  // namespace hydra::model::chat_template::jinja
