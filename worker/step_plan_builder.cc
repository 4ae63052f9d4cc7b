#include "worker/step_plan_builder.h"

#include <utility>

namespace hydra::worker {

void StepPlanBuilder::Add(std::span<const int> tokens, int start,
                          std::span<const int> block_table, bool want_logits) {
  auto* seq = plan_.add_sequences();
  seq->set_query_len(static_cast<int>(tokens.size()));
  seq->set_context_len(start + static_cast<int>(tokens.size()));
  seq->mutable_block_table()->Add(block_table.begin(), block_table.end());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int pos = start + static_cast<int>(i);
    plan_.add_token_ids(tokens[i]);
    plan_.add_positions(pos);
    plan_.add_slot_mapping(block_table[pos / block_size_] * block_size_ +
                           pos % block_size_);
  }
  if (want_logits) plan_.add_logits_rows(plan_.token_ids_size() - 1);
}

internal::StepPlan StepPlanBuilder::Take() {
  internal::StepPlan plan = std::move(plan_);
  plan_.Clear();
  return plan;
}

}  // namespace hydra::worker
