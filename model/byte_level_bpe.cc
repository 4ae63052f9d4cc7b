#include "model/byte_level_bpe.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <limits>
#include <queue>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "re2/re2.h"
#include "unicode/normalizer2.h"
#include "unicode/unistr.h"

namespace hydra::model {
namespace {

using Json = nlohmann::json;

// Unicode White_Space, which \s means in the regex engine Hugging Face uses;
// RE2's \s is ASCII only.
constexpr char kSpaceClass[] =
    R"(\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029})"
    R"(\x{202F}\x{205F}\x{3000})";

bool IsSpace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// GPT-2's pre-tokenizer regex, what a ByteLevel pre-tokenizer with
// use_regex = true applies.
constexpr char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// The look-ahead every one of these patterns ends with. RE2 has none: the
// pair becomes one group, and a whitespace run it matches gives back its
// last character when a non-space follows, which is what `(?!\S)` did.
constexpr char kLookaheadPair[] = R"(\s+(?!\S)|\s+)";
constexpr char kWhitespaceGroup[] = "hydra_ws";

// Ids beyond this are refused: the id-to-token table is dense.
constexpr int64_t kMaxId = int64_t{1} << 24;

std::string Utf8(uint32_t c) {
  std::string s;
  if (c < 0x80) {
    s += static_cast<char>(c);
  } else if (c < 0x800) {
    s += static_cast<char>(0xC0 | (c >> 6));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    s += static_cast<char>(0xE0 | (c >> 12));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (c >> 18));
    s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (c & 0x3F));
  }
  return s;
}

// The length of the well-formed UTF-8 prefix of the character starting at
// s[i] (Unicode's "maximal subpart"), and whether it is a whole character.
std::pair<size_t, bool> Utf8Prefix(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = b(i);
  if (lead < 0x80) return {1, true};
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the first continuation
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    if (lead == 0xE0) lo = 0xA0;  // no overlong forms
    if (lead == 0xED) hi = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    return {1, false};
  }
  size_t got = 0;
  while (got < need && i + 1 + got < s.size()) {
    const unsigned char c = b(i + 1 + got);
    if (got == 0 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) break;
    ++got;
  }
  return {1 + got, got == need};
}

// Decodes the character at s[i] (valid UTF-8 assumed); advances i.
uint32_t NextChar(std::string_view s, size_t& i) {
  const auto [length, whole] = Utf8Prefix(s, i);
  uint32_t c = static_cast<unsigned char>(s[i]);
  if (length > 1) {
    c &= 0x3F >> (length - 1);
    for (size_t k = 1; k < length; ++k) {
      c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    }
  }
  i += length;
  return whole ? c : 0xFFFD;
}

bool AllSpace(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (!IsSpace(NextChar(s, i))) return false;
  }
  return true;
}

// Invalid UTF-8 becomes U+FFFD, one per maximal subpart (as Rust's
// String::from_utf8_lossy, which Hugging Face's decoder uses).
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto [length, whole] = Utf8Prefix(s, i);
    if (whole) {
      out.append(s.substr(i, length));
    } else {
      out += "\xEF\xBF\xBD";
    }
    i += length;
  }
  return out;
}

absl::StatusOr<std::string> Nfc(std::string_view text) {
  if (std::all_of(text.begin(), text.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return std::string(text);  // ASCII is always NFC
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  icu::UnicodeString normalized;
  if (U_SUCCESS(status)) normalized = nfc->normalize(u, status);
  if (U_FAILURE(status)) {
    return absl::InternalError(
        absl::StrCat("NFC normalization failed: ", u_errorName(status)));
  }
  std::string out;
  normalized.toUTF8String(out);
  return out;
}

// Rewrites a pre-tokenizer regex for RE2: the look-ahead pair becomes a
// named group, \s the Unicode whitespace class. Any other look-around, and
// \S, are refused.
absl::StatusOr<std::string> ToRe2(std::string pattern,
                                  const std::string& where) {
  const size_t pair = pattern.find(kLookaheadPair);
  if (pair != std::string::npos) {
    pattern.replace(pair, std::string_view(kLookaheadPair).size(),
                    absl::StrCat("(?P<", kWhitespaceGroup, ">\\s+)"));
  }
  for (const char* around : {"(?=", "(?!", "(?<=", "(?<!"}) {
    if (pattern.find(around) != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": the regex uses look-around (", around,
          "), which hydra's regex engine (RE2) lacks; only a final `",
          kLookaheadPair, "` is emulated"));
    }
  }
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[++i];
      if (next == 's') {
        absl::StrAppend(&out, in_class ? "" : "[", kSpaceClass,
                        in_class ? "" : "]");
      } else if (next == 'S') {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": \\S outside the final look-ahead is not supported"));
      } else {
        out += c;
        out += next;
      }
      continue;
    }
    if (c == '[') in_class = true;
    if (c == ']') in_class = false;
    out += c;
  }
  return out;
}

