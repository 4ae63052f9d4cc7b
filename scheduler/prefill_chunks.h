// How many tokens each sequence in prefill computes this step: the chunking
// policy of the scheduler, apart from the bookkeeping of blocks and plans.
//
//   1. fair shares: every candidate of the most important priority present
//      may take an equal share of the step's tokens and time, so a short
//      prompt behind a long one is prefilled in its first step, and a long
//      one is never starved by a stream of short ones;
//   2. what the shares leave goes to the candidates in order (the caller's:
//      priority, then fewest tokens left), each taking what it can;
//   3. progress: the first candidate and every started one compute at least
//      `min_chunk` tokens (or what they have left), even when the time left
//      is spent, so a budget the decodes alone exceed still lets prefill
//      move.
// Time is the cost model's marginal prediction of each chunk: tokens, key
// reads at the sequence's context, and one more sequence.
#ifndef HYDRA_SCHEDULER_PREFILL_CHUNKS_H_
#define HYDRA_SCHEDULER_PREFILL_CHUNKS_H_

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "scheduler/step_cost_model.h"

namespace hydra::scheduler {

struct PrefillCandidate {
  int64_t computed = 0;  // tokens already in the cache
  int remaining = 0;     // tokens left to compute (> 0)
  bool started = false;  // running already (else it would be admitted now)
  int priority = 0;      // lower is more important; the order is the caller's
};

struct ChunkLimits {
  int max_tokens = 0;  // tokens the step may still take, all candidates
  // Predicted time the candidates may add to the step; infinite without a
  // step-time budget (or when nothing decodes, so nobody waits on the step).
  double time_left_ms = std::numeric_limits<double>::infinity();
  int min_chunk = 16;
};

// Tokens for each candidate, in the candidates' order (0: none this step).
// The sum never exceeds limits.max_tokens.
std::vector<int> SizePrefillChunks(std::span<const PrefillCandidate> candidates,
                                   const ChunkLimits& limits,
                                   const StepCostModel& model);

}  // namespace hydra::scheduler

#endif  // HYDRA_SCHEDULER_PREFILL_CHUNKS_H_
