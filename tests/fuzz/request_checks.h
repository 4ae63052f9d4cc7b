// The properties of a request that ValidateRequest accepted, whichever front
// end parsed it: what the engine may assume without checking again.
#ifndef HYDRA_TESTS_FUZZ_REQUEST_CHECKS_H_
#define HYDRA_TESTS_FUZZ_REQUEST_CHECKS_H_

#include <cmath>

#include "absl/status/statusor.h"
#include "engine/request.h"
#include "server/request_validation.h"
#include "tests/fuzz/fuzz_support.h"

namespace hydra::fuzz {

inline void CheckValidated(
    const absl::StatusOr<engine::EngineRequest>& validated,
    const SmallModel& model) {
  if (!validated.ok()) {
    // Every refusal is the client's fault, reported as such.
    HYDRA_FUZZ_CHECK(
        validated.status().code() == absl::StatusCode::kInvalidArgument,
        validated.status());
    return;
  }
  const engine::EngineRequest& r = *validated;
  HYDRA_FUZZ_CHECK(!r.prompt_ids.empty());
  for (int id : r.prompt_ids) {
    HYDRA_FUZZ_CHECK(id >= 0 && id < model.config.vocab_size);
  }
  for (int id : r.stopping.stop_token_ids) {
    HYDRA_FUZZ_CHECK(id >= 0 && id < model.config.vocab_size);
  }
  const int64_t prompt = static_cast<int64_t>(r.prompt_ids.size());
  HYDRA_FUZZ_CHECK(r.stopping.max_tokens >= 1 &&
                   prompt + r.stopping.max_tokens <= model.max_model_len);
  HYDRA_FUZZ_CHECK(r.stopping.min_tokens >= 0 &&
                   r.stopping.min_tokens <= r.stopping.max_tokens);
  HYDRA_FUZZ_CHECK(r.stopping.stop.size() <= server::kMaxStopStrings);
  const engine::SamplingParams& p = r.sampling;
  HYDRA_FUZZ_CHECK(std::isfinite(p.temperature) && p.temperature >= 0);
  HYDRA_FUZZ_CHECK(p.top_k >= 0);
  HYDRA_FUZZ_CHECK(p.top_p > 0 && p.top_p <= 1);
  HYDRA_FUZZ_CHECK(p.min_p >= 0 && p.min_p <= 1);
  HYDRA_FUZZ_CHECK(p.repetition_penalty > 0 &&
                   std::isfinite(p.repetition_penalty));
  HYDRA_FUZZ_CHECK(!p.logprobs.has_value() ||
                   (*p.logprobs >= 0 && *p.logprobs <= server::kMaxLogprobs));
  HYDRA_FUZZ_CHECK(r.priority >= -server::kMaxPriority &&
                   r.priority <= server::kMaxPriority);
}

}  // namespace hydra::fuzz

#endif  // HYDRA_TESTS_FUZZ_REQUEST_CHECKS_H_
