// Continuous batching: every step, decide which sequences run and which
// tokens of theirs are computed, within a token budget, an optional
// step-time budget and a cap on running sequences, over the BlockManager's
// pool. Policy:
//  0. a waiting request more important (lower priority value) than running
//     work that stands in its way (the running set or the KV pool is full)
//     preempts the least important running sequence;
//  1. decodes of running sequences first (one token each), never skipped, so
//     a long prompt never stalls streams already producing tokens; with
//     speculation on, a decode also carries the draft tokens that prompt
//     lookup proposes (ngram_proposer.h), verified in the same pass, as far
//     as the token budget and the free blocks allow without skipping or
//     preempting any decode;
//  2. then up to max_partial_prefills sequences in prefill at once: those
//     already prefilling and waiting ones admitted now (priority, then
//     arrival, reusing cached prefix blocks), in chunks sized by
//     SizePrefillChunks. With decodes in the step and --max_step_ms set, the
//     chunks fill only what the fitted StepCostModel predicts is left of the
//     step-time budget; with nothing decoding, nobody waits on the step and
//     chunks fill the token budget.
// An admission whose prefix continues below the pool (a host or disk KV
// tier, BlockManager) has those blocks loaded by the step's plan and its
// first chunk computed from the next step on.
// When a running sequence cannot get a block, the lowest-priority, latest
// arrival among the running ones is preempted by recompute: its blocks are
// freed and it waits again with its prompt and generated tokens.
#ifndef HYDRA_SCHEDULER_SCHEDULER_H_
#define HYDRA_SCHEDULER_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <vector>

#include "hydra/internal/step.pb.h"
#include "scheduler/block_manager.h"
#include "scheduler/sequence.h"
#include "scheduler/speculative_config.h"
#include "scheduler/step_cost_model.h"

namespace hydra::scheduler {

struct SchedulerConfig {
  int max_batched_tokens = 2048;  // tokens computed per step, all sequences
  int max_running = 256;          // sequences in the running set
  // Predicted duration a step with decodes in it may take; 0: no time
  // budget, only max_batched_tokens.
  double max_step_ms = 0;
  int max_partial_prefills = 8;  // sequences in prefill at once
  // Tokens every started prefill computes per step even when the time
  // budget is spent: a long prompt always moves. Small, because on a small
  // CPU a token of a 0.5B model costs ~7 ms: 16 already take ~110 ms.
  int min_prefill_chunk = 16;
  SpeculativeConfig speculative{};  // off by default
};

struct ScheduledStep {
  internal::StepPlan plan;
  // Every sequence in the plan and how many of its tokens it computes.
  std::vector<Sequence*> sequences;
  std::vector<int> num_tokens;
  // The sequences whose logits come back, in the plan's logits_rows order.
  std::vector<Sequence*> sampled;
  // For each of `sampled`, the draft tokens it carries (usually none). A
  // sequence with d drafts has 1 + d logits rows: its last token's, then
  // each draft's.
  std::vector<std::vector<int>> drafts;
  // Admissions whose prefix comes (partly) from a lower tier: the loads
  // run in this step, their first tokens are computed in the next one.
  struct Loading {
    Sequence* seq;
    int first_load;  // index of loads[0] in plan.kv_loads
    std::vector<internal::KvLoad> loads;
  };
  std::vector<Loading> loading;
  int num_preempted = 0;
  int prefill_tokens = 0;  // prompt (or recompute) tokens
  int decode_tokens = 0;   // draft tokens included
  int draft_tokens = 0;
  StepShape shape;          // what the cost model is told afterwards
  double predicted_ms = 0;  // the cost model's forecast of the step
  bool empty() const {
    return sequences.empty() && plan.kv_saves().empty() &&
           plan.kv_loads().empty() && plan.kv_drops().empty();
  }
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, BlockManager& blocks);

