// Turns a public GenerateRequest into an EngineRequest, or into an
// INVALID_ARGUMENT status that names the field and what it allows.
#ifndef HYDRA_SERVER_REQUEST_VALIDATION_H_
#define HYDRA_SERVER_REQUEST_VALIDATION_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "hydra/v1/inference.pb.h"
#include "model/config.h"
#include "model/tokenizer.h"
#include "engine/engine.h"

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

// `max_model_len` is the engine's context cap (EngineConfig::max_model_len):
// the prompt and max_tokens must fit in it together.
absl::StatusOr<engine::EngineRequest> ValidateGenerateRequest(
    const v1::GenerateRequest& request, const model::ModelConfig& model,
    const model::Tokenizer& tokenizer, int max_model_len);

}  // namespace hydra::server

#endif  // HYDRA_SERVER_REQUEST_VALIDATION_H_
