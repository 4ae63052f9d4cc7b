#include "worker/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace hydra::worker {

int Argmax(std::span<const float> logits) {
  return static_cast<int>(std::max_element(logits.begin(), logits.end()) -
                          logits.begin());
}

Sampler::Sampler(const SamplingParams& params)
    : params_(params), rng_(params.seed) {}

// Plain temperature sampling needs no ordering of the vocabulary.
int Sampler::SampleAll(std::span<const float> logits) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  probs_.resize(logits.size());
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    probs_[i] = std::exp((logits[i] - max_logit) / params_.temperature);
    sum += probs_[i];
  }
  double r = std::uniform_real_distribution<double>(0.0, sum)(rng_);
  for (size_t i = 0; i < probs_.size(); ++i) {
    r -= probs_[i];
    if (r < 0.0) return static_cast<int>(i);
  }
  return Argmax(logits);
}

int Sampler::Sample(std::span<const float> logits) {
  if (params_.temperature <= 0.0f) return Argmax(logits);
  const int n = static_cast<int>(logits.size());
  if (params_.top_k <= 0 && params_.top_p >= 1.0f) return SampleAll(logits);
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), 0);
  // Only the top-k candidates need ordering; with no k, all of them.
  const int k = params_.top_k > 0 ? std::min(params_.top_k, n) : n;
  auto by_logit = [&](int a, int b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  std::partial_sort(order_.begin(), order_.begin() + k, order_.end(), by_logit);
  order_.resize(k);

  probs_.resize(k);
  const float max_logit = logits[order_[0]];
  double sum = 0.0;
  for (int i = 0; i < k; ++i) {
    probs_[i] = std::exp((logits[order_[i]] - max_logit) / params_.temperature);
    sum += probs_[i];
  }
  // Nucleus: the smallest prefix whose probability reaches top_p.
  int kept = k;
  if (params_.top_p < 1.0f) {
    double cumulative = 0.0;
    for (int i = 0; i < k; ++i) {
      cumulative += probs_[i] / sum;
      if (cumulative >= params_.top_p) {
        kept = i + 1;
        break;
      }
    }
  }
  const double kept_sum =
      std::accumulate(probs_.begin(), probs_.begin() + kept, 0.0);
  double r = std::uniform_real_distribution<double>(0.0, kept_sum)(rng_);
  for (int i = 0; i < kept; ++i) {
    r -= probs_[i];
    if (r < 0.0) return order_[i];
  }
  return order_[kept - 1];
}

}  // namespace hydra::worker
