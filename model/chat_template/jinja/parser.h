// Tokens -> syntax tree, a port of @huggingface/jinja's parser.ts (same
// precedence, same quirks), which also refuses at load what the renderer
// could not carry out: tags other than if/for/set/macro/call/filter/
// break/continue (include, extends, block, import, ...), unknown filters
// and tests, blocks left open.
#ifndef HYDRA_MODEL_CHAT_TEMPLATE_JINJA_PARSER_H_
#define HYDRA_MODEL_CHAT_TEMPLATE_JINJA_PARSER_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "model/chat_template/jinja/ast.h"
#include "model/chat_template/jinja/lexer.h"

namespace hydra::model::chat_template::jinja {

absl::StatusOr<std::unique_ptr<Program>> Parse(
    const std::vector<Token>& tokens);

}  // namespace hydra::model::chat_template::jinja

#endif  // HYDRA_MODEL_CHAT_TEMPLATE_JINJA_PARSER_H_