// A token named in a config: a string or {"content": string}.
std::string TokenName(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string())
    return j["content"].get<std::string>();
  return "";
}

std::string Type(const Json& j) {
  return j.is_object() && j.contains("type") && j["type"].is_string()
             ? j["type"].get<std::string>()
             : "";
}

// The steps of a pipeline stage: a "Sequence" lists them under `list`; any
// other stage is one step; null is none.
std::vector<Json> Steps(const Json& stage, const char* list) {
  if (stage.is_null()) return {};
  if (Type(stage) != "Sequence") return {stage};
  const Json steps = stage.value(list, Json::array());
  return std::vector<Json>(steps.begin(), steps.end());
}

absl::Status Refuse(const std::string& source, const std::string& field,
                    const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": ", field, ": ", why));
}

}  // namespace

ByteLevelBpe::ByteLevelBpe() = default;
ByteLevelBpe::~ByteLevelBpe() = default;

absl::StatusOr<std::unique_ptr<ByteLevelBpe>> ByteLevelBpe::Load(
    const std::filesystem::path& tokenizer_json) {
  ASSIGN_OR_RETURN(const std::string json, ReadFile(tokenizer_json));
  std::string config;
  const auto config_path =
      tokenizer_json.parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) {
    ASSIGN_OR_RETURN(config, ReadFile(config_path));
  }
  return Parse(json, config, tokenizer_json.string());
}

absl::StatusOr<std::unique_ptr<ByteLevelBpe>> ByteLevelBpe::Parse(
    std::string_view tokenizer_json, std::string_view config_json,
    const std::string& source) {
  // A field of the wrong JSON type throws from nlohmann's accessors.
  try {
    return ParseOrThrow(tokenizer_json, config_json, source);
  } catch (const Json::exception& e) {
    return Refuse(source, "(file)", e.what());
  }
}

