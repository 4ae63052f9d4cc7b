// OpenAI request bodies (JSON) → RequestFields plus what only the OpenAI
// API has (n, stream, chat messages, ...). Type errors (a string where a
// number belongs, an integer out of range, an unsupported feature) are
// reported here as INVALID_ARGUMENT "field: what"; ranges are left to the
// shared validator (ValidateRequest).
#ifndef HYDRA_SERVER_HTTP_OPENAI_REQUEST_H_
#define HYDRA_SERVER_HTTP_OPENAI_REQUEST_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/request_validation.h"

namespace hydra::server::http {

inline constexpr int kMaxChoices = 16;  // n
// Completions without max_tokens generate at most this many (OpenAI's
// default for the legacy endpoint).
inline constexpr int kDefaultCompletionMaxTokens = 16;

struct OpenAiRequest {
  server::RequestFields fields;  // the prompt is left unset for chat
  std::optional<std::string> model;
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool max_tokens_set = false;
  // The field max_tokens came from (chat: max_completion_tokens or
  // max_tokens), for errors.
  std::string max_tokens_name = "max_tokens";
  // Chat only: [{role, content (a string)}], content parts joined.
  nlohmann::ordered_json messages;
  bool add_generation_prompt = true;
  bool chat_logprobs = false;  // logprobs: true
};

// POST /v1/completions.
absl::StatusOr<OpenAiRequest> ParseCompletionRequest(
    const nlohmann::ordered_json& body);
// POST /v1/chat/completions.
absl::StatusOr<OpenAiRequest> ParseChatRequest(
    const nlohmann::ordered_json& body);

// POST /tokenize: {prompt, add_special_tokens} or {messages,
// add_generation_prompt}.
struct TokenizeRequest {
  std::optional<std::string> model;
  std::optional<std::string> prompt;
  bool add_special_tokens = true;
  nlohmann::ordered_json messages;  // set: render these instead
  bool add_generation_prompt = true;
};
absl::StatusOr<TokenizeRequest> ParseTokenizeRequest(
    const nlohmann::ordered_json& body);

// POST /detokenize: {tokens: [ids]}.
struct DetokenizeRequest {
  std::optional<std::string> model;
  std::vector<int> tokens;
};
absl::StatusOr<DetokenizeRequest> ParseDetokenizeRequest(
    const nlohmann::ordered_json& body);

// The body as a JSON object, or INVALID_ARGUMENT saying why not (never
// throws).
absl::StatusOr<nlohmann::ordered_json> ParseJsonObject(const std::string& body);

}  // namespace hydra::server::http

#endif  // HYDRA_SERVER_HTTP_OPENAI_REQUEST_H_
