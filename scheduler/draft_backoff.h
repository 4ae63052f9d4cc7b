// When a sequence stops profiting from drafts, stop drafting for it: every
// draft costs a query token in the forward pass whether or not it is
// accepted. Drafts are judged over windows of a few proposals; a window
// whose acceptance falls below a threshold pauses proposals for a number of
// the sequence's steps that doubles with each bad window in a row (up to a
// cap) and resets after a good one. So text that copies nothing soon costs
// about one proposal every kMaxPause steps, and text that starts copying
// again is noticed within that many steps.
#ifndef HYDRA_SCHEDULER_DRAFT_BACKOFF_H_
#define HYDRA_SCHEDULER_DRAFT_BACKOFF_H_

#include <cstdint>

namespace hydra::scheduler {

class DraftBackoff {
 public:
  // Proposals judged together.
  static constexpr int kWindow = 4;
  // Accepted / proposed below which a window is bad. A draft row costs
  // far less than a step (the weights are read once for all rows), so a
  // modest acceptance still pays.
  static constexpr double kMinAcceptance = 0.2;
  static constexpr int kMaxPause = 64;  // steps

  // Whether to propose drafts this step; a paused sequence counts one step
  // of its pause down.
  bool ShouldPropose();
  // The outcome of one proposal of `proposed` drafts, `accepted` of them
  // accepted.
  void Record(int proposed, int accepted);

  int64_t proposed() const { return proposed_; }
  int64_t accepted() const { return accepted_; }

 private:
  int window_proposals_ = 0;
  int window_proposed_ = 0;
  int window_accepted_ = 0;
  int pause_left_ = 0;
  int next_pause_ = 1;
  int64_t proposed_ = 0;
  int64_t accepted_ = 0;
};

}  // namespace hydra::scheduler

#endif  // HYDRA_SCHEDULER_DRAFT_BACKOFF_H_
