#include "server/http/openai_request.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace hydra::server::http {
namespace {

using Json = nlohmann::ordered_json;

absl::Status Invalid(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(field), ": ", std::string(what)));
}

std::string_view TypeName(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::number_float:
      return "a number";
    default:
      return "an integer";
  }
}

absl::Status WrongType(std::string_view field, std::string_view wanted,
                       const Json& got) {
  return Invalid(field, absl::StrCat("must be ", std::string(wanted), ", not ",
                                     std::string(TypeName(got))));
}

// The member `name` of `obj`, or nullptr when absent or null (OpenAI
// treats null as "not set").
const Json* Member(const Json& obj, std::string_view name) {
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<int64_t> AsInt64(const Json& j, std::string_view field) {
  if (j.is_number_integer() && !j.is_number_unsigned()) {
    return j.get<int64_t>();
  }
  if (j.is_number_unsigned()) {
    const uint64_t v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Invalid(field, absl::StrCat(v, " is too large"));
    }
    return static_cast<int64_t>(v);
  }
  if (j.is_number_float()) {
    // 5.0 is taken for 5, as OpenAI's own validation does.
    const double d = j.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) {
      return static_cast<int64_t>(d);
    }
    return Invalid(field, absl::StrCat("must be an integer, not ", d));
  }
  return WrongType(field, "an integer", j);
}

absl::StatusOr<int> AsInt(const Json& j, std::string_view field) {
  ASSIGN_OR_RETURN(const int64_t v, AsInt64(j, field));
  if (v < std::numeric_limits<int>::min() ||
      v > std::numeric_limits<int>::max()) {
    return Invalid(field,
                   absl::StrCat(v, " is outside the 32-bit integer range"));
  }
  return static_cast<int>(v);
}

absl::StatusOr<std::optional<int>> OptInt(const Json& obj,
                                          std::string_view name) {
  const Json* j = Member(obj, name);
  if (j == nullptr) return std::optional<int>();
  ASSIGN_OR_RETURN(int v, AsInt(*j, name));
  return std::optional<int>(v);
}

absl::StatusOr<std::optional<float>> OptFloat(const Json& obj,
                                              std::string_view name) {
  const Json* j = Member(obj, name);
  if (j == nullptr) return std::optional<float>();
  if (!j->is_number()) return WrongType(name, "a number", *j);
  const double d = j->get<double>();
  if (!std::isfinite(d) || std::fabs(d) > 1e30) {
    return Invalid(name, absl::StrCat(d, " is not a usable number"));
  }
  return std::optional<float>(static_cast<float>(d));
}

absl::StatusOr<std::optional<bool>> OptBool(const Json& obj,
                                            std::string_view name) {
  const Json* j = Member(obj, name);
  if (j == nullptr) return std::optional<bool>();
  if (!j->is_boolean()) return WrongType(name, "a boolean", *j);
  return std::optional<bool>(j->get<bool>());
}

absl::StatusOr<std::optional<std::string>> OptString(const Json& obj,
                                                     std::string_view name) {
  const Json* j = Member(obj, name);
  if (j == nullptr) return std::optional<std::string>();
  if (!j->is_string()) return WrongType(name, "a string", *j);
  return std::optional<std::string>(j->get<std::string>());
}

absl::StatusOr<std::vector<int>> IntArray(const Json& j,
                                          std::string_view field) {
  if (!j.is_array()) return WrongType(field, "an array of integers", j);
  std::vector<int> out;
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    ASSIGN_OR_RETURN(
        int v, AsInt(j[i], absl::StrCat(std::string(field), "[", i, "]")));
    out.push_back(v);
  }
  return out;
}

// A field this server does not implement: refused unless unset or equal to
// what it would do anyway.
absl::Status Unsupported(std::string_view name, std::string_view why) {
  return Invalid(name, why);
}

