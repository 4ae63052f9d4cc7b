#include "scheduler/sequence.h"

#include <utility>

namespace hydra::scheduler {

Sequence::Sequence(uint64_t id, std::vector<int> prompt, int priority,
                   Retention retention)
    : id_(id),
      priority_(priority),
      retention_(retention),
      tokens_(std::move(prompt)),
      prompt_len_(static_cast<int>(tokens_.size())) {}

}  // namespace hydra::scheduler
