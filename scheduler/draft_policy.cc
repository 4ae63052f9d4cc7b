#include "scheduler/draft_policy.h"

#include <algorithm>

namespace hydra::scheduler {

int DraftPolicy::DraftLength(int max_tokens, double break_even) {
  if (pause_left_ > 0) {
    --pause_left_;
    return 0;
  }
  const bool costly = break_even > kCostlyBreakEven;
  if (costly && last_ == Outcome::kRejected && ++costly_skipped_ < kMaxPause) {
    return 0;
  }
  costly_skipped_ = 0;
  return std::min(max_tokens, costly && last_ != Outcome::kAcceptedWhole
                                  ? 1
                                  : next_length_);
}

void DraftPolicy::Record(int proposed, int accepted, double break_even) {
  proposed_ += proposed;
  accepted_ += accepted;
  last_ = accepted < proposed ? Outcome::kRejected
          : proposed > 0      ? Outcome::kAcceptedWhole
                              : Outcome::kNone;
  // Doubling cannot overflow: the length is capped by the caller's K (16).
  next_length_ =
      accepted == proposed ? 2 * std::max(1, proposed) : accepted + 1;
  window_proposed_ += proposed;
  window_accepted_ += accepted;
  if (++window_proposals_ < kWindow) return;
  if (window_accepted_ <
      std::max(kMinAcceptance, break_even) * window_proposed_) {
    pause_left_ = next_pause_;
    next_pause_ = std::min(2 * next_pause_, kMaxPause);
  } else {
    next_pause_ = 1;
  }
  window_proposals_ = window_proposed_ = window_accepted_ = 0;
}

}  // namespace hydra::scheduler