absl::StatusOr<std::unique_ptr<ByteLevelBpe>> ByteLevelBpe::ParseOrThrow(
    std::string_view tokenizer_json, std::string_view config_json,
    const std::string& source) {
  const Json j =
      Json::parse(tokenizer_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Refuse(source, "(file)", "is not a JSON object");
  std::unique_ptr<ByteLevelBpe> t(new ByteLevelBpe());

  // The model: plain byte-level BPE.
  const Json& m = j.value("model", Json());
  if (Type(m) != "BPE") {
    return Refuse(
        source, "model.type",
        absl::StrCat("is \"", Type(m), "\"; only \"BPE\" is supported"));
  }
  if (m.value("byte_fallback", false)) {
    return Refuse(source, "model.byte_fallback",
                  "is true (a SentencePiece-style BPE); use the model's "
                  "tokenizer.model instead");
  }
  for (const char* affix :
       {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (m.contains(affix) && m[affix].is_string() &&
        !m[affix].get<std::string>().empty()) {
      return Refuse(source, absl::StrCat("model.", affix),
                    "is set; only byte-level BPE without affixes is supported");
    }
  }
  if (m.contains("dropout") && !m["dropout"].is_null()) {
    return Refuse(source, "model.dropout", "must be null");
  }
  t->ignore_merges_ = m.value("ignore_merges", false);
  if (!m.contains("vocab") || !m["vocab"].is_object()) {
    return Refuse(source, "model.vocab", "is missing or not an object");
  }
  int size = 0;
  for (const auto& [token, id] : m["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() >= kMaxId) {
      return Refuse(source, absl::StrCat("model.vocab[\"", token, "\"]"),
                    absl::StrCat("is not an id in [0, ", kMaxId, ")"));
    }
    size = std::max(size, id.get<int>() + 1);
  }
  const Json added = j.value("added_tokens", Json::array());
  for (size_t i = 0; i < added.size(); ++i) {
    const Json id = added[i].value("id", Json());
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() >= kMaxId) {
      return Refuse(source, absl::StrCat("added_tokens[", i, "].id"),
                    absl::StrCat("is not an id in [0, ", kMaxId, ")"));
    }
    size = std::max(size, id.get<int>() + 1);
  }
  t->id_to_token_.assign(size, "");
  for (const auto& [token, id] : m["vocab"].items()) {
    t->token_to_id_[token] = id.get<int>();
    t->id_to_token_[id.get<int>()] = token;
  }

  // Added tokens are matched on the raw text before anything else.
  std::vector<std::string> contents;
  for (size_t i = 0; i < added.size(); ++i) {
    const Json& a = added[i];
    const std::string field = absl::StrCat("added_tokens[", i, "]");
    if (!a.contains("id") || !a["id"].is_number_integer() ||
        !a.contains("content") || !a["content"].is_string() ||
        a["content"].get<std::string>().empty()) {
      return Refuse(source, field, "needs an integer id and a content string");
    }
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      if (a.value(flag, false)) {
        return Refuse(source, absl::StrCat(field, ".", flag),
                      "is true; not supported");
      }
    }
    const std::string content = a["content"].get<std::string>();
    t->token_to_id_[content] = a["id"].get<int>();
    t->id_to_token_[a["id"].get<int>()] = content;
    contents.push_back(content);
  }
  if (!contents.empty()) {
    // Longest first: RE2 takes the first alternative that matches.
    std::sort(contents.begin(), contents.end(),
              [](const std::string& a, const std::string& b) {
                return a.size() > b.size();
              });
    std::vector<std::string> quoted;
    for (const std::string& c : contents) quoted.push_back(RE2::QuoteMeta(c));
    t->added_pattern_ =
        std::make_unique<RE2>(absl::StrJoin(quoted, "|"), RE2::Quiet);
    if (!t->added_pattern_->ok()) {
      return Refuse(source, "added_tokens", t->added_pattern_->error());
    }
  }

  // Merges, as "left right" strings or [left, right] pairs.
  const Json merges = m.value("merges", Json::array());
  for (size_t i = 0; i < merges.size(); ++i) {
    std::string left, right;
    if (merges[i].is_string()) {
      const std::string s = merges[i].get<std::string>();
      const size_t space = s.find(' ');
      if (space != std::string::npos) {
        left = s.substr(0, space);
        right = s.substr(space + 1);
      }
    } else if (merges[i].is_array() && merges[i].size() == 2 &&
               merges[i][0].is_string() && merges[i][1].is_string()) {
      left = merges[i][0].get<std::string>();
      right = merges[i][1].get<std::string>();
    }
    const auto l = t->token_to_id_.find(left);
    const auto r = t->token_to_id_.find(right);
    const auto merged = t->token_to_id_.find(left + right);
    if (left.empty() || right.empty() || l == t->token_to_id_.end() ||
        r == t->token_to_id_.end() || merged == t->token_to_id_.end()) {
      return Refuse(source, absl::StrCat("model.merges[", i, "]"),
                    "is not a pair of tokens whose join is in the vocabulary");
    }
    const uint64_t key =
        (uint64_t(uint32_t(l->second)) << 32) | uint32_t(r->second);
    t->merges_.emplace(key, (uint64_t(i) << 32) | uint32_t(merged->second));
  }

  // The byte-to-character map of GPT-2: printable bytes stand for
  // themselves, the others for 256, 257, ...
  t->char_to_byte_.fill(-1);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                           (b >= 0xAE && b <= 0xFF);
    const int c = printable ? b : 256 + extra++;
    t->byte_to_char_[b] = Utf8(c);
    t->char_to_byte_[c] = static_cast<int16_t>(b);
    const auto it = t->token_to_id_.find(t->byte_to_char_[b]);
    if (it == t->token_to_id_.end()) {
      return Refuse(source, "model.vocab",
                    absl::StrCat("lacks the byte-level token of byte ", b,
                                 "; not a byte-level BPE vocabulary"));
    }
    t->byte_token_[b] = it->second;
  }

  // Normalizer: none, or NFC.
  const Json normalizer = j.value("normalizer", Json());
  if (Type(normalizer) == "NFC") {
    t->nfc_ = true;
  } else if (!normalizer.is_null()) {
    return Refuse(source, "normalizer.type",
                  absl::StrCat("is \"", Type(normalizer),
                               "\"; only null or \"NFC\" is supported"));
  }

  // Pre-tokenizer: a regex Split (isolated) and ByteLevel, or ByteLevel
  // with GPT-2's own regex.
  const std::vector<Json> steps =
      Steps(j.value("pre_tokenizer", Json()), "pretokenizers");
  std::string pattern;
  bool byte_level = false;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Json& s = steps[i];
    const std::string field = absl::StrCat("pre_tokenizer[", i, "]");
    if (Type(s) == "Split" && pattern.empty()) {
      if (!s.contains("pattern") || !s["pattern"].contains("Regex") ||
          !s["pattern"]["Regex"].is_string()) {
        return Refuse(source, field + ".pattern", "must be {\"Regex\": ...}");
      }
      if (s.value("behavior", "") != "Isolated" || s.value("invert", false)) {
        return Refuse(source, field,
                      "only behavior \"Isolated\" without invert is supported");
      }
      pattern = s["pattern"]["Regex"].get<std::string>();
    } else if (Type(s) == "ByteLevel" && !byte_level) {
      byte_level = true;
      if (s.value("add_prefix_space", false)) {
        return Refuse(source, field + ".add_prefix_space",
                      "is true; not supported");
      }
      if (s.value("use_regex", true)) {
        if (!pattern.empty()) {
          return Refuse(source, field + ".use_regex",
                        "is true after a Split: two regexes");
        }
        pattern = kGpt2Pattern;
      }
    } else {
      return Refuse(source, field + ".type",
                    absl::StrCat("\"", Type(s),
                                 "\" is not supported here (a regex Split, "
                                 "then ByteLevel)"));
    }
  }
  if (!byte_level || pattern.empty()) {
    return Refuse(source, "pre_tokenizer",
                  "must be byte-level with a regex (Split + ByteLevel, or "
                  "ByteLevel with use_regex)");
  }
  ASSIGN_OR_RETURN(const std::string re2_pattern,
                   ToRe2(pattern, source + ": pre_tokenizer"));
  t->split_pattern_ = std::make_unique<RE2>(re2_pattern, RE2::Quiet);
  if (!t->split_pattern_->ok()) {
    return Refuse(source, "pre_tokenizer",
                  absl::StrCat("regex: ", t->split_pattern_->error()));
  }
  const auto& groups = t->split_pattern_->NamedCapturingGroups();
  const auto ws = groups.find(kWhitespaceGroup);
  t->whitespace_group_ = ws == groups.end() ? 0 : ws->second;

  if (Type(j.value("decoder", Json())) != "ByteLevel") {
    return Refuse(source, "decoder.type",
                  absl::StrCat("is \"", Type(j.value("decoder", Json())),
                               "\"; only \"ByteLevel\" is supported"));
  }

  // BOS: from a TemplateProcessing post-processor ([BOS] $A), or from
  // tokenizer_config.json's add_bos_token.
  const std::vector<Json> processors =
      Steps(j.value("post_processor", Json()), "processors");
  std::string bos;
  for (const Json& p : processors) {
    if (Type(p) == "ByteLevel") continue;
    if (Type(p) != "TemplateProcessing") {
      return Refuse(source, "post_processor.type",
                    absl::StrCat("\"", Type(p), "\" is not supported"));
    }
    const Json single = p.value("single", Json::array());
    const bool bos_then_a = single.size() == 2 &&
                            single[0].contains("SpecialToken") &&
                            single[1].contains("Sequence") &&
                            single[1]["Sequence"].value("id", "") == "A";
    const bool just_a = single.size() == 1 && single[0].contains("Sequence");
    if (!bos_then_a && !just_a) {
      return Refuse(source, "post_processor.single",
                    "only [$A] or [BOS, $A] templates are supported");
    }
    if (bos_then_a) bos = single[0]["SpecialToken"].value("id", "");
  }
  Json config;
  if (!config_json.empty()) {
    config = Json::parse(config_json, nullptr, /*allow_exceptions=*/false);
    if (!config.is_object()) {
      return Refuse(source, "tokenizer_config.json", "is not a JSON object");
    }
    if (bos.empty() && config.value("add_bos_token", false)) {
      bos = TokenName(config.value("bos_token", Json()));
    }
    const std::string eos = TokenName(config.value("eos_token", Json()));
    if (const auto it = t->token_to_id_.find(eos);
        !eos.empty() && it != t->token_to_id_.end()) {
      t->eos_id_ = it->second;
    }
  }
  if (!bos.empty()) {
    const auto it = t->token_to_id_.find(bos);
    if (it == t->token_to_id_.end()) {
      return Refuse(source, "bos_token",
                    absl::StrCat("\"", bos, "\" is not in the vocabulary"));
    }
    t->bos_id_ = it->second;
  }
  return t;
}

