#include "model/chat_template/jinja/lexer.h"

#include <algorithm>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/chat_template/jinja/absl_compat.h"
#include "model/chat_template/jinja/js_text.h"

namespace hydra::model::chat_template::jinja {
namespace {

// Text plus, for each byte, its offset in the original template, so that
// errors name lines of the template as written even after trim_blocks has
// removed newlines.
struct Mapped {
  std::string text;
  std::vector<uint32_t> origin;

  void Append(const Mapped& from, size_t begin, size_t end) {
    text.append(from.text, begin, end - begin);
    origin.insert(origin.end(), from.origin.begin() + begin,
                  from.origin.begin() + end);
  }
};

// True where a JavaScript /^/m matches: after \n, \r, U+2028 or U+2029.
bool IsLineStart(const std::string& s, size_t i) {
  if (i == 0) return true;
  if (s[i - 1] == '\n' || s[i - 1] == '\r') return true;
  return i >= 3 && static_cast<unsigned char>(s[i - 3]) == 0xE2 &&
         static_cast<unsigned char>(s[i - 2]) == 0x80 &&
         (static_cast<unsigned char>(s[i - 1]) == 0xA8 ||
          static_cast<unsigned char>(s[i - 1]) == 0xA9);
}

// lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1".
Mapped LstripBlocks(const Mapped& in) {
  Mapped out;
  const std::string& s = in.text;
  size_t i = 0;
  while (i < s.size()) {
    if (IsLineStart(s, i)) {
      size_t j = i;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j + 1 < s.size() && s[j] == '{' &&
          (s[j + 1] == '#' || s[j + 1] == '%' || s[j + 1] == '-')) {
        out.Append(in, j, j + 2);
        i = j + 2;
        continue;
      }
    }
    out.Append(in, i, i + 1);
    ++i;
  }
  return out;
}

// trim_blocks: /([#%-]})\n/g -> "$1".
Mapped TrimBlocks(const Mapped& in) {
  Mapped out;
  const std::string& s = in.text;
  size_t i = 0;
  while (i < s.size()) {
    if (i + 2 < s.size() && (s[i] == '#' || s[i] == '%' || s[i] == '-') &&
        s[i + 1] == '}' && s[i + 2] == '\n') {
      out.Append(in, i, i + 2);
      i += 3;
      continue;
    }
    out.Append(in, i, i + 1);
    ++i;
  }
  return out;
}

size_t SkipWhitespace(const std::string& s, size_t i) {
  while (size_t n = JsWhitespaceAt(s, i)) i += n;
  return i;
}

// transformers' {% generation %} / {% endgeneration %}: the regex
// /(\s*){%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)/gs ->
// (lstrip ? "" : $1) + (rstrip ? "" : $4).
Mapped RemoveGenerationTags(const Mapped& in) {
  Mapped out;
  const std::string& s = in.text;
  size_t last = 0;  // where the text not yet copied begins
  for (size_t q = s.find("{%"); q != std::string::npos; q = s.find("{%", q)) {
    size_t k = q + 2;
    const bool lstrip = k < s.size() && s[k] == '-';
    if (lstrip) ++k;
    k = SkipWhitespace(s, k);
    if (s.compare(k, 3, "end") == 0 &&
        s.compare(k + 3, 10, "generation") == 0) {
      k += 3;
    }
    if (s.compare(k, 10, "generation") != 0) {
      q += 2;
      continue;
    }
    k = SkipWhitespace(s, k + 10);
    const bool rstrip = k < s.size() && s[k] == '-';
    if (rstrip) ++k;
    if (s.compare(k, 2, "%}") != 0) {
      q += 2;
      continue;
    }
    const size_t tag_end = k + 2;
    size_t before = q;
    while (before > last) {
      const size_t n = JsWhitespaceBefore(s, before);
      if (n == 0 || before - n < last) break;
      before -= n;
    }
    const size_t after = SkipWhitespace(s, tag_end);
    out.Append(in, last, before);
    if (!lstrip) out.Append(in, before, q);
    if (!rstrip) out.Append(in, tag_end, after);
    last = after;
    q = after;
  }
  out.Append(in, last, s.size());
  return out;
}

Mapped PreprocessMapped(std::string_view source) {
  Mapped m;
  m.text = std::string(source);
  m.origin.resize(source.size());
  for (size_t i = 0; i < source.size(); ++i)
    m.origin[i] = static_cast<uint32_t>(i);
  if (!m.text.empty() && m.text.back() == '\n') {
    m.text.pop_back();
    m.origin.pop_back();
  }
  return RemoveGenerationTags(TrimBlocks(LstripBlocks(m)));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsWord(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         c == '_';
}
int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The operator table, longest-first where prefixes collide, as the
// reference orders it.
struct Symbol {
  std::string_view text;
  TokenType type;
};
constexpr Symbol kSymbols[] = {
    {"{%", TokenType::kOpenStatement},
    {"%}", TokenType::kCloseStatement},
    {"{{", TokenType::kOpenExpression},
    {"}}", TokenType::kCloseExpression},
    {"(", TokenType::kOpenParen},
    {")", TokenType::kCloseParen},
    {"{", TokenType::kOpenCurlyBracket},
    {"}", TokenType::kCloseCurlyBracket},
    {"[", TokenType::kOpenSquareBracket},
    {"]", TokenType::kCloseSquareBracket},
    {",", TokenType::kComma},
    {".", TokenType::kDot},
    {":", TokenType::kColon},
    {"|", TokenType::kPipe},
    {"<=", TokenType::kComparisonBinaryOperator},
    {">=", TokenType::kComparisonBinaryOperator},
    {"==", TokenType::kComparisonBinaryOperator},
    {"!=", TokenType::kComparisonBinaryOperator},
    {"<", TokenType::kComparisonBinaryOperator},
    {">", TokenType::kComparisonBinaryOperator},
    {"+", TokenType::kAdditiveBinaryOperator},
    {"-", TokenType::kAdditiveBinaryOperator},
    {"~", TokenType::kAdditiveBinaryOperator},
    {"**", TokenType::kExponentiationBinaryOperator},
    {"*", TokenType::kMultiplicativeBinaryOperator},
    {"//", TokenType::kMultiplicativeBinaryOperator},
    {"/", TokenType::kMultiplicativeBinaryOperator},
    {"%", TokenType::kMultiplicativeBinaryOperator},
    {"=", TokenType::kEquals},
};

class Lexer {
 public:
  Lexer(std::string_view source, Mapped src) : src_(std::move(src)) {
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\n') newlines_.push_back(i);
    }
  }

  absl::StatusOr<std::vector<Token>> Run() {
    const std::string& s = src_.text;
    while (pos_ < s.size()) {
      if (tokens_.empty() ||
          tokens_.back().type == TokenType::kCloseStatement ||
          tokens_.back().type == TokenType::kCloseExpression ||
          tokens_.back().type == TokenType::kComment) {
        const size_t start = pos_;
        while (pos_ < s.size() && !(s[pos_] == '{' && pos_ + 1 < s.size() &&
                                    (s[pos_ + 1] == '%' || s[pos_ + 1] == '{' ||
                                     s[pos_ + 1] == '#'))) {
          ++pos_;
        }
        if (pos_ > start) {
          Push(TokenType::kText, s.substr(start, pos_ - start), start);
          continue;
        }
      }
      if (Looking("{#")) {
        if (absl::Status st = Comment(); !st.ok()) return st;
        continue;
      }
      if (Looking("{%-") || Looking("{{-")) {
        StripTrailingWhitespace();
        const bool statement = s[pos_ + 1] == '%';
        Push(statement ? TokenType::kOpenStatement : TokenType::kOpenExpression,
             statement ? "{%" : "{{", pos_);
        if (!statement) curly_depth_ = 0;
        pos_ += 3;
        continue;
      }
      // Whitespace inside a tag is skipped (reaching the end is an error).
      while (size_t n = JsWhitespaceAt(s, pos_)) {
        pos_ += n;
        if (pos_ >= s.size()) return Error(pos_ - 1, "Unexpected end of input");
      }
      if (Looking("-%}") || Looking("-}}")) {
        const bool statement = s[pos_ + 1] == '%';
        Push(statement ? TokenType::kCloseStatement
                       : TokenType::kCloseExpression,
             statement ? "%}" : "}}", pos_);
        pos_ += 3;
        while (size_t n = JsWhitespaceAt(s, pos_)) pos_ += n;
        continue;
      }
      absl::StatusOr<bool> done = Operand();
      if (!done.ok()) return done.status();
      if (!*done) {
        return Error(pos_,
                     Cat("Unexpected character: ", std::string(1, s[pos_])));
      }
    }
    return std::move(tokens_);
  }

 private:
  bool Looking(std::string_view what) const {
    return src_.text.compare(pos_, what.size(), what) == 0;
  }

  int LineAt(size_t offset) const {
    const uint32_t origin =
        offset < src_.origin.size()
            ? src_.origin[offset]
            : (src_.origin.empty() ? 0 : src_.origin.back() + 1);
    return 1 + static_cast<int>(std::lower_bound(newlines_.begin(),
                                                 newlines_.end(), origin) -
                                newlines_.begin());
  }

  absl::Status Error(size_t offset, std::string_view message) const {
    return absl::InvalidArgumentError(AtLine(LineAt(offset), message));
  }

  void Push(TokenType type, std::string value, size_t offset) {
    tokens_.push_back(Token{type, std::move(value), LineAt(offset)});
  }

  void StripTrailingWhitespace() {
    if (!tokens_.empty() && tokens_.back().type == TokenType::kText) {
      std::string& text = tokens_.back().value;
      text.resize(TrimEndJs(text).size());
      if (text.empty()) tokens_.pop_back();
    }
  }

  absl::Status Comment() {
    const std::string& s = src_.text;
    const size_t start = pos_;
    pos_ += 2;
    const bool strip_before = pos_ < s.size() && s[pos_] == '-';
    if (strip_before) ++pos_;
    std::string comment;
    while (!(pos_ + 1 < s.size() && s[pos_] == '#' && s[pos_ + 1] == '}')) {
      if (pos_ + 2 >= s.size())
        return Error(start, "Missing end of comment tag");
      comment += s[pos_++];
    }
    const bool strip_after = !comment.empty() && comment.back() == '-';
    if (strip_after) comment.pop_back();
    if (strip_before) StripTrailingWhitespace();
    Push(TokenType::kComment, std::move(comment), start);
    pos_ += 2;
    if (strip_after) {
      while (size_t n = JsWhitespaceAt(s, pos_)) pos_ += n;
    }
    return absl::OkStatus();
  }

  // Consumes digits; the reference's consumeWhile fails when they run to
  // the end of the input.
  absl::StatusOr<std::string> Digits() {
    const std::string& s = src_.text;
    const size_t start = pos_;
    while (pos_ < s.size() && IsDigit(s[pos_])) {
      if (++pos_ >= s.size()) return Error(start, "Unexpected end of input");
    }
    return s.substr(start, pos_ - start);
  }

  // A number's digits and, where one follows, its fraction.
  absl::StatusOr<std::string> Number(bool allow_fraction) {
    const std::string& s = src_.text;
    absl::StatusOr<std::string> num = Digits();
    if (!num.ok()) return num;
    if (allow_fraction && !num->empty() && pos_ + 1 < s.size() &&
        s[pos_] == '.' && IsDigit(s[pos_ + 1])) {
      ++pos_;
      absl::StatusOr<std::string> frac = Digits();
      if (!frac.ok()) return frac;
      *num += "." + *frac;
    }
    return num;
  }

  absl::StatusOr<std::string> StringLiteral(char quote) {
    const std::string& s = src_.text;
    const size_t start = pos_;
    std::string out;
    while (pos_ >= s.size() || s[pos_] != quote) {
      if (pos_ >= s.size()) return Error(start, "Unexpected end of input");
      if (s[pos_] != '\\') {
        out += s[pos_++];
        if (pos_ >= s.size()) return Error(start, "Unexpected end of input");
        continue;
      }
      if (++pos_ >= s.size()) return Error(start, "Unexpected end of input");
      const char escaped = s[pos_++];
      if (escaped == 'x' || escaped == 'u') {
        const size_t length = escaped == 'x' ? 2 : 4;
        char32_t unit = 0;
        bool valid = pos_ + length <= s.size();
        for (size_t k = 0; valid && k < length; ++k) {
          const int h = HexValue(s[pos_ + k]);
          valid = h >= 0;
          unit = unit * 16 + static_cast<char32_t>(h);
        }
        if (!valid) {
          return Error(start,
                       Cat("Invalid hexadecimal escape sequence: \\",
                           std::string(1, escaped), s.substr(pos_, length)));
        }
        std::string encoded;
        AppendUtf8(unit, encoded);
        AppendJs(out, encoded);
        pos_ += length;
        continue;
      }
      switch (escaped) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case '\'':
        case '"':
        case '\\':
          out += escaped;
          break;
        default:
          return Error(start, Cat("Unexpected escaped character: ",
                                  std::string(1, escaped)));
      }
    }
    return out;
  }

