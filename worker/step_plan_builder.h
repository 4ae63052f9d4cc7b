// Assembles a StepPlan from per-sequence chunks, for callers that manage
// their own block tables (offline generation, tests, benchmarks). The serving
// path gets its plans from the scheduler instead.
#ifndef HYDRA_WORKER_STEP_PLAN_BUILDER_H_
#define HYDRA_WORKER_STEP_PLAN_BUILDER_H_

#include <span>

#include "hydra/internal/step.pb.h"

namespace hydra::worker {

class StepPlanBuilder {
 public:
  explicit StepPlanBuilder(int block_size) : block_size_(block_size) {}

  // Appends `tokens` of one sequence at positions [start, start + size) and
  // its block table; `want_logits` asks for the logits of the last token.
  void Add(std::span<const int> tokens, int start,
           std::span<const int> block_table, bool want_logits);

  // Returns the plan and starts a new one.
  internal::StepPlan Take();

 private:
  int block_size_;
  internal::StepPlan plan_;
};

}  // namespace hydra::worker

#endif  // HYDRA_WORKER_STEP_PLAN_BUILDER_H_