void ByteLevelBpe::SplitAddedTokens(
    std::string_view text,
    std::vector<std::pair<std::string_view, int>>& out) const {
  if (added_pattern_ == nullptr) {
    out.emplace_back(text, -1);
    return;
  }
  const re2::StringPiece input(text.data(), text.size());
  size_t pos = 0;
  re2::StringPiece match;
  while (pos < text.size() &&
         added_pattern_->Match(input, pos, text.size(), RE2::UNANCHORED, &match,
                               1)) {
    const size_t start = match.data() - text.data();
    if (start > pos) out.emplace_back(text.substr(pos, start - pos), -1);
    out.emplace_back(std::string_view(), token_to_id_.at(std::string(match)));
    pos = start + match.size();
  }
  if (pos < text.size()) out.emplace_back(text.substr(pos), -1);
}

void ByteLevelBpe::PreTokenize(std::string_view text,
                               std::vector<std::string_view>& pieces) const {
  const re2::StringPiece input(text.data(), text.size());
  re2::StringPiece match;
  size_t pos = 0;
  while (pos < text.size()) {
    // The whole match alone: RE2 finds it with its DFA, many times faster
    // than with capture groups.
    if (!split_pattern_->Match(input, pos, text.size(), RE2::UNANCHORED, &match,
                               1)) {
      pieces.push_back(text.substr(pos));  // Isolated: the rest is a piece
      break;
    }
    const size_t start = match.data() - text.data();
    size_t end = start + match.size();
    if (start > pos) pieces.push_back(text.substr(pos, start - pos));
    if (end == start) {  // an empty match: step over one character
      size_t next = start;
      NextChar(text, next);
      pieces.push_back(text.substr(start, next - start));
      pos = next;
      continue;
    }
    if (whitespace_group_ > 0 && end < text.size() && AllSpace(match)) {
      size_t after = end;
      if (!IsSpace(NextChar(text, after)) && FromWhitespaceGroup(text, start)) {
        // `\s+(?!\S)`: leave the last space to the word that follows, when
        // the run has more than one character.
        size_t last = start, i = start;
        int chars = 0;
        while (i < end) {
          last = i;
          NextChar(text, i);
          ++chars;
        }
        if (chars > 1) end = last;
      }
    }
    pieces.push_back(text.substr(start, end - start));
    pos = end;
  }
}

