#include "server/request_validation.h"

#include <cmath>
#include <string>

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

absl::Status CheckTokenIds(std::string_view field,
                           const google::protobuf::RepeatedField<int>& ids,
                           int vocab) {
  for (int i = 0; i < ids.size(); ++i) {
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

absl::StatusOr<engine::EngineRequest> ValidateGenerateRequest(
    const v1::GenerateRequest& request, const model::ModelConfig& model,
    const model::Tokenizer& tokenizer, int max_model_len) {
  engine::EngineRequest out;
  if (request.request_id().size() > kMaxRequestIdBytes) {
    return Invalid("request_id",
                   absl::StrCat("at most ", kMaxRequestIdBytes, " bytes"));
  }
  switch (request.input_case()) {
    case v1::GenerateRequest::kPrompt: {
      if (request.prompt().empty())
        return Invalid("prompt", "must not be empty");
      if (!IsValidUtf8(request.prompt()))
        return Invalid("prompt", "is not valid UTF-8");
      ASSIGN_OR_RETURN(out.prompt_ids, tokenizer.Encode(request.prompt()));
      break;
    }
    case v1::GenerateRequest::kPromptTokenIds: {
      const auto& ids = request.prompt_token_ids().ids();
      if (ids.empty()) return Invalid("prompt_token_ids", "must not be empty");
      RETURN_IF_ERROR(CheckTokenIds("prompt_token_ids", ids, model.vocab_size));
      out.prompt_ids.assign(ids.begin(), ids.end());
      break;
    }
    default:
      return Invalid("input", "set either prompt or prompt_token_ids");
  }

  // The context must hold the prompt and every token asked for.
  const int context = max_model_len;
  const int prompt_len = static_cast<int>(out.prompt_ids.size());
  if (prompt_len >= context) {
    return Invalid(
        "prompt",
        absl::StrCat(prompt_len, " tokens leave no room in the context of ",
                     context, " tokens (the server's max_model_len)"));
  }
  const v1::StoppingCriteria& stop = request.stopping();
  if (stop.has_max_tokens()) {
    if (stop.max_tokens() < 1 || stop.max_tokens() > context - prompt_len) {
      return Invalid(
          "stopping.max_tokens",
          absl::StrCat(stop.max_tokens(), " is outside [1, ",
                       context - prompt_len, "] (the context of ", context,
                       " minus the prompt's ", prompt_len, " tokens)"));
    }
    out.stopping.max_tokens = stop.max_tokens();
  } else {
    out.stopping.max_tokens = std::min(kDefaultMaxTokens, context - prompt_len);
  }
  if (stop.min_tokens() < 0 || stop.min_tokens() > out.stopping.max_tokens) {
    return Invalid(
        "stopping.min_tokens",
        absl::StrCat(stop.min_tokens(), " is outside [0, max_tokens = ",
                     out.stopping.max_tokens, "]"));
  }
  out.stopping.min_tokens = stop.min_tokens();
  if (stop.stop_size() > kMaxStopStrings) {
    return Invalid(
        "stopping.stop",
        absl::StrCat(stop.stop_size(), " strings; at most ", kMaxStopStrings));
  }
  for (int i = 0; i < stop.stop_size(); ++i) {
    const std::string& s = stop.stop(i);
    const std::string field = absl::StrCat("stopping.stop[", i, "]");
    if (s.empty() || s.size() > kMaxStopStringBytes) {
      return Invalid(field, absl::StrCat(s.size(), " bytes; allowed 1 to ",
                                         kMaxStopStringBytes));
    }
    if (!IsValidUtf8(s)) return Invalid(field, "is not valid UTF-8");
    out.stopping.stop.push_back(s);
  }
  if (stop.stop_token_ids_size() > kMaxStopTokenIds) {
    return Invalid("stopping.stop_token_ids",
                   absl::StrCat(stop.stop_token_ids_size(), " ids; at most ",
                                kMaxStopTokenIds));
  }
  RETURN_IF_ERROR(CheckTokenIds("stopping.stop_token_ids",
                                stop.stop_token_ids(), model.vocab_size));
  out.stopping.stop_token_ids.assign(stop.stop_token_ids().begin(),
                                     stop.stop_token_ids().end());
  out.stopping.ignore_eos = stop.ignore_eos();

  const v1::SamplingParams& s = request.sampling();
  engine::SamplingParams& p = out.sampling;
  if (s.has_temperature()) {
    RETURN_IF_ERROR(
        CheckRange("sampling.temperature", s.temperature(), 0.0f, 100.0f));
    p.temperature = s.temperature();
  }
  if (s.top_k() < 0) {
    return Invalid("sampling.top_k",
                   absl::StrCat(s.top_k(), " is negative; 0 means no limit"));
  }
  p.top_k = s.top_k();
  if (s.has_top_p()) {
    RETURN_IF_ERROR(
        CheckRange("sampling.top_p", s.top_p(), 0.0f, 1.0f, /*low_open=*/true));
    p.top_p = s.top_p();
  }
  RETURN_IF_ERROR(CheckRange("sampling.min_p", s.min_p(), 0.0f, 1.0f));
  p.min_p = s.min_p();
  if (s.has_repetition_penalty()) {
    // Below 0.01 the penalty only overflows logits; nothing useful lives
    // there.
    RETURN_IF_ERROR(CheckRange("sampling.repetition_penalty",
                               s.repetition_penalty(), 0.01f, 10.0f));
    p.repetition_penalty = s.repetition_penalty();
  }
  RETURN_IF_ERROR(CheckRange("sampling.presence_penalty", s.presence_penalty(),
                             -2.0f, 2.0f));
  RETURN_IF_ERROR(CheckRange("sampling.frequency_penalty",
                             s.frequency_penalty(), -2.0f, 2.0f));
  p.presence_penalty = s.presence_penalty();
  p.frequency_penalty = s.frequency_penalty();
  if (s.has_seed()) {
    p.seed = s.seed();
    out.seed_set = true;
  }
  if (s.has_logprobs()) {
    if (s.logprobs() < 0 || s.logprobs() > kMaxLogprobs) {
      return Invalid(
          "sampling.logprobs",
          absl::StrCat(s.logprobs(), " is outside [0, ", kMaxLogprobs, "]"));
    }
    p.logprobs = s.logprobs();
  }
  // Bounded so that the per-priority metrics have few label values.
  if (request.priority() < -kMaxPriority || request.priority() > kMaxPriority) {
    return Invalid("priority",
                   absl::StrCat(request.priority(), " is outside [",
                                -kMaxPriority, ", ", kMaxPriority, "]"));
  }
  out.priority = request.priority();
  return out;
}

}  // namespace hydra::server
