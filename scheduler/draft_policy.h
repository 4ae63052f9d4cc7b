// How many draft tokens a sequence proposes, from how its drafts fared:
// every draft costs a query token (and a logits row) in the forward pass
// whether or not it is accepted, and on a CPU that is a fifth of a one-token
// step on stories15M (docs/benchmarks.md), so drafts must be earned.
//  * Length: after a proposal whose drafts were all accepted, the next may
//    be twice as long (up to the configured K); after a rejection, one
//    longer than the run that was accepted. A sequence that copies long
//    runs drafts K at a time, one that matches now and then drafts one or
//    two tokens, where a rejection costs little.
//  * Backoff: proposals are also judged over windows of a few; a window
//    whose acceptance falls below a threshold (at least kMinAcceptance, and
//    at least the break-even acceptance the scheduler derives from its step
//    cost model: in a large batch on a CPU a draft costs nearly what a
//    token's share of the step is worth) pauses proposals for a number
//    of the sequence's steps that doubles with each bad window in a row (up
//    to a cap) and resets after a good one. So text that copies nothing soon
//    costs about one short proposal every kMaxPause steps, and text that
//    starts copying again is noticed within that many steps.
//  * Costly steps: where a draft needs more than kCostlyBreakEven to pay
//    (the scheduler says so), only a sequence whose last proposal was
//    accepted whole, one that is copying right now, proposes at length; the
//    others probe with a single draft, again once every kMaxPause steps
//    after a rejection. Full-length first proposals cost a batch of 16 on
//    stories15M 5-10% of its step time where nothing was copied.
#ifndef HYDRA_SCHEDULER_DRAFT_POLICY_H_
#define HYDRA_SCHEDULER_DRAFT_POLICY_H_

#include <cstdint>

namespace hydra::scheduler {

class DraftPolicy {
 public:
  // Proposals judged together.
  static constexpr int kWindow = 4;
  // Accepted / proposed below which a window is always bad: about where
  // one draft per step stops paying for a lone sequence on a CPU.
  static constexpr double kMinAcceptance = 0.25;
  static constexpr int kMaxPause = 64;  // steps
  static constexpr double kCostlyBreakEven = 0.5;

  // How many drafts (at most `max_tokens`) to propose this step, in which
  // drafts need an acceptance of `break_even` to pay; 0 while paused, which
  // counts one step of the pause down.
  int DraftLength(int max_tokens, double break_even = 0);
  // The outcome of one proposal of `proposed` drafts, `accepted` of them
  // accepted, in a step where drafts needed an acceptance of `break_even`
  // to pay.
  void Record(int proposed, int accepted, double break_even = 0);

  int64_t proposed() const { return proposed_; }
  int64_t accepted() const { return accepted_; }

 private:
  int next_length_ = 1 << 30;  // the first proposal may be as long as asked
  // How the last proposal fared; kAcceptedWhole: the sequence is copying.
  enum class Outcome { kNone, kRejected, kAcceptedWhole };
  Outcome last_ = Outcome::kNone;
  int costly_skipped_ = 0;  // steps without a proposal since one was rejected
  int window_proposals_ = 0;
  int window_proposed_ = 0;
  int window_accepted_ = 0;
  int pause_left_ = 0;
  int next_pause_ = 1;
  int64_t proposed_ = 0;
  int64_t accepted_ = 0;
};

}  // namespace hydra::scheduler

#endif  // HYDRA_SCHEDULER_DRAFT_POLICY_H_
