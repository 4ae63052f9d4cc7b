#include "scheduler/scheduler.h"

#include <algorithm>
#include <utility>

namespace hydra::scheduler {

Scheduler::Scheduler(const SchedulerConfig& config, BlockManager& blocks)
    : config_(config), blocks_(blocks) {}

Sequence* Scheduler::Add(std::unique_ptr<Sequence> seq) {
  Sequence* raw = seq.get();
  raw->set_arrival(next_arrival_++);
  raw->set_status(SequenceStatus::kWaiting);
  all_[raw->id()] = std::move(seq);
  waiting_.insert(raw);
  return raw;
}

Sequence* Scheduler::Find(uint64_t id) const {
  const auto it = all_.find(id);
  return it == all_.end() ? nullptr : it->second.get();
}

std::vector<const Sequence*> Scheduler::live() const {
  std::vector<const Sequence*> out;
  for (const auto& [id, seq] : all_) out.push_back(seq.get());
  return out;
}

void Scheduler::Emit(Sequence* seq, int n, ScheduledStep& step) {
  const int bs = blocks_.block_size();
  internal::StepPlan& plan = step.plan;
  auto* slice = plan.add_sequences();
  slice->set_query_len(n);
  slice->set_context_len(seq->num_computed() + n);
  slice->mutable_block_table()->Add(seq->block_table().begin(),
                                    seq->block_table().end());
  const auto tokens = seq->tokens();
  for (int i = 0; i < n; ++i) {
    const int pos = seq->num_computed() + i;
    plan.add_token_ids(tokens[pos]);
    plan.add_positions(pos);
    plan.add_slot_mapping(seq->block_table()[pos / bs] * bs + pos % bs);
  }
  step.sequences.push_back(seq);
  step.num_tokens.push_back(n);
  // Logits only once every known token is computed: the end of a prompt (or
  // of a recompute after preemption), or a decode.
  if (seq->num_computed() + n == seq->num_tokens()) {
    plan.add_logits_rows(plan.token_ids_size() - 1);
    step.sampled.push_back(seq);
  }
}

void Scheduler::Preempt(Sequence* seq, ScheduledStep& step) {
  running_.erase(seq);
  blocks_.Free(*seq);
  seq->CountPreemption();
  seq->set_status(SequenceStatus::kWaiting);
  waiting_.insert(seq);  // keeps its arrival: first in line again
  ++preemptions_;
  ++step.num_preempted;
}

bool Scheduler::ReserveRunning(Sequence* seq, int n, ScheduledStep& step) {
  const int tokens = seq->num_computed() + n;
  while (!blocks_.CanAllocate(*seq, {}, tokens)) {
    // The victim: lowest priority, latest arrival, not already in this
    // step's plan (its slots are taken).
    Sequence* victim = nullptr;
    for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
      if (std::find(step.sequences.begin(), step.sequences.end(), *it) ==
          step.sequences.end()) {
        victim = *it;
        break;
      }
    }
    if (victim == nullptr) return false;  // nothing left to free; try next step
    Preempt(victim, step);
    if (victim == seq) return false;
  }
  blocks_.Grow(*seq, tokens);
  // A block shared with another sequence (after a fork) is copied before it
  // is written.
  for (int pos = seq->num_computed(); pos < tokens; ++pos) {
    if (pos % blocks_.block_size() != 0 && pos != seq->num_computed()) continue;
    bool ok = true;
    if (auto copy = blocks_.PrepareWrite(*seq, pos, &ok)) {
      auto* c = step.plan.add_block_copies();
      c->set_src(copy->src);
      c->set_dst(copy->dst);
    }
    if (!ok) {
      Preempt(seq, step);
      return false;
    }
  }
  return true;
}

ScheduledStep Scheduler::Schedule() {
  ScheduledStep step;
  step.plan.set_step_id(next_step_++);
  int budget = config_.max_batched_tokens;

  // 1 and 2: running sequences, decodes before chunks of prefill.
  std::vector<Sequence*> decodes, prefills;
  for (Sequence* seq : running_)
    (seq->decoding() ? decodes : prefills).push_back(seq);
  for (auto* group : {&decodes, &prefills}) {
    for (Sequence* seq : *group) {
      if (budget == 0) break;
      if (seq->status() != SequenceStatus::kRunning)
        continue;  // preempted meanwhile
      const int n = std::min(seq->num_uncomputed(), budget);
      if (!ReserveRunning(seq, n, step)) continue;
      Emit(seq, n, step);
      budget -= n;
    }
  }

  // 3: admissions, strictly in serve order: a sequence that does not fit
  // blocks those behind it, so a large request is not starved by small ones.
  while (budget > 0 && !waiting_.empty() &&
         static_cast<int>(running_.size()) < config_.max_running) {
    Sequence* seq = *waiting_.begin();
    const std::vector<int> prefix = blocks_.FindCachedPrefix(*seq);
    const int cached = static_cast<int>(prefix.size()) * blocks_.block_size();
    const int n = std::min(seq->num_tokens() - cached, budget);
    if (!blocks_.Admit(*seq, prefix, cached + n)) break;
    waiting_.erase(waiting_.begin());
    seq->set_status(SequenceStatus::kRunning);
    running_.insert(seq);
    Emit(seq, n, step);
    budget -= n;
  }
  return step;
}

void Scheduler::OnStepDone(const ScheduledStep& step) {
  for (size_t i = 0; i < step.sequences.size(); ++i) {
    Sequence* seq = step.sequences[i];
    seq->set_num_computed(seq->num_computed() + step.num_tokens[i]);
    blocks_.CommitFullBlocks(*seq);
  }
}

std::unique_ptr<Sequence> Scheduler::Finish(uint64_t id, FinishReason reason) {
  const auto it = all_.find(id);
  if (it == all_.end()) return nullptr;
  std::unique_ptr<Sequence> seq = std::move(it->second);
  all_.erase(it);
  waiting_.erase(seq.get());
  running_.erase(seq.get());
  blocks_.Free(*seq);
  seq->Finish(reason);
  return seq;
}

}  // namespace hydra::scheduler
