#include "server/request_validation.h"

#include <cmath>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hydra::server {
namespace {

absl::Status Invalid(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(field), ": ", std::string(what)));
}

absl::Status CheckRange(std::string_view field, float value, float low,
                        float high, bool low_open = false) {
  const bool ok = std::isfinite(value) &&
                  (low_open ? value > low : value >= low) && value <= high;
  if (ok) return absl::OkStatus();
  return Invalid(field,
                 absl::StrCat(value, " is outside ", low_open ? "(" : "[", low,
                              ", ", high, "]"));
}

absl::Status CheckTokenIds(std::string_view field, const std::vector<int>& ids,
                           int vocab) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      return Invalid(
          absl::StrCat(std::string(field), "[", i, "]"),
          absl::StrCat(ids[i], " is outside the vocabulary [0, ", vocab, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c >> 5) == 0x6) {
      n = 2;
      cp = c & 0x1F;
    } else if ((c >> 4) == 0xE) {
      n = 3;
      cp = c & 0x0F;
    } else if ((c >> 3) == 0x1E) {
      n = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      const unsigned char cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
        (n == 4 && cp < 0x10000) || (cp >= 0xD800 && cp <= 0xDFFF) ||
        cp > 0x10FFFF) {
      return false;
    }
    i += n;
  }
  return true;
}

