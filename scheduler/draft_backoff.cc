#include "scheduler/draft_backoff.h"

#include <algorithm>

namespace hydra::scheduler {

bool DraftBackoff::ShouldPropose() {
  if (pause_left_ == 0) return true;
  --pause_left_;
  return false;
}

void DraftBackoff::Record(int proposed, int accepted) {
  proposed_ += proposed;
  accepted_ += accepted;
  window_proposed_ += proposed;
  window_accepted_ += accepted;
  if (++window_proposals_ < kWindow) return;
  if (window_accepted_ < kMinAcceptance * window_proposed_) {
    pause_left_ = next_pause_;
    next_pause_ = std::min(2 * next_pause_, kMaxPause);
  } else {
    next_pause_ = 1;
  }
  window_proposals_ = window_proposed_ = window_accepted_ = 0;
}

}  // namespace hydra::scheduler
