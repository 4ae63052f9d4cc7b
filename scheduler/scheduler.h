// Continuous batching: every step, decide which sequences run and which
// tokens of theirs are computed, within a token budget and a cap on running
// sequences, over the BlockManager's pool. Policy:
//  1. decodes of running sequences first (one token each), so a long prompt
//     never stalls streams already producing tokens;
//  2. then running sequences still prefilling, in chunks that fill what is
//     left of the budget (chunked prefill);
//  3. then waiting sequences (priority, then arrival), admitted only while
//     blocks are available, reusing cached prefix blocks.
// When a running sequence cannot get a block, the lowest-priority, latest
// arrival among the running ones is preempted by recompute: its blocks are
// freed and it waits again with its prompt and generated tokens.
#ifndef HYDRA_SCHEDULER_SCHEDULER_H_
#define HYDRA_SCHEDULER_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "hydra/internal/step.pb.h"
#include "scheduler/block_manager.h"
#include "scheduler/sequence.h"

namespace hydra::scheduler {

struct SchedulerConfig {
  int max_batched_tokens = 2048;  // tokens computed per step, all sequences
  int max_running = 256;          // sequences in the running set
};

struct ScheduledStep {
  internal::StepPlan plan;
  // Every sequence in the plan and how many of its tokens it computes.
  std::vector<Sequence*> sequences;
  std::vector<int> num_tokens;
  // The sequences whose logits come back, in the plan's logits_rows order.
  std::vector<Sequence*> sampled;
  int num_preempted = 0;
  bool empty() const { return sequences.empty(); }
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, BlockManager& blocks);

  // Queues a new sequence; the scheduler owns it until it finishes.
  Sequence* Add(std::unique_ptr<Sequence> seq);
  ScheduledStep Schedule();
  // After the worker ran `step`: the computed tokens are in the cache.
  void OnStepDone(const ScheduledStep& step);
  // Ends a sequence (finished, cancelled, failed), frees its blocks and
  // hands it back to the caller.
  std::unique_ptr<Sequence> Finish(uint64_t id, FinishReason reason);

  Sequence* Find(uint64_t id) const;
  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  int num_running() const { return static_cast<int>(running_.size()); }
  bool has_work() const { return !all_.empty(); }
  int64_t preemptions() const { return preemptions_; }
  std::vector<const Sequence*> live() const;

 private:
  // Serve order: lower priority value first, then earlier arrival.
  struct ServeOrder {
    bool operator()(const Sequence* a, const Sequence* b) const {
      if (a->priority() != b->priority()) return a->priority() < b->priority();
      return a->arrival() < b->arrival();
    }
  };

  // Adds `n` tokens of `seq` (already holding the blocks) to the plan.
  void Emit(Sequence* seq, int n, ScheduledStep& step);
  // Gives `seq` blocks for `n` more tokens, preempting others (or `seq`
  // itself) as needed. False when `seq` was preempted.
  bool ReserveRunning(Sequence* seq, int n, ScheduledStep& step);
  void Preempt(Sequence* seq, ScheduledStep& step);

  SchedulerConfig config_;
  BlockManager& blocks_;
  std::map<uint64_t, std::unique_ptr<Sequence>> all_;
  std::set<Sequence*, ServeOrder> waiting_;
  std::set<Sequence*, ServeOrder> running_;
  uint64_t next_arrival_ = 0;
  uint64_t next_step_ = 0;
  int64_t preemptions_ = 0;
};

}  // namespace hydra::scheduler

#endif  // HYDRA_SCHEDULER_SCHEDULER_H_
