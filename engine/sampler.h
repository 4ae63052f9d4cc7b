// Picks the next token from one row of logits, as a request's
// SamplingParams ask. Each sequence owns its Sampler and with it its random
// generator, so a request's draws do not depend on what else shares the
// batch or on the order sequences are sampled in.
//
// Order of operations:
//   1. penalties (repetition, then presence/frequency) on a copy of the row;
//   2. logprobs, when asked, are the log-softmax of these penalized logits,
//      before temperature and filtering: they describe the model's
//      (penalized) distribution, not the filtered one sampled from;
//   3. temperature below 1e-5 (as vLLM: 1/T would overflow and such
//      temperatures are greedy in effect) or top_k 1 picks the argmax;
//   4. otherwise divide by temperature, keep the top_k, then the nucleus
//      (the smallest prefix of the sorted, top-k renormalized distribution
//      whose mass reaches top_p; at least one token), then the tokens with
//      p >= min_p * p_max, renormalize and draw. Each cut keeps a prefix of
//      the same order, so min-p simply intersects.
// Tokens are ordered by logit, the lower id first among ties, everywhere.
// Weights e^((logit - max) / T) below e^-87 (float underflow) count as 0,
// so a token masked with -inf is never drawn.
//
// Reproducibility: each draw takes one 64-bit value from a std::mt19937_64
// seeded with params.seed and turns it into u = (value >> 11) * 2^-53 in
// [0, 1); the token is the first whose cumulative weight exceeds u * total,
// scanning candidates best first when top_k is set and by token id
// otherwise. Greedy calls draw nothing; plain, top-k and min-p sampling draw
// once; top-p without top_k draws again when a draw lands outside the
// nucleus (exact rejection sampling, which spares sorting the vocabulary).
#ifndef HYDRA_ENGINE_SAMPLER_H_
#define HYDRA_ENGINE_SAMPLER_H_

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "engine/sampling_params.h"

namespace hydra::engine {

struct TokenLogprob {
  int token_id;
  float logprob;
};

struct SampledToken {
  int token_id = 0;
  // Of the chosen token; filled when params.logprobs is set.
  float logprob = 0;
  std::vector<TokenLogprob> top;  // params.logprobs most likely, descending
};

// One per sequence; not thread-safe. Its scratch buffers are reused across
// calls, so a call allocates only the result's `top`.
class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // `logits`: one row (vocab floats), not modified. `prompt` and `output`:
  // the sequence's token ids so far, for the penalties; ids outside the
  // vocabulary are ignored.
  SampledToken Sample(std::span<const float> logits,
                      std::span<const int> prompt, std::span<const int> output);

  const SamplingParams& params() const { return params_; }

 private:
  int Draw(std::span<const float> logits);
  int DrawTopK(std::span<const float> logits);
  int DrawNucleus(std::span<const float> logits, double target);
  void FillLogprobs(std::span<const float> logits, SampledToken& result);
  // Uniform in [0, 1): the generator's top 53 bits, scaled.
  double Uniform() { return (rng_() >> 11) * 0x1.0p-53; }

  SamplingParams params_;
  std::mt19937_64 rng_;
  // Scratch, reused across calls.
  std::vector<float> penalized_;
  std::vector<float> weights_;
  std::vector<double> block_sums_;
  std::vector<std::pair<float, int>> top_;  // (logit, token id)
  std::vector<int> counts_;                 // vocab-sized, zero between calls
  std::vector<int> touched_;
};

// Index of the largest logit (the lowest index among ties).
int Argmax(std::span<const float> logits);

// Applies the repetition penalty over the distinct tokens of prompt and
// output (HF style: logit > 0 ? logit / r : logit * r), then subtracts
// presence * (count > 0) + frequency * count, with counts over the output
// only (OpenAI style). In place; ids outside the vocabulary are ignored.
void ApplyPenalties(const SamplingParams& p, std::span<float> logits,
                    std::span<const int> prompt, std::span<const int> output);

}  // namespace hydra::engine

#endif  // HYDRA_ENGINE_SAMPLER_H_