// Sampling and stopping fields shared by both endpoints.
absl::Status ParseSampling(const Json& body, OpenAiRequest& out) {
  RequestFields& f = out.fields;
  ASSIGN_OR_RETURN(out.model, OptString(body, "model"));
  ASSIGN_OR_RETURN(f.temperature, OptFloat(body, "temperature"));
  ASSIGN_OR_RETURN(f.top_p, OptFloat(body, "top_p"));
  ASSIGN_OR_RETURN(std::optional<float> presence,
                   OptFloat(body, "presence_penalty"));
  f.presence_penalty = presence.value_or(0.0f);
  ASSIGN_OR_RETURN(std::optional<float> frequency,
                   OptFloat(body, "frequency_penalty"));
  f.frequency_penalty = frequency.value_or(0.0f);
  ASSIGN_OR_RETURN(std::optional<float> min_p, OptFloat(body, "min_p"));
  f.min_p = min_p.value_or(0.0f);
  ASSIGN_OR_RETURN(f.repetition_penalty, OptFloat(body, "repetition_penalty"));
  ASSIGN_OR_RETURN(std::optional<int> top_k, OptInt(body, "top_k"));
  f.top_k = top_k.value_or(0);
  if (f.top_k == -1) f.top_k = 0;  // vLLM's spelling of "no limit"
  ASSIGN_OR_RETURN(std::optional<int> min_tokens, OptInt(body, "min_tokens"));
  f.min_tokens = min_tokens.value_or(0);
  ASSIGN_OR_RETURN(std::optional<bool> ignore_eos, OptBool(body, "ignore_eos"));
  f.ignore_eos = ignore_eos.value_or(false);
  ASSIGN_OR_RETURN(std::optional<int> priority, OptInt(body, "priority"));
  f.priority = priority.value_or(0);
  ASSIGN_OR_RETURN(f.retention, OptString(body, "retention"));
  if (const Json* seed = Member(body, "seed")) {
    if (seed->is_number_unsigned()) {
      f.seed = seed->get<uint64_t>();
    } else {
      ASSIGN_OR_RETURN(const int64_t s, AsInt64(*seed, "seed"));
      f.seed = static_cast<uint64_t>(s);
    }
  }
  if (const Json* stop = Member(body, "stop")) {
    if (stop->is_string()) {
      f.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (size_t i = 0; i < stop->size(); ++i) {
        const Json& s = (*stop)[i];
        if (!s.is_string()) {
          return WrongType(absl::StrCat("stop[", i, "]"), "a string", s);
        }
        f.stop.push_back(s.get<std::string>());
      }
    } else {
      return WrongType("stop", "a string or an array of strings", *stop);
    }
  }
  if (const Json* ids = Member(body, "stop_token_ids")) {
    ASSIGN_OR_RETURN(f.stop_token_ids, IntArray(*ids, "stop_token_ids"));
  }

  ASSIGN_OR_RETURN(std::optional<int> n, OptInt(body, "n"));
  if (n.has_value()) {
    if (*n < 1 || *n > kMaxChoices) {
      return Invalid("n",
                     absl::StrCat(*n, " is outside [1, ", kMaxChoices, "]"));
    }
    out.n = *n;
  }
  ASSIGN_OR_RETURN(std::optional<bool> stream, OptBool(body, "stream"));
  out.stream = stream.value_or(false);
  if (const Json* options = Member(body, "stream_options")) {
    if (!options->is_object()) {
      return WrongType("stream_options", "an object", *options);
    }
    if (const Json* usage = Member(*options, "include_usage")) {
      if (!usage->is_boolean()) {
        return WrongType("stream_options.include_usage", "a boolean", *usage);
      }
      out.include_usage = usage->get<bool>();
    }
  }
  if (const Json* bias = Member(body, "logit_bias")) {
    if (!bias->is_object() || !bias->empty()) {
      return Unsupported("logit_bias", "is not supported");
    }
  }
  if (const Json* echo = Member(body, "echo")) {
    if (!echo->is_boolean()) return WrongType("echo", "a boolean", *echo);
    if (echo->get<bool>()) {
      return Unsupported("echo", "true is not supported (only false)");
    }
  }
  return absl::OkStatus();
}

absl::Status ParseMaxTokens(const Json& body, std::string_view name,
                            OpenAiRequest& out) {
  ASSIGN_OR_RETURN(std::optional<int> max_tokens, OptInt(body, name));
  if (max_tokens.has_value()) {
    out.fields.max_tokens = max_tokens;
    out.max_tokens_set = true;
    out.max_tokens_name = std::string(name);
  }
  return absl::OkStatus();
}

