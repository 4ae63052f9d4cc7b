// One request's tokens and its place in the scheduler's life cycle. How its
// tokens are sampled and when it stops are the engine's business
// (engine/request_state.h), not the scheduler's.
#ifndef HYDRA_SCHEDULER_SEQUENCE_H_
#define HYDRA_SCHEDULER_SEQUENCE_H_

#include <cstdint>
#include <span>
#include <vector>

#include "scheduler/draft_policy.h"

namespace hydra::scheduler {

enum class SequenceStatus { kWaiting, kRunning, kFinished };

// How long a sequence's full blocks stay in the prefix cache once no one
// holds them: kPinned blocks (a document, a system prompt warmed on
// purpose) are evicted after every kNormal one, and never while the pinned
// blocks fit the pool's pinned budget.
enum class Retention { kNormal, kPinned };

class Sequence {
 public:
  Sequence(uint64_t id, std::vector<int> prompt, int priority,
           Retention retention = Retention::kNormal);

  uint64_t id() const { return id_; }
  // Lower values are served first (as in vLLM); ties go to earlier arrivals.
  int priority() const { return priority_; }
  // Position in the order of arrival, set by the scheduler.
  uint64_t arrival() const { return arrival_; }
  Retention retention() const { return retention_; }
  void set_arrival(uint64_t arrival) { arrival_ = arrival; }

  // The prompt followed by every generated token.
  std::span<const int> tokens() const { return tokens_; }
  std::span<const int> prompt() const {
    return std::span(tokens_).first(prompt_len_);
  }
  std::span<const int> output() const {
    return std::span(tokens_).subspan(prompt_len_);
  }
  int num_tokens() const { return static_cast<int>(tokens_.size()); }
  int prompt_len() const { return prompt_len_; }
  int num_output() const { return num_tokens() - prompt_len_; }
  void AppendToken(int token_id) { tokens_.push_back(token_id); }

  // Tokens whose K/V are in the cache; the rest must be computed (all but
  // one while prefilling, exactly one when decoding).
  int num_computed() const { return num_computed_; }
  void set_num_computed(int n) { num_computed_ = n; }
  int num_uncomputed() const { return num_tokens() - num_computed_; }
  bool decoding() const {
    return num_computed_ >= prompt_len_ && num_uncomputed() == 1;
  }

  // The most tokens the sequence may ever hold (prompt + max_tokens, within
  // max_model_len): draft tokens never reach past it.
  int token_limit() const { return token_limit_; }
  void set_token_limit(int n) { token_limit_ = n; }
  // How many draft tokens it proposes (speculative decoding).
  DraftPolicy& draft_policy() { return draft_policy_; }

  // Prompt tokens served from the prefix cache at (first) admission.
  int num_cached_prompt() const { return num_cached_prompt_; }
  void set_num_cached_prompt(int n) { num_cached_prompt_ = n; }

  std::vector<int>& block_table() { return block_table_; }
  const std::vector<int>& block_table() const { return block_table_; }
  // Hash chain of the full blocks already registered in the prefix cache.
  std::vector<uint64_t>& block_hashes() { return block_hashes_; }
  const std::vector<uint64_t>& block_hashes() const { return block_hashes_; }

  SequenceStatus status() const { return status_; }
  void set_status(SequenceStatus s) { status_ = s; }
  void Finish() { status_ = SequenceStatus::kFinished; }
  int preemptions() const { return preemptions_; }
  void CountPreemption() { ++preemptions_; }

 private:
  uint64_t id_;
  int priority_;
  Retention retention_;
  uint64_t arrival_ = 0;
  std::vector<int> tokens_;
  int prompt_len_;
  int num_computed_ = 0;
  int num_cached_prompt_ = 0;
  int token_limit_ = 1 << 30;
  DraftPolicy draft_policy_;
  std::vector<int> block_table_;
  std::vector<uint64_t> block_hashes_;
  SequenceStatus status_ = SequenceStatus::kWaiting;
  int preemptions_ = 0;
};

}  // namespace hydra::scheduler

#endif  // HYDRA_SCHEDULER_SEQUENCE_H_
