// Template text -> tokens, as @huggingface/jinja's lexer.ts does it,
// including its preprocessing: the last trailing newline is dropped,
// lstrip_blocks and trim_blocks are applied to the text (as Hugging Face's
// Python side configures Jinja), and transformers' {% generation %} tags
// are removed.
#ifndef HYDRA_MODEL_CHAT_TEMPLATE_JINJA_LEXER_H_
#define HYDRA_MODEL_CHAT_TEMPLATE_JINJA_LEXER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace hydra::model::chat_template::jinja {

enum class TokenType {
  kText,
  kNumericLiteral,
  kStringLiteral,
  kIdentifier,
  kEquals,
  kOpenParen,
  kCloseParen,
  kOpenStatement,
  kCloseStatement,
  kOpenExpression,
  kCloseExpression,
  kOpenSquareBracket,
  kCloseSquareBracket,
  kOpenCurlyBracket,
  kCloseCurlyBracket,
  kComma,
  kDot,
  kColon,
  kPipe,
  kAdditiveBinaryOperator,        // + - ~
  kMultiplicativeBinaryOperator,  // * / // %
  kExponentiationBinaryOperator,  // **
  kComparisonBinaryOperator,      // < > <= >= == !=
  kUnaryOperator,                 // a lone + or - before an operand
  kComment,
};

struct Token {
  TokenType type;
  std::string value;
  int line;  // 1-based, in the template as given
};

// The text the lexer actually scans: `source` after the preprocessing
// above. Exposed for tests.
std::string Preprocess(std::string_view source);

// Fails with "chat template line N: ..." on text the reference's lexer
// refuses (an unknown character in a tag, a bad escape, an unterminated
// string or comment, input ending inside a tag).
absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source);

// "chat template line N: message": how every error names its place.
std::string AtLine(int line, std::string_view message);

}  // namespace hydra::model::chat_template::jinja

#endif  // HYDRA_MODEL_CHAT_TEMPLATE_JINJA_LEXER_H_
