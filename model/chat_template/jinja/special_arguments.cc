#include "model/chat_template/jinja/special_arguments.h"

#include <string_view>

namespace hydra::model::chat_template::jinja {
namespace {

// Follows the reference's visit of the tree (findAccessedSpecialMacroArguments
// in runtime.ts): names bound by parameters, loop targets and set targets
// before a use are declarations, not reads.
struct Finder {
  SpecialArguments declared;
  SpecialArguments found;

  void Declare(std::string_view name) {
    if (name == "kwargs") declared.kwargs = true;
    if (name == "varargs") declared.varargs = true;
  }
  void DeclareTarget(const Node& target) {
    if (target.kind == Node::Kind::kIdentifier) {
      Declare(As<Identifier>(target).name);
    } else if (target.kind == Node::Kind::kTupleLiteral) {
      for (const NodePtr& item : As<Sequence>(target).items)
        DeclareTarget(*item);
    }
  }
  void DeclareParameter(const Node& p) {
    if (p.kind == Node::Kind::kIdentifier) Declare(As<Identifier>(p).name);
    if (p.kind == Node::Kind::kKeywordArgument)
      Declare(As<KeywordArgument>(p).key);
  }
  void VisitDefaults(const std::vector<NodePtr>& params) {
    for (const NodePtr& p : params) {
      if (p->kind == Node::Kind::kKeywordArgument) {
        Visit(As<KeywordArgument>(*p).value.get());
      }
    }
  }
  void VisitAll(const std::vector<NodePtr>& nodes) {
    for (const NodePtr& n : nodes) Visit(n.get());
  }
  void VisitFilter(const Node& filter) {
    if (filter.kind == Node::Kind::kCall) VisitAll(As<Call>(filter).args);
  }

  void Visit(const Node* node) {
    if (node == nullptr) return;
    switch (node->kind) {
      case Node::Kind::kFor: {
        const auto& n = As<For>(*node);
        DeclareTarget(*n.loopvar);
        if (n.iterable->kind == Node::Kind::kSelect) {
          const auto& s = As<Select>(*n.iterable);
          Visit(s.lhs.get());
          VisitAll(n.body);
          VisitAll(n.default_block);
          Visit(s.test.get());
          return;
        }
        Visit(n.iterable.get());
        VisitAll(n.body);
        VisitAll(n.default_block);
        return;
      }
      case Node::Kind::kSet: {
        const auto& n = As<Set>(*node);
        DeclareTarget(*n.assignee);
        Visit(n.value.get());
        VisitAll(n.body);
        return;
      }
      case Node::Kind::kMacro: {
        const auto& n = As<Macro>(*node);
        for (const NodePtr& p : n.params) DeclareParameter(*p);
        VisitDefaults(n.params);
        VisitAll(n.body);
        return;
      }
      case Node::Kind::kCallBlock: {
        const auto& n = As<CallBlock>(*node);
        Visit(n.call.get());
        for (const NodePtr& p : n.caller_params) DeclareParameter(*p);
        VisitDefaults(n.caller_params);
        VisitAll(n.body);
        return;
      }
      case Node::Kind::kFilterBlock: {
        const auto& n = As<FilterBlock>(*node);
        VisitAll(n.body);
        VisitFilter(*n.filter);
        return;
      }
      case Node::Kind::kIdentifier: {
        const std::string& name = As<Identifier>(*node).name;
        if (name == "kwargs" && !declared.kwargs) found.kwargs = true;
        if (name == "varargs" && !declared.varargs) found.varargs = true;
        return;
      }
      case Node::Kind::kMember: {
        const auto& n = As<Member>(*node);
        Visit(n.object.get());
        if (n.computed) Visit(n.property.get());
        return;
      }
      case Node::Kind::kFilter: {
        const auto& n = As<Filter>(*node);
        Visit(n.operand.get());
        VisitFilter(*n.filter);
        return;
      }
      case Node::Kind::kTest:
        Visit(As<Test>(*node).operand.get());
        return;
      case Node::Kind::kSelect: {
        const auto& n = As<Select>(*node);
        Visit(n.test.get());
        Visit(n.lhs.get());
        return;
      }
      case Node::Kind::kKeywordArgument:
        Visit(As<KeywordArgument>(*node).value.get());
        return;
      case Node::Kind::kIf: {
        const auto& n = As<If>(*node);
        Visit(n.test.get());
        VisitAll(n.body);
        VisitAll(n.alternate);
        return;
      }
      case Node::Kind::kArrayLiteral:
      case Node::Kind::kTupleLiteral:
        VisitAll(As<Sequence>(*node).items);
        return;
      case Node::Kind::kObjectLiteral:
        for (const auto& [k, v] : As<ObjectLiteral>(*node).entries) {
          Visit(k.get());
          Visit(v.get());
        }
        return;
      case Node::Kind::kCall: {
        const auto& n = As<Call>(*node);
        Visit(n.callee.get());
        VisitAll(n.args);
        return;
      }
      case Node::Kind::kBinary: {
        const auto& n = As<Binary>(*node);
        Visit(n.left.get());
        Visit(n.right.get());
        return;
      }
      case Node::Kind::kUnary:
        Visit(As<Unary>(*node).argument.get());
        return;
      case Node::Kind::kSlice: {
        const auto& n = As<Slice>(*node);
        Visit(n.start.get());
        Visit(n.stop.get());
        Visit(n.step.get());
        return;
      }
      case Node::Kind::kSpread:
      case Node::Kind::kKeywordSpread:
        Visit(As<Spread>(*node).argument.get());
        return;
      case Node::Kind::kTernary: {
        const auto& n = As<Ternary>(*node);
        Visit(n.condition.get());
        Visit(n.true_expr.get());
        Visit(n.false_expr.get());
        return;
      }
      default:
        return;
    }
  }
};

}  // namespace

SpecialArguments FindSpecialArguments(const std::vector<NodePtr>& params,
                                      const Body& body) {
  Finder finder;
  for (const NodePtr& p : params) finder.DeclareParameter(*p);
  for (const NodePtr& n : body) finder.Visit(n.get());
  return finder.found;
}

}  // namespace hydra::model::chat_template::jinja