absl::Status ParsePrompt(const Json& body, RequestFields& f) {
  const Json* prompt = Member(body, "prompt");
  if (prompt == nullptr) return Invalid("prompt", "is required");
  if (prompt->is_string()) {
    f.prompt = PromptText{prompt->get<std::string>()};
    return absl::OkStatus();
  }
  if (!prompt->is_array()) {
    return WrongType("prompt", "a string or an array of token ids", *prompt);
  }
  if (prompt->empty()) return Invalid("prompt", "must not be empty");
  const Json& first = (*prompt)[0];
  if (first.is_number()) {
    ASSIGN_OR_RETURN(f.prompt, IntArray(*prompt, "prompt"));
    return absl::OkStatus();
  }
  if (prompt->size() > 1) {
    return Invalid("prompt",
                   "a batch of several prompts is not supported: send one "
                   "prompt per request (n asks for several completions)");
  }
  if (first.is_string()) {
    f.prompt = PromptText{first.get<std::string>()};
  } else if (first.is_array()) {
    ASSIGN_OR_RETURN(f.prompt, IntArray(first, "prompt[0]"));
  } else {
    return WrongType("prompt[0]", "a string or an array of token ids", first);
  }
  return absl::OkStatus();
}

// messages → [{role, content}] with string contents.
absl::StatusOr<Json> ParseMessages(const Json& body) {
  const Json* messages = Member(body, "messages");
  if (messages == nullptr) return Invalid("messages", "is required");
  if (!messages->is_array()) {
    return WrongType("messages", "an array of messages", *messages);
  }
  if (messages->empty()) return Invalid("messages", "must not be empty");
  Json out = Json::array();
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    const std::string at = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return WrongType(at, "an object", m);
    const Json* role = Member(m, "role");
    if (role == nullptr) return Invalid(at + ".role", "is required");
    if (!role->is_string()) return WrongType(at + ".role", "a string", *role);
    const std::string r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant") {
      return Invalid(at + ".role",
                     absl::StrCat("'", r,
                                  "' is not supported; use system, user or "
                                  "assistant"));
    }
    if (Member(m, "tool_calls") != nullptr) {
      return Unsupported(at + ".tool_calls", "tool calls are not supported");
    }
    if (Member(m, "function_call") != nullptr) {
      return Unsupported(at + ".function_call",
                         "function calls are not supported");
    }
    std::string text;
    const Json* content = Member(m, "content");
    if (content == nullptr) {
      if (r != "assistant") return Invalid(at + ".content", "is required");
    } else if (content->is_string()) {
      text = content->get<std::string>();
    } else if (content->is_array()) {
      for (size_t j = 0; j < content->size(); ++j) {
        const Json& part = (*content)[j];
        const std::string pat = absl::StrCat(at, ".content[", j, "]");
        if (!part.is_object()) return WrongType(pat, "an object", part);
        const Json* type = Member(part, "type");
        if (type == nullptr) return Invalid(pat + ".type", "is required");
        if (!type->is_string()) {
          return WrongType(pat + ".type", "a string", *type);
        }
        if (type->get<std::string>() != "text") {
          return Unsupported(
              pat + ".type",
              absl::StrCat("'", type->get<std::string>(),
                           "' parts are not supported; only 'text'"));
        }
        const Json* t = Member(part, "text");
        if (t == nullptr) return Invalid(pat + ".text", "is required");
        if (!t->is_string()) return WrongType(pat + ".text", "a string", *t);
        if (j > 0) text += "\n";
        text += t->get<std::string>();
      }
    } else {
      return WrongType(at + ".content", "a string or an array of content parts",
                       *content);
    }
    out.push_back(Json{{"role", r}, {"content", std::move(text)}});
  }
  return out;
}

