// The one place where the user-facing bounds of a request are checked, for
// every front end: each parses its wire format into RequestFields (reporting
// wrong types itself) and names its fields in a FieldNames table, so that an
// error says "temperature: 7 is outside [0, 2]" in the spelling the client
// used. A valid request becomes an engine::EngineRequest.
#ifndef HYDRA_SERVER_REQUEST_VALIDATION_H_
#define HYDRA_SERVER_REQUEST_VALIDATION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/request.h"
#include "model/config.h"
#include "model/tokenizer.h"

namespace hydra::server {

inline constexpr int kMaxStopStrings = 8;
inline constexpr int kMaxStopStringBytes = 256;
inline constexpr int kMaxStopTokenIds = 64;
inline constexpr int kMaxLogprobs = 20;
// `priority` is in [-kMaxPriority, kMaxPriority].
inline constexpr int kMaxPriority = 100;
inline constexpr int kMaxRequestIdBytes = 128;
inline constexpr int kDefaultMaxTokens = 256;

bool IsValidUtf8(std::string_view text);

// Text to tokenize, or token ids.
struct PromptText {
  std::string text;
  // False for text whose chat template already emitted BOS.
  bool add_bos = true;
};
using Prompt = std::variant<std::monostate, PromptText, std::vector<int>>;

// A request as a front end parsed it; unset fields take their defaults.
struct RequestFields {
  std::string request_id;
  Prompt prompt;
  std::optional<float> temperature;
  int top_k = 0;
  std::optional<float> top_p;
  float min_p = 0;
  std::optional<float> repetition_penalty;
  float presence_penalty = 0;
  float frequency_penalty = 0;
  std::optional<uint64_t> seed;
  std::optional<int> logprobs;
  std::optional<int> max_tokens;
  int min_tokens = 0;
  std::vector<std::string> stop;
  std::vector<int> stop_token_ids;
  bool ignore_eos = false;
  int priority = 0;
  // "normal" (also when unset) or "pinned" (scheduler::Retention).
  std::optional<std::string> retention;
};

// How a front end spells each field in its errors.
struct FieldNames {
  std::string_view request_id = "request_id";
  std::string_view prompt = "prompt";
  std::string_view prompt_token_ids = "prompt_token_ids";
  std::string_view input = "input";  // neither prompt nor ids given
  std::string_view temperature = "sampling.temperature";
  std::string_view top_k = "sampling.top_k";
  std::string_view top_p = "sampling.top_p";
  std::string_view min_p = "sampling.min_p";
  std::string_view repetition_penalty = "sampling.repetition_penalty";
  std::string_view presence_penalty = "sampling.presence_penalty";
  std::string_view frequency_penalty = "sampling.frequency_penalty";
  std::string_view logprobs = "sampling.logprobs";
  std::string_view max_tokens = "stopping.max_tokens";
  std::string_view min_tokens = "stopping.min_tokens";
  std::string_view stop = "stopping.stop";
  std::string_view stop_token_ids = "stopping.stop_token_ids";
  std::string_view priority = "priority";
  std::string_view retention = "retention";
};
// hydra.v1.GenerateRequest's names.
inline constexpr FieldNames kGrpcFieldNames{};

// `max_model_len` is the engine's context cap (EngineConfig::max_model_len):
// the prompt and max_tokens must fit in it together.
absl::StatusOr<engine::EngineRequest> ValidateRequest(
    const RequestFields& fields, const FieldNames& names,
    const model::ModelConfig& model, const model::Tokenizer& tokenizer,
    int max_model_len);

}  // namespace hydra::server

#endif  // HYDRA_SERVER_REQUEST_VALIDATION_H_
