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
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/tokenizer.h"
#include "server/engine.h"

namespace hydra {

// What a front end asks for, before validation. Unset = the default.
struct RequestFields {
  // Exactly one of the two: text (the tokenizer's BOS is added) or ids.
  std::optional<std::string> prompt;
  std::optional<std::vector<int>> prompt_token_ids;

  std::optional<float> temperature;
  std::optional<int> top_k;
  std::optional<float> top_p;
  std::optional<float> min_p;
  std::optional<float> repetition_penalty;
  std::optional<float> presence_penalty;
  std::optional<float> frequency_penalty;
  std::optional<uint64_t> seed;
  std::optional<int> logprobs;

  std::optional<int> max_tokens;
  std::optional<int> min_tokens;
  std::vector<std::string> stop;
  std::vector<int> stop_token_ids;
  std::optional<bool> ignore_eos;

  std::optional<int> priority;
};

// How each field is spelled in errors. Indexed fields (prompt_token_ids,
// stop, stop_token_ids) get "[i]" appended.
struct FieldNames {
  std::string prompt = "prompt";
  std::string prompt_token_ids = "prompt_token_ids";
  std::string temperature = "temperature";
  std::string top_k = "top_k";
  std::string top_p = "top_p";
  std::string min_p = "min_p";
  std::string repetition_penalty = "repetition_penalty";
  std::string presence_penalty = "presence_penalty";
  std::string frequency_penalty = "frequency_penalty";
  std::string logprobs = "logprobs";
  std::string max_tokens = "max_tokens";
  std::string min_tokens = "min_tokens";
  std::string stop = "stop";
  std::string stop_token_ids = "stop_token_ids";
  std::string priority = "priority";
};

absl::StatusOr<EngineRequest> ValidateRequest(const RequestFields& fields,
                                              const FieldNames& names,
                                              const model::ModelConfig& model,
                                              const model::Tokenizer& tokenizer,
                                              int max_model_len);

}  // namespace hydra

#endif  // HYDRA_SERVER_HTTP_REQUEST_FIELDS_H_