  // Queues a new sequence; the scheduler owns it until it finishes.
  Sequence* Add(std::unique_ptr<Sequence> seq);
  ScheduledStep Schedule();
  // After the worker ran `step`: the computed tokens are in the cache, and
  // its kv_loads arrived but for those at `failed_loads` (indices). Draft
  // tokens are not computed yet: AcceptDrafts says which were.
  void OnStepDone(const ScheduledStep& step,
                  std::span<const int> failed_loads = {});
  // After the engine verified the `proposed` drafts of `seq` in the last
  // step and appended the tokens it sampled: the first `accepted` drafts
  // become computed (and their full blocks cached), the blocks taken for
  // the rejected ones are released.
  void AcceptDrafts(Sequence& seq, int proposed, int accepted);
  // Whether a step is owed only for lower-tier traffic (saves, drops).
  bool has_tier_traffic() const { return blocks_.has_tier_traffic(); }
  // How long `step` took, end to end (scheduling to emitted tokens): one
  // observation for the cost model.
  void RecordStepTime(const ScheduledStep& step, double milliseconds);
  // Ends a sequence (for whatever reason: the engine knows why), frees its
  // blocks and hands it back to the caller.
  std::unique_ptr<Sequence> Finish(uint64_t id);

  Sequence* Find(uint64_t id) const;
  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  int num_running() const { return static_cast<int>(running_.size()); }
  bool has_work() const { return !all_.empty(); }
  int64_t preemptions() const { return preemptions_; }
  // Preemptions so far by the priority of the preempted sequence.
  const std::map<int, int64_t>& preemptions_by_priority() const {
    return preemptions_by_priority_;
  }
  std::map<int, int> waiting_by_priority() const;
  // Running sequences whose prompt (or recompute) is not yet computed.
  int num_prefilling() const;
  const StepCostModel& cost_model() const { return cost_model_; }
  // The acceptance at which a draft pays for itself in a step of these
  // decodes (0 while the cost model has seen too few steps).
  double DraftBreakEven(std::span<Sequence* const> decodes) const;
  const SchedulerConfig& config() const { return config_; }
  std::vector<const Sequence*> live() const;

 private:
  // Serve order: lower priority value first, then earlier arrival.
  struct ServeOrder {
    bool operator()(const Sequence* a, const Sequence* b) const {
      if (a->priority() != b->priority()) return a->priority() < b->priority();
      return a->arrival() < b->arrival();
    }
  };

  // Adds `n` tokens of `seq`, then `drafts`, to the plan (`seq` already
  // holds their blocks).
  void Emit(Sequence* seq, int n, ScheduledStep& step,
            std::vector<int> drafts = {});
  // The drafts a decode of `seq` carries: at most `budget` tokens, within
  // blocks that leaves `reserve` blocks for the decodes after it.
  std::vector<int> ProposeDrafts(Sequence& seq, int budget, int reserve);

  // Gives `seq` blocks for `n` more tokens, preempting others (or `seq`
  // itself) as needed. False when `seq` was preempted.
  bool ReserveRunning(Sequence* seq, int n, ScheduledStep& step);
  void Preempt(Sequence* seq, ScheduledStep& step);
  // The tokens of `seq` found in cached prefix blocks (of the pool and of
  // the lower tiers) if its first chunk (min_prefill_chunk tokens) fits the
  // pool with them, else -1.
  int CachedPrefixIfFirstChunkFits(const Sequence& seq) const;
  // Step 0 of the policy.
  void PreemptForPriority(ScheduledStep& step);
  // Step 2 of the policy.
  void SchedulePrefills(int token_budget, ScheduledStep& step);

  SchedulerConfig config_;
  BlockManager& blocks_;
  std::map<uint64_t, std::unique_ptr<Sequence>> all_;
  std::set<Sequence*, ServeOrder> waiting_;
  std::set<Sequence*, ServeOrder> running_;
  uint64_t next_arrival_ = 0;
  uint64_t next_step_ = 0;
  int64_t preemptions_ = 0;
  double draft_break_even_ = 0;  // of the last step scheduled
  std::map<int, int64_t> preemptions_by_priority_;
  StepCostModel cost_model_;
};

}  // namespace hydra::scheduler

#endif  // HYDRA_SCHEDULER_SCHEDULER_H_