absl::StatusOr<engine::EngineRequest> ValidateRequest(
    const RequestFields& fields, const FieldNames& names,
    const model::ModelConfig& model, const model::Tokenizer& tokenizer,
    int max_model_len) {
  engine::EngineRequest out;
  if (fields.request_id.size() > kMaxRequestIdBytes) {
    return Invalid(names.request_id,
                   absl::StrCat("at most ", kMaxRequestIdBytes, " bytes"));
  }
  if (!IsValidUtf8(fields.request_id)) {
    return Invalid(names.request_id, "is not valid UTF-8");
  }
  const int context = max_model_len;
  if (const auto* text = std::get_if<PromptText>(&fields.prompt)) {
    if (text->text.empty()) return Invalid(names.prompt, "must not be empty");
    // Refused by length before the work of tokenizing what cannot fit.
    const int64_t max_bytes = tokenizer.MaxUsefulTextBytes(context);
    if (static_cast<int64_t>(text->text.size()) > max_bytes) {
      return Invalid(
          names.prompt,
          absl::StrCat(text->text.size(), " bytes cannot fit the context of ",
                       context, " tokens (at most ", max_bytes,
                       " bytes of text can)"));
    }
    if (!IsValidUtf8(text->text)) {
      return Invalid(names.prompt, "is not valid UTF-8");
    }
    ASSIGN_OR_RETURN(out.prompt_ids,
                     tokenizer.Encode(text->text, text->add_bos));
  } else if (const auto* ids = std::get_if<std::vector<int>>(&fields.prompt)) {
    if (ids->empty())
      return Invalid(names.prompt_token_ids, "must not be empty");
    RETURN_IF_ERROR(
        CheckTokenIds(names.prompt_token_ids, *ids, model.vocab_size));
    out.prompt_ids = *ids;
  } else {
    return Invalid(names.input,
                   absl::StrCat("set either ", std::string(names.prompt),
                                " or ", std::string(names.prompt_token_ids)));
  }

  // The context must hold the prompt and every token asked for.
  const int prompt_len = static_cast<int>(out.prompt_ids.size());
  if (prompt_len >= context) {
    return Invalid(
        names.prompt,
        absl::StrCat(prompt_len, " tokens leave no room in the context of ",
                     context, " tokens (the server's max_model_len)"));
  }
  if (fields.max_tokens.has_value()) {
    const int max_tokens = *fields.max_tokens;
    if (max_tokens < 1 || max_tokens > context - prompt_len) {
      return Invalid(
          names.max_tokens,
          absl::StrCat(max_tokens, " is outside [1, ", context - prompt_len,
                       "] (the context of ", context, " minus the prompt's ",
                       prompt_len, " tokens)"));
    }
    out.stopping.max_tokens = max_tokens;
  } else {
    out.stopping.max_tokens = std::min(kDefaultMaxTokens, context - prompt_len);
  }
  if (fields.min_tokens < 0 || fields.min_tokens > out.stopping.max_tokens) {
    return Invalid(
        names.min_tokens,
        absl::StrCat(fields.min_tokens, " is outside [0, max_tokens = ",
                     out.stopping.max_tokens, "]"));
  }
  out.stopping.min_tokens = fields.min_tokens;
  if (fields.stop.size() > kMaxStopStrings) {
    return Invalid(names.stop,
                   absl::StrCat(fields.stop.size(), " strings; at most ",
                                kMaxStopStrings));
  }
  for (size_t i = 0; i < fields.stop.size(); ++i) {
    const std::string& s = fields.stop[i];
    const std::string field =
        absl::StrCat(std::string(names.stop), "[", i, "]");
    if (s.empty() || s.size() > kMaxStopStringBytes) {
      return Invalid(field, absl::StrCat(s.size(), " bytes; allowed 1 to ",
                                         kMaxStopStringBytes));
    }
    if (!IsValidUtf8(s)) return Invalid(field, "is not valid UTF-8");
  }
  out.stopping.stop = fields.stop;
  if (fields.stop_token_ids.size() > kMaxStopTokenIds) {
    return Invalid(names.stop_token_ids,
                   absl::StrCat(fields.stop_token_ids.size(), " ids; at most ",
                                kMaxStopTokenIds));
  }
  RETURN_IF_ERROR(CheckTokenIds(names.stop_token_ids, fields.stop_token_ids,
                                model.vocab_size));
  out.stopping.stop_token_ids = fields.stop_token_ids;
  out.stopping.ignore_eos = fields.ignore_eos;

  engine::SamplingParams& p = out.sampling;
  if (fields.temperature.has_value()) {
    RETURN_IF_ERROR(
        CheckRange(names.temperature, *fields.temperature, 0.0f, 100.0f));
    p.temperature = *fields.temperature;
  }
  if (fields.top_k < 0) {
    return Invalid(names.top_k, absl::StrCat(fields.top_k,
                                             " is negative; 0 means no limit"));
  }
  p.top_k = fields.top_k;
  if (fields.top_p.has_value()) {
    RETURN_IF_ERROR(CheckRange(names.top_p, *fields.top_p, 0.0f, 1.0f,
                               /*low_open=*/true));
    p.top_p = *fields.top_p;
  }
  RETURN_IF_ERROR(CheckRange(names.min_p, fields.min_p, 0.0f, 1.0f));
  p.min_p = fields.min_p;
  if (fields.repetition_penalty.has_value()) {
    // Below 0.01 the penalty only overflows logits; nothing useful lives
    // there.
    RETURN_IF_ERROR(CheckRange(names.repetition_penalty,
                               *fields.repetition_penalty, 0.01f, 10.0f));
    p.repetition_penalty = *fields.repetition_penalty;
  }
  RETURN_IF_ERROR(
      CheckRange(names.presence_penalty, fields.presence_penalty, -2.0f, 2.0f));
  RETURN_IF_ERROR(CheckRange(names.frequency_penalty, fields.frequency_penalty,
                             -2.0f, 2.0f));
  p.presence_penalty = fields.presence_penalty;
  p.frequency_penalty = fields.frequency_penalty;
  if (fields.seed.has_value()) {
    p.seed = *fields.seed;
    out.seed_set = true;
  }
  if (fields.logprobs.has_value()) {
    if (*fields.logprobs < 0 || *fields.logprobs > kMaxLogprobs) {
      return Invalid(names.logprobs,
                     absl::StrCat(*fields.logprobs, " is outside [0, ",
                                  kMaxLogprobs, "]"));
    }
    p.logprobs = *fields.logprobs;
  }
  // Bounded so that the per-priority metrics have few label values.
  if (fields.priority < -kMaxPriority || fields.priority > kMaxPriority) {
    return Invalid(names.priority,
                   absl::StrCat(fields.priority, " is outside [", -kMaxPriority,
                                ", ", kMaxPriority, "]"));
  }
  out.priority = fields.priority;
  if (fields.retention.has_value() && *fields.retention != "normal") {
    if (*fields.retention != "pinned") {
      return Invalid(names.retention,
                     absl::StrCat("'", *fields.retention,
                                  "' is not one of normal, pinned"));
    }
    out.retention = scheduler::Retention::kPinned;
  }
  return out;
}

}  // namespace hydra::server
