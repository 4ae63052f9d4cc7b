// What a request asks of the sampler and when its generation stops: plain
// data the engine keeps with each request (engine/request_state.h) and
// applies in its output processor.
#ifndef HYDRA_ENGINE_SAMPLING_PARAMS_H_
#define HYDRA_ENGINE_SAMPLING_PARAMS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hydra::engine {

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy (argmax)
  int top_k = 0;             // 0 = no limit
  float top_p = 1.0f;        // nucleus mass in (0, 1]; 1 = no limit
  float min_p = 0.0f;        // drop tokens below min_p * p(most likely)
  // > 1 discourages tokens already in the prompt or the output (HF/CTRL
  // style: positive logits divided by it, negative ones multiplied).
  float repetition_penalty = 1.0f;
  // Subtracted once from the logit of every token the output already holds
  // (presence), and once per occurrence (frequency); OpenAI semantics.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;  // per request; the engine picks one when unset
  // Unset: no logprobs. n >= 0: the chosen token's logprob and the n most
  // likely alternatives.
  std::optional<int> logprobs;
};

struct StoppingCriteria {
  int max_tokens = 256;
  int min_tokens = 0;             // no EOS or stop before this many tokens
  std::vector<std::string> stop;  // stop strings, cut from the returned text
  std::vector<int> stop_token_ids;
  bool ignore_eos = false;
};

}  // namespace hydra::engine

#endif  // HYDRA_ENGINE_SAMPLING_PARAMS_H_
