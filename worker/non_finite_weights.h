// Weights that are NaN or Inf: a checkpoint holding them (a diverged
// training run, a broken conversion) serves garbage, e.g. token 0 for every
// step, without any error. The loader counts them in the same pass that
// packs or converts each tensor, so the count costs no extra read of the
// weights; the server warns at load and reports the count in GetModelInfo.
#ifndef HYDRA_WORKER_NON_FINITE_WEIGHTS_H_
#define HYDRA_WORKER_NON_FINITE_WEIGHTS_H_

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace hydra::worker {

struct NonFiniteWeights {
  // All of this rank's non-finite values, as held after conversion to the
  // runner's format (so a finite value too large for f16 counts as Inf).
  int64_t values = 0;
  // The checkpoint tensors holding them and how many each, in load order.
  std::vector<std::pair<std::string, int64_t>> tensors;

  // Adds `count` values of `tensor` (nothing when 0); a tensor packed in
  // several parts may be added once per part.
  void Add(const std::string& tensor, int64_t count);
};

// The number of NaN and Inf values in `values`.
int64_t CountNonFinite(std::span<const float> values);

// The load-time log line, e.g. "warning: 3 weights are not finite (NaN or
// Inf) in 1 tensor: model.layers.0.mlp.down_proj.weight (3); outputs will be
// garbage"; naming at most the first three tensors. Empty when none.
std::string NonFiniteWeightsWarning(const NonFiniteWeights& non_finite);

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_NON_FINITE_WEIGHTS_H_