  // One token inside a tag; false if nothing matches here.
  absl::StatusOr<bool> Operand() {
    const std::string& s = src_.text;
    const size_t start = pos_;
    const char c = s[pos_];
    if (c == '-' || c == '+') {
      if (tokens_.empty() || tokens_.back().type == TokenType::kText) {
        return Error(start, Cat("Unexpected character: ", std::string(1, c)));
      }
      switch (tokens_.back().type) {
        case TokenType::kIdentifier:
        case TokenType::kNumericLiteral:
        case TokenType::kStringLiteral:
        case TokenType::kCloseParen:
        case TokenType::kCloseSquareBracket:
          break;  // a binary operator: the table below
        default: {
          ++pos_;
          absl::StatusOr<std::string> num = Number(/*allow_fraction=*/true);
          if (!num.ok()) return num.status();
          if (num->empty()) {
            Push(TokenType::kUnaryOperator, std::string(1, c), start);
          } else {
            Push(TokenType::kNumericLiteral, std::string(1, c) + *num, start);
          }
          return true;
        }
      }
    }
    for (const Symbol& symbol : kSymbols) {
      if (symbol.text == "}}" && curly_depth_ > 0) continue;
      if (!Looking(symbol.text)) continue;
      Push(symbol.type, std::string(symbol.text), start);
      if (symbol.type == TokenType::kOpenExpression) {
        curly_depth_ = 0;
      } else if (symbol.type == TokenType::kOpenCurlyBracket) {
        ++curly_depth_;
      } else if (symbol.type == TokenType::kCloseCurlyBracket) {
        --curly_depth_;
      }
      pos_ += symbol.text.size();
      return true;
    }
    if (c == '\'' || c == '"') {
      ++pos_;
      absl::StatusOr<std::string> str = StringLiteral(c);
      if (!str.ok()) return str.status();
      Push(TokenType::kStringLiteral, *std::move(str), start);
      ++pos_;
      return true;
    }
    if (IsDigit(c)) {
      const bool after_dot =
          !tokens_.empty() && tokens_.back().type == TokenType::kDot;
      absl::StatusOr<std::string> num = Number(!after_dot);
      if (!num.ok()) return num.status();
      Push(TokenType::kNumericLiteral, *std::move(num), start);
      return true;
    }
    if (IsWord(c)) {
      while (pos_ < s.size() && IsWord(s[pos_])) {
        if (++pos_ >= s.size()) return Error(start, "Unexpected end of input");
      }
      Push(TokenType::kIdentifier, s.substr(start, pos_ - start), start);
      return true;
    }
    return false;
  }

  Mapped src_;
  std::vector<size_t> newlines_;  // offsets of '\n' in the original text
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int curly_depth_ = 0;
};

}  // namespace

std::string AtLine(int line, std::string_view message) {
  return Cat("chat template line ", line, ": ", message);
}

std::string Preprocess(std::string_view source) {
  return PreprocessMapped(source).text;
}

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source) {
  return Lexer(source, PreprocessMapped(source)).Run();
}

}  // namespace hydra::model::chat_template::jinja
