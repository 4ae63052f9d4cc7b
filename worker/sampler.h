// Picks the next token from one row of logits. Each request carries its own
// random generator, seeded per request, so its draws do not depend on what
// else shares the batch.
#ifndef HYDRA_WORKER_SAMPLER_H_
#define HYDRA_WORKER_SAMPLER_H_

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace hydra::worker {

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy
  int top_k = 0;             // 0 = all tokens
  float top_p = 1.0f;        // 1 = no nucleus cut
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int Sample(std::span<const float> logits);

 private:
  int SampleAll(std::span<const float> logits);
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<int> order_;
  std::vector<float> probs_;
};

// Index of the largest logit (the lowest index among ties).
int Argmax(std::span<const float> logits);

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_SAMPLER_H_
