// TEMPORARY: a local copy of the front-end-neutral request shape that
// server/request_validation.h is getting on main (RequestFields, FieldNames,
// ValidateRequest). Until it lands, ValidateRequest here turns the fields
// into a v1::GenerateRequest and runs the gRPC validator on it, renaming the
// fields in its errors, so both front ends already share one validator.
// Delete this file when main has the real one.
#ifndef HYDRA_SERVER_HTTP_REQUEST_FIELDS_H_
#define HYDRA_SERVER_HTTP_REQUEST_FIELDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/tokenizer.h"
#include "server/engine.h"

namespace hydra::server {

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
};

// How a front end spells each field in its errors.
struct FieldNames {
  std::string_view request_id = "request_id";
  std::string_view prompt = "prompt";
  std::string_view prompt_token_ids = "prompt_token_ids";
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
};

absl::StatusOr<EngineRequest> ValidateRequest(const RequestFields& fields,
                                              const FieldNames& names,
                                              const model::ModelConfig& model,
                                              const model::Tokenizer& tokenizer,
                                              int max_model_len);

}  // namespace hydra::server

#endif  // HYDRA_SERVER_HTTP_REQUEST_FIELDS_H_
