// Turns one sampled row of a step into its request's next output, in one
// place: mask what may not end the sequence yet → sample → end-of-sequence
// and stop token ids → detokenize → stop strings → length. It decides;
// the engine commits the decision (appends the token, finishes the
// sequence) and emits the output.
#ifndef HYDRA_ENGINE_OUTPUT_PROCESSOR_H_
#define HYDRA_ENGINE_OUTPUT_PROCESSOR_H_

#include <optional>
#include <span>
#include <vector>

#include "absl/time/time.h"
#include "engine/request.h"
#include "engine/request_state.h"
#include "engine/sampler.h"
#include "model/config.h"

namespace hydra::engine {

struct TokenDecision {
  int token_id = 0;
  // The token joins the sequence; an ending end-of-sequence or stop token id
  // does not (and is not returned).
  bool append = false;
  std::optional<FinishReason> finish;
  // New token ids, text and logprobs; the finish fields are the engine's.
  EngineOutput output;
};

class OutputProcessor {
 public:
  // `model` must outlive the processor.
  OutputProcessor(const model::ModelConfig& model, int max_model_len);

  // Whether `req`'s next token is the plain argmax of the raw logits
  // (greedy, no penalties, no logprobs, no min_tokens mask left): such rows
  // may be sampled by the runner on its device.
  static bool PlainGreedy(const RequestState& req);

  // Samples `logits` (one row, vocab floats) for `req`.
  TokenDecision Sample(RequestState& req, std::span<const float> logits,
                       absl::Time now);
  // Takes a token the runner picked on its device.
  TokenDecision Accept(RequestState& req, SampledToken sampled, absl::Time now);
  // The prompt of a prefill-only request is computed: it ends, emitting
  // nothing.
  TokenDecision EndPrefill(RequestState& req, absl::Time now);

 private:
  const model::ModelConfig& model_;
  int max_model_len_;
  std::vector<float> masked_row_;  // scratch
};

}  // namespace hydra::engine

#endif  // HYDRA_ENGINE_OUTPUT_PROCESSOR_H_
