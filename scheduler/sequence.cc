#include "scheduler/sequence.h"

#include <utility>

namespace hydra::scheduler {

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kDeadline:
      return "deadline";
    case FinishReason::kError:
      return "error";
  }
  return "unknown";
}

Sequence::Sequence(uint64_t id, std::vector<int> prompt,
                   SamplingParams sampling, StoppingCriteria stopping,
                   int priority)
    : id_(id),
      priority_(priority),
      sampling_(std::move(sampling)),
      stopping_(std::move(stopping)),
      tokens_(std::move(prompt)),
      prompt_len_(static_cast<int>(tokens_.size())) {}

}  // namespace hydra::scheduler