bool ByteLevelBpe::FromWhitespaceGroup(std::string_view text,
                                       size_t start) const {
  std::vector<re2::StringPiece> groups(whitespace_group_ + 1);
  const re2::StringPiece input(text.data(), text.size());
  return split_pattern_->Match(input, start, text.size(), RE2::ANCHOR_START,
                               groups.data(),
                               static_cast<int>(groups.size())) &&
         groups[whitespace_group_].data() != nullptr;
}

void ByteLevelBpe::EncodePiece(std::string_view piece,
                               std::vector<int>& ids) const {
  if (ignore_merges_) {
    std::string mapped;
    for (unsigned char b : piece) mapped += byte_to_char_[b];
    if (const auto it = token_to_id_.find(mapped); it != token_to_id_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  // Merge the lowest-ranked adjacent pair, leftmost first, until none is
  // left: the order Hugging Face's BPE applies its merges in. A heap of
  // (rank, position) over a linked list keeps a long piece (a run of
  // thousands of letters) at O(n log n) rather than O(n^2).
  struct Symbol {
    int id;
    int prev;
    int next;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  for (size_t i = 0; i < piece.size(); ++i) {
    symbols.push_back({byte_token_[static_cast<unsigned char>(piece[i])],
                       static_cast<int>(i) - 1,
                       i + 1 < piece.size() ? static_cast<int>(i) + 1 : -1});
  }
  struct Candidate {
    uint64_t rank_and_merged;  // as stored in merges_
    int left;                  // position of the pair's left symbol
    int left_id, right_id;     // the pair it was made for
    bool operator>(const Candidate& o) const {
      const uint64_t rank = rank_and_merged >> 32,
                     o_rank = o.rank_and_merged >> 32;
      return rank != o_rank ? rank > o_rank : left > o.left;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  const auto consider = [&](int left) {
    if (left < 0 || symbols[left].next < 0) return;
    const int a = symbols[left].id, b = symbols[symbols[left].next].id;
    const auto it = merges_.find((uint64_t(uint32_t(a)) << 32) | uint32_t(b));
    if (it != merges_.end()) heap.push({it->second, left, a, b});
  };
  for (int i = 0; i + 1 < static_cast<int>(symbols.size()); ++i) consider(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& left = symbols[c.left];
    // Stale: the left symbol was merged away (id -1) or either side changed.
    if (left.id != c.left_id || left.next < 0 ||
        symbols[left.next].id != c.right_id) {
      continue;
    }
    Symbol& right = symbols[left.next];
    left.id = static_cast<int>(c.rank_and_merged & 0xFFFFFFFFu);
    right.id = -1;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = c.left;
    consider(left.prev);
    consider(c.left);
  }
  for (int i = 0; i >= 0 && !symbols.empty(); i = symbols[i].next) {
    ids.push_back(symbols[i].id);
  }
}

absl::StatusOr<std::vector<int>> ByteLevelBpe::Encode(
    std::string_view text) const {
  std::vector<std::pair<std::string_view, int>> segments;
  SplitAddedTokens(text, segments);
  std::vector<int> ids;
  std::vector<std::string_view> pieces;
  for (const auto& [segment, id] : segments) {
    if (id >= 0) {
      ids.push_back(id);
      continue;
    }
    std::string normalized;
    if (nfc_) {
      ASSIGN_OR_RETURN(normalized, Nfc(segment));
    } else {
      normalized = std::string(segment);
    }
    pieces.clear();
    PreTokenize(normalized, pieces);
    for (std::string_view piece : pieces) EncodePiece(piece, ids);
  }
  return ids;
}

std::string ByteLevelBpe::Decode(std::span<const int> ids) const {
  std::string bytes;
  for (int id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    const std::string& token = id_to_token_[id];
    // Every character back to its byte; a token with a character outside
    // the map (an added token such as "<|im_end|>" has none) is taken as
    // it is, as Hugging Face's ByteLevel decoder does.
    std::string decoded;
    bool mapped = true;
    for (size_t i = 0; i < token.size() && mapped;) {
      const uint32_t c = NextChar(token, i);
      mapped = c < char_to_byte_.size() && char_to_byte_[c] >= 0;
      if (mapped) decoded += static_cast<char>(char_to_byte_[c]);
    }
    bytes += mapped ? decoded : token;
  }
  return ValidUtf8(bytes);
}

}  // namespace hydra::model
