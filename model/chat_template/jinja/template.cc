#include "model/chat_template/jinja/template.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/chat_template/jinja/absl_compat.h"
#include "model/chat_template/jinja/builtins.h"
#include "model/chat_template/jinja/interpreter.h"
#include "model/chat_template/jinja/js_text.h"
#include "model/chat_template/jinja/lexer.h"
#include "model/chat_template/jinja/parser.h"

namespace hydra::model::chat_template::jinja {

absl::StatusOr<Template> Template::Parse(std::string_view source) {
  // The reference reads text as UTF-16; bytes that are not UTF-8 have no
  // faithful rendering, so they are refused here.
  for (size_t i = 0; i < source.size();) {
    const DecodedChar d = DecodeUtf8(source, i);
    if (d.code_point == 0xFFFD && d.size == 1) {
      return absl::InvalidArgumentError(
          Cat("chat template: invalid UTF-8 at byte ", i));
    }
    i += d.size;
  }
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source));
  ASSIGN_OR_RETURN(std::unique_ptr<Program> program, jinja::Parse(tokens));
  return Template(std::shared_ptr<const Program>(std::move(program)));
}

absl::StatusOr<std::string> Template::Render(
    const std::vector<std::pair<std::string, Value>>& variables) const {
  Environment globals;
  InstallGlobals(globals);
  for (const auto& [name, value] : variables) {
    if (globals.HasOwn(name)) {
      return absl::InvalidArgumentError(
          Cat("chat template: variable already declared: ", name));
    }
    globals.Set(name, value);
  }
  Interpreter interpreter;
  return interpreter.Run(*program_, globals);
}

}  // namespace hydra::model::chat_template::jinja
