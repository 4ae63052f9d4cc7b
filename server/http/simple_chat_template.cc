#include "server/http/simple_chat_template.h"

#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hydra::server::http {

struct SimpleChatTemplate::Node {
  enum Kind { kText, kVar, kFor, kIf } kind = kText;
  std::string text;  // kText: the text; kVar: the variable
  std::vector<Node> body;
  std::vector<Node> otherwise;  // kIf: the else branch
};

namespace {

using Node = SimpleChatTemplate::Node;

struct Token {
  enum Kind { kText, kExpr, kStmt } kind;
  std::string text;  // trimmed inside the delimiters
};

std::string Trim(std::string_view s) {
  return std::string(absl::StripAsciiWhitespace(std::string(s)));
}

absl::StatusOr<std::vector<Token>> Lex(const std::string& src) {
  std::vector<Token> tokens;
  size_t i = 0;
  bool trim_next = false;
  while (i < src.size()) {
    const size_t open = src.find('{', i);
    size_t start = open;
    while (start != std::string::npos && start + 1 < src.size() &&
           src[start + 1] != '{' && src[start + 1] != '%' &&
           src[start + 1] != '#') {
      start = src.find('{', start + 1);
    }
    if (start == std::string::npos || start + 1 >= src.size())
      start = src.size();
    std::string text = src.substr(i, start - i);
    if (trim_next) {
      text = std::string(absl::StripLeadingAsciiWhitespace(text));
    }
    trim_next = false;
    if (start == src.size()) {
      if (!text.empty()) tokens.push_back({Token::kText, text});
      break;
    }
    const char kind = src[start + 1];
    const std::string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    const size_t end = src.find(close, start + 2);
    if (end == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unclosed '", src.substr(start, 2), "' at byte ", start));
    }
    std::string inner = src.substr(start + 2, end - start - 2);
    if (!inner.empty() && inner.front() == '-') {
      text = std::string(absl::StripTrailingAsciiWhitespace(text));
      inner.erase(0, 1);
    }
    if (!inner.empty() && inner.back() == '-') {
      trim_next = true;
      inner.pop_back();
    }
    if (!text.empty()) tokens.push_back({Token::kText, text});
    if (kind == '{') tokens.push_back({Token::kExpr, Trim(inner)});
    if (kind == '%') tokens.push_back({Token::kStmt, Trim(inner)});
    i = end + 2;
  }
  return tokens;
}

absl::StatusOr<std::string> Variable(const std::string& expr) {
  static const std::pair<const char*, const char*> kNames[] = {
      {"bos_token", "bos_token"},
      {"eos_token", "eos_token"},
      {"message['role']", "role"},
      {"message[\"role\"]", "role"},
      {"message.role", "role"},
      {"message['content']", "content"},
      {"message[\"content\"]", "content"},
      {"message.content", "content"},
  };
  for (const auto& [spelling, name] : kNames) {
    if (expr == spelling) return std::string(name);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "'{{ ", expr, " }}' is not supported by the built-in template subset"));
}

// Parses tokens[pos...] until one of `ends` (a statement), which it
// returns in `end`.
absl::Status ParseBlock(const std::vector<Token>& tokens, size_t& pos,
                        std::vector<Node>& out,
                        const std::vector<std::string>& ends,
                        std::string& end) {
  while (pos < tokens.size()) {
    const Token& t = tokens[pos++];
    if (t.kind == Token::kText) {
      out.push_back({Node::kText, t.text, {}, {}});
    } else if (t.kind == Token::kExpr) {
      ASSIGN_OR_RETURN(std::string var, Variable(t.text));
      out.push_back({Node::kVar, var, {}, {}});
    } else {
      for (const std::string& e : ends) {
        if (t.text == e) {
          end = e;
          return absl::OkStatus();
        }
      }
      if (t.text == "for message in messages") {
        Node node{Node::kFor, "", {}, {}};
        std::string e;
        RETURN_IF_ERROR(ParseBlock(tokens, pos, node.body, {"endfor"}, e));
        out.push_back(std::move(node));
      } else if (t.text == "if add_generation_prompt") {
        Node node{Node::kIf, "", {}, {}};
        std::string e;
        RETURN_IF_ERROR(
            ParseBlock(tokens, pos, node.body, {"else", "endif"}, e));
        if (e == "else") {
          RETURN_IF_ERROR(
              ParseBlock(tokens, pos, node.otherwise, {"endif"}, e));
        }
        out.push_back(std::move(node));
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "'{% ", t.text,
            " %}' is not supported by the built-in template subset"));
      }
    }
  }
  if (!ends.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing '{% ", ends.back(), " %}'"));
  }
  return absl::OkStatus();
}

void RenderNodes(const std::vector<Node>& nodes,
                 const nlohmann::ordered_json* message,
                 const nlohmann::ordered_json& messages, bool add_generation,
                 const std::string& bos, const std::string& eos,
                 std::string& out) {
  for (const Node& n : nodes) {
    switch (n.kind) {
      case Node::kText:
        out += n.text;
        break;
      case Node::kVar:
        if (n.text == "bos_token") {
          out += bos;
        } else if (n.text == "eos_token") {
          out += eos;
        } else if (message != nullptr && message->contains(n.text)) {
          out += (*message)[n.text].get<std::string>();
        }
        break;
      case Node::kFor:
        for (const auto& m : messages) {
          RenderNodes(n.body, &m, messages, add_generation, bos, eos, out);
        }
        break;
      case Node::kIf:
        RenderNodes(add_generation ? n.body : n.otherwise, message, messages,
                    add_generation, bos, eos, out);
        break;
    }
  }
}

}  // namespace

absl::StatusOr<SimpleChatTemplate> SimpleChatTemplate::Parse(
    const std::string& source, std::string bos_token, std::string eos_token) {
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Lex(source));
  auto root = std::make_shared<Node>();
  size_t pos = 0;
  std::string end;
  RETURN_IF_ERROR(ParseBlock(tokens, pos, root->body, {}, end));
  SimpleChatTemplate t;
  t.root_ = std::move(root);
  t.bos_token_ = std::move(bos_token);
  t.eos_token_ = std::move(eos_token);
  return t;
}

absl::StatusOr<SimpleChatTemplate> SimpleChatTemplate::LoadFromFile(
    const std::string& path, std::string bos_token, std::string eos_token) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto t = Parse(ss.str(), std::move(bos_token), std::move(eos_token));
  if (!t.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", t.status().message()));
  }
  return t;
}

absl::StatusOr<std::string> SimpleChatTemplate::Render(
    const nlohmann::ordered_json& messages, bool add_generation_prompt) const {
  std::string out;
  RenderNodes(root_->body, nullptr, messages, add_generation_prompt, bos_token_,
              eos_token_, out);
  return out;
}

}  // namespace hydra::server::http
