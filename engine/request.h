// What a front end hands the engine (EngineRequest) and what it gets back
// (EngineOutput, one per step that produced something), and why a request
// ended.
#ifndef HYDRA_ENGINE_REQUEST_H_
#define HYDRA_ENGINE_REQUEST_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "engine/sampler.h"
#include "engine/sampling_params.h"
#include "scheduler/sequence.h"

namespace hydra::engine {

enum class FinishReason {
  kNone,
  kStop,       // end-of-sequence id, a stop token id or a stop string
  kLength,     // max_tokens, or the model's context is full
  kCancelled,  // the client went away or asked to stop
  kDeadline,   // the request's deadline passed
  kError,      // the step failed; the message went to the client
};
std::string_view FinishReasonName(FinishReason reason);

// Checked by the front ends (server/request_validation.h); Submit refuses
// only what the engine could never serve.
struct EngineRequest {
  std::vector<int> prompt_ids;
  SamplingParams sampling;
  bool seed_set = false;  // else the engine draws a seed
  StoppingCriteria stopping;
  int priority = 0;
  scheduler::Retention retention = scheduler::Retention::kNormal;
  // Compute the prompt's KV (into the prefix cache) and finish, generating
  // nothing: the request ends with kLength and no tokens.
  bool prefill_only = false;
  absl::Time deadline = absl::InfiniteFuture();
};

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_prompt_tokens = 0;
};

// When things happened to a request, for latency metrics.
struct RequestTimes {
  absl::Time arrival;
  absl::Time first_scheduled;
  absl::Time first_token;
  absl::Time finished;
};

// One message per request per step that produced something.
struct EngineOutput {
  uint64_t request_id = 0;
  std::vector<int> token_ids;  // new tokens (usually one)
  std::string text;            // new text (may be empty while held back)
  std::vector<SampledToken> logprobs;  // per new token, when asked
  absl::Time time;                     // when this step's tokens were sampled
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;
  std::string error;                                    // with kError
  absl::StatusCode error_code = absl::StatusCode::kOk;  // with kError
  Usage usage;                                          // on the last message
  // The request's times so far (first_token set from its first token on,
  // finished on the last message): metrics observe TTFT at the first token.
  RequestTimes times;
};

// Called on the engine thread; must not block.
using OutputCallback = std::function<void(EngineOutput)>;

}  // namespace hydra::engine

#endif  // HYDRA_ENGINE_REQUEST_H_