absl::Status RefuseTools(const Json& body) {
  if (const Json* tools = Member(body, "tools")) {
    if (!tools->is_array() || !tools->empty()) {
      return Unsupported("tools", "tool calling is not supported");
    }
  }
  if (const Json* choice = Member(body, "tool_choice")) {
    if (!(choice->is_string() && choice->get<std::string>() == "none")) {
      return Unsupported("tool_choice",
                         "tool calling is not supported (only \"none\")");
    }
  }
  if (Member(body, "functions") != nullptr) {
    return Unsupported("functions", "function calling is not supported");
  }
  if (Member(body, "function_call") != nullptr) {
    return Unsupported("function_call", "function calling is not supported");
  }
  if (const Json* format = Member(body, "response_format")) {
    const Json* type = format->is_object() ? Member(*format, "type") : nullptr;
    if (type == nullptr || !type->is_string() ||
        type->get<std::string>() != "text") {
      return Unsupported("response_format",
                         "only {\"type\": \"text\"} is supported");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Json> ParseJsonObject(const std::string& body) {
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Parse again with exceptions only to learn where it failed.
    try {
      [[maybe_unused]] const Json reparsed = Json::parse(body);
    } catch (const Json::parse_error& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("the body is not valid JSON: ", e.what()));
    } catch (...) {
    }
    return absl::InvalidArgumentError("the body is not valid JSON");
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the body must be a JSON object, not ", std::string(TypeName(j))));
  }
  return j;
}

absl::StatusOr<OpenAiRequest> ParseCompletionRequest(const Json& body) {
  OpenAiRequest out;
  RETURN_IF_ERROR(ParsePrompt(body, out.fields));
  RETURN_IF_ERROR(ParseSampling(body, out));
  RETURN_IF_ERROR(ParseMaxTokens(body, "max_tokens", out));
  ASSIGN_OR_RETURN(out.fields.logprobs, OptInt(body, "logprobs"));
  if (const Json* suffix = Member(body, "suffix")) {
    if (!suffix->is_string() || !suffix->get<std::string>().empty()) {
      return Unsupported("suffix", "is not supported");
    }
  }
  ASSIGN_OR_RETURN(std::optional<int> best_of, OptInt(body, "best_of"));
  if (best_of.has_value() && *best_of != out.n) {
    return Unsupported("best_of", "is not supported (only best_of = n)");
  }
  return out;
}

absl::StatusOr<OpenAiRequest> ParseChatRequest(const Json& body) {
  OpenAiRequest out;
  ASSIGN_OR_RETURN(out.messages, ParseMessages(body));
  RETURN_IF_ERROR(RefuseTools(body));
  RETURN_IF_ERROR(ParseSampling(body, out));
  // max_completion_tokens replaces the deprecated max_tokens.
  if (Member(body, "max_completion_tokens") != nullptr) {
    RETURN_IF_ERROR(ParseMaxTokens(body, "max_completion_tokens", out));
  } else {
    RETURN_IF_ERROR(ParseMaxTokens(body, "max_tokens", out));
  }
  ASSIGN_OR_RETURN(std::optional<bool> logprobs, OptBool(body, "logprobs"));
  ASSIGN_OR_RETURN(std::optional<int> top, OptInt(body, "top_logprobs"));
  out.chat_logprobs = logprobs.value_or(false);
  if (top.has_value() && !out.chat_logprobs) {
    return Invalid("top_logprobs", "needs logprobs: true");
  }
  if (out.chat_logprobs) out.fields.logprobs = top.value_or(0);
  ASSIGN_OR_RETURN(std::optional<bool> add_generation_prompt,
                   OptBool(body, "add_generation_prompt"));
  out.add_generation_prompt = add_generation_prompt.value_or(true);
  return out;
}

absl::StatusOr<TokenizeRequest> ParseTokenizeRequest(const Json& body) {
  TokenizeRequest out;
  ASSIGN_OR_RETURN(out.model, OptString(body, "model"));
  if (Member(body, "messages") != nullptr) {
    ASSIGN_OR_RETURN(out.messages, ParseMessages(body));
    ASSIGN_OR_RETURN(std::optional<bool> add,
                     OptBool(body, "add_generation_prompt"));
    out.add_generation_prompt = add.value_or(true);
  } else {
    ASSIGN_OR_RETURN(out.prompt, OptString(body, "prompt"));
    if (!out.prompt.has_value()) {
      return Invalid("prompt", "is required (or messages)");
    }
  }
  ASSIGN_OR_RETURN(std::optional<bool> special,
                   OptBool(body, "add_special_tokens"));
  out.add_special_tokens = special.value_or(true);
  return out;
}

absl::StatusOr<DetokenizeRequest> ParseDetokenizeRequest(const Json& body) {
  DetokenizeRequest out;
  ASSIGN_OR_RETURN(out.model, OptString(body, "model"));
  const Json* tokens = Member(body, "tokens");
  if (tokens == nullptr) return Invalid("tokens", "is required");
  ASSIGN_OR_RETURN(out.tokens, IntArray(*tokens, "tokens"));
  return out;
}

}  // namespace hydra::server::http
