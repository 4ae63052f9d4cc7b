#include "scheduler/scheduler.h"

#include <algorithm>
#include <utility>

#include "scheduler/ngram_proposer.h"
#include "scheduler/prefill_chunks.h"

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

void Scheduler::Emit(Sequence* seq, int n, ScheduledStep& step,
                     std::vector<int> drafts) {
  const int bs = blocks_.block_size();
  const int d = static_cast<int>(drafts.size());
  internal::StepPlan& plan = step.plan;
  auto* slice = plan.add_sequences();
  slice->set_query_len(n + d);
  slice->set_context_len(seq->num_computed() + n + d);
  slice->mutable_block_table()->Add(seq->block_table().begin(),
                                    seq->block_table().end());
  const auto tokens = seq->tokens();
  for (int i = 0; i < n + d; ++i) {
    const int pos = seq->num_computed() + i;
    plan.add_token_ids(i < n ? tokens[pos] : drafts[i - n]);
    plan.add_positions(pos);
    plan.add_slot_mapping(seq->block_table()[pos / bs] * bs + pos % bs);
  }
  step.sequences.push_back(seq);
  step.num_tokens.push_back(n + d);
  // Logits only once every known token is computed: the end of a prompt (or
  // of a recompute after preemption), or a decode, whose drafts each need
  // theirs to be verified.
  if (seq->num_computed() + n == seq->num_tokens()) {
    for (int i = d; i >= 0; --i) {
      plan.add_logits_rows(plan.token_ids_size() - 1 - i);
    }
    step.sampled.push_back(seq);
    step.drafts.push_back(std::move(drafts));
  }
}

std::vector<int> Scheduler::ProposeDrafts(Sequence& seq, int budget,
                                          int reserve) {
  const SpeculativeConfig& spec = config_.speculative;
  // The step's last sampled token must fit the sequence too.
  const int room = seq.token_limit() - seq.num_tokens() - 1;
  const int k = std::min({spec.num_tokens, budget, room});
  if (k <= 0) return {};
  const int length = seq.draft_policy().DraftLength(k, draft_break_even_);
  if (length == 0) return {};
  std::vector<int> drafts =
      ProposeNgramDrafts(seq.tokens(), spec.ngram, length);
  // Blocks for drafts only where the decodes still to come keep one each:
  // a draft never costs another sequence its decode.
  const int bs = blocks_.block_size();
  const int held = static_cast<int>(seq.block_table().size());
  const int decode_end = seq.num_computed() + 1;
  const int spare = blocks_.num_available() - reserve -
                    std::max(0, BlocksFor(decode_end, bs) - held);
  const int have = std::max(held, BlocksFor(decode_end, bs));
  while (!drafts.empty() &&
         BlocksFor(decode_end + static_cast<int>(drafts.size()), bs) - have >
             spare) {
    drafts.pop_back();
  }
  return drafts;
}

// A draft costs one more query token and logits row in the step; accepted, it
// saves its sequence a share of a decode step (the step over its decodes). On a
// GPU the first is nearly free; on a CPU, where a step costs about its tokens,
// the break-even acceptance nears 1 as the batch grows.
double Scheduler::DraftBreakEven(std::span<Sequence* const> decodes) const {
  constexpr int64_t kMinObservations = 32;
  if (decodes.empty() || cost_model_.observations() < kMinObservations) {
    return 0;
  }
  StepShape plain;
  for (const Sequence* seq : decodes) {
    plain += DecodeShape(seq->num_computed(), 0);
  }
  const int64_t n = static_cast<int64_t>(decodes.size());
  // One more query token, at the decodes' mean context, with its row.
  StepShape with_draft = plain;
  with_draft +=
      {.tokens = 1, .key_reads = plain.key_reads / n + 1, .logits_rows = 1};
  const double step_ms = cost_model_.PredictMs(plain);
  const double draft_ms = cost_model_.PredictMs(with_draft) - step_ms;
  if (step_ms <= 0 || draft_ms <= 0) return 0;
  return std::min(1.0, draft_ms * n / step_ms);
}

void Scheduler::Preempt(Sequence* seq, ScheduledStep& step) {
  running_.erase(seq);
  blocks_.Free(*seq);
  seq->CountPreemption();
  seq->set_status(SequenceStatus::kWaiting);
  waiting_.insert(seq);  // keeps its arrival: first in line again
  ++preemptions_;
  ++preemptions_by_priority_[seq->priority()];
  ++step.num_preempted;
}

bool Scheduler::ReserveRunning(Sequence* seq, int n, ScheduledStep& step) {
  const int tokens = seq->num_computed() + n;
  while (!blocks_.CanAllocate(*seq, {}, tokens)) {
    // The victim: lowest priority, latest arrival, not already in this
    // step's plan (its slots are taken, or blocks are being loaded into it).
    Sequence* victim = nullptr;
    for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
      const bool loading =
          std::any_of(step.loading.begin(), step.loading.end(),
                      [&](const auto& l) { return l.seq == *it; });
      if (!loading && std::find(step.sequences.begin(), step.sequences.end(),
                                *it) == step.sequences.end()) {
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

int Scheduler::CachedPrefixIfFirstChunkFits(const Sequence& seq) const {
  const std::vector<int> prefix = blocks_.FindCachedPrefix(seq);
  const int cached =
      static_cast<int>(prefix.size() +
                       blocks_.FindStoredPrefix(seq, prefix).size()) *
      blocks_.block_size();
  const int first_chunk =
      std::min(seq.num_tokens() - cached, config_.min_prefill_chunk);
  return blocks_.CanAllocate(seq, prefix, cached + first_chunk) ? cached : -1;
}

void Scheduler::PreemptForPriority(ScheduledStep& step) {
  while (!waiting_.empty() && !running_.empty()) {
    Sequence* head = *waiting_.begin();
    Sequence* victim = *running_.rbegin();  // least important, latest
    if (victim->priority() <= head->priority()) return;
    const bool running_full =
        static_cast<int>(running_.size()) >= config_.max_running;
    if (!running_full && CachedPrefixIfFirstChunkFits(*head) >= 0) return;
    Preempt(victim, step);
  }
}

ScheduledStep Scheduler::Schedule() {
  ScheduledStep step;
  step.plan.set_step_id(next_step_++);
  blocks_.TakeTierTraffic(step.plan);
  PreemptForPriority(step);
  int budget = config_.max_batched_tokens;

  // 1: decodes of running sequences, one token each, and their drafts.
  std::vector<Sequence*> decodes;
  for (Sequence* seq : running_) {
    if (seq->decoding()) decodes.push_back(seq);
  }
  if (config_.speculative.num_tokens > 0) {
    draft_break_even_ = DraftBreakEven(decodes);
  }
  int decodes_left = static_cast<int>(decodes.size());
  for (Sequence* seq : decodes) {
    if (budget == 0) break;
    --decodes_left;
    if (seq->status() != SequenceStatus::kRunning) continue;  // preempted
    std::vector<int> drafts;
    if (config_.speculative.num_tokens > 0) {
      drafts = ProposeDrafts(*seq, budget - 1 - decodes_left, decodes_left);
    }
    const int n = 1 + static_cast<int>(drafts.size());
    if (!ReserveRunning(seq, n, step)) continue;
    step.shape += DecodeShape(seq->num_computed(), n - 1);
    step.decode_tokens += n;
    step.draft_tokens += n - 1;
    budget -= n;
    Emit(seq, 1, step, std::move(drafts));
  }

  // 2: prefills.
  SchedulePrefills(budget, step);
  step.predicted_ms = cost_model_.PredictMs(step.shape);
  return step;
}

void Scheduler::SchedulePrefills(int token_budget, ScheduledStep& step) {
  struct Candidate {
    Sequence* seq;
    int computed;  // in the cache, or (admissions) in cached prefix blocks
  };
  std::vector<Candidate> candidates;
  for (Sequence* seq : running_) {
    if (!seq->decoding()) candidates.push_back({seq, seq->num_computed()});
  }
  // Admissions in serve order, while prefill slots and running slots last
  // and the first chunk fits: a request that does not fit blocks those
  // behind it, so a large request is not starved by small ones.
  const int started = static_cast<int>(candidates.size());
  for (Sequence* seq : waiting_) {
    const int in_prefill = static_cast<int>(candidates.size());
    const int admitted = in_prefill - started;
    if (in_prefill >= config_.max_partial_prefills ||
        static_cast<int>(running_.size()) + admitted >= config_.max_running) {
      break;
    }
    const int cached = CachedPrefixIfFirstChunkFits(*seq);
    if (cached < 0) break;
    candidates.push_back({seq, cached});
  }
  if (candidates.empty()) return;

  // Priority first, then the fewest tokens left: a short prompt behind a
  // long one gets its first token without waiting for the long one.
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](const Candidate& a, const Candidate& b) {
                     if (a.seq->priority() != b.seq->priority()) {
                       return a.seq->priority() < b.seq->priority();
                     }
                     return a.seq->num_tokens() - a.computed <
                            b.seq->num_tokens() - b.computed;
                   });
  std::vector<PrefillCandidate> shapes;
  for (const Candidate& c : candidates) {
    shapes.push_back({c.computed, c.seq->num_tokens() - c.computed,
                      c.seq->status() == SequenceStatus::kRunning,
                      c.seq->priority()});
  }
  ChunkLimits limits;
  limits.max_tokens = token_budget;
  limits.min_chunk = config_.min_prefill_chunk;
  if (config_.max_step_ms > 0 && step.decode_tokens > 0) {
    limits.time_left_ms =
        config_.max_step_ms - cost_model_.PredictMs(step.shape);
    // The model is linear and fitted on the steps seen so far: beyond twice
    // the largest of them it would be guessing, so steps grow into new
    // sizes by doubling and the model learns each before it is trusted.
    const int64_t trusted = std::max<int64_t>(
        2 * cost_model_.max_observed_tokens(), 4 * config_.min_prefill_chunk);
    limits.max_tokens = static_cast<int>(std::min<int64_t>(
        token_budget, std::max<int64_t>(trusted - step.decode_tokens,
                                        config_.min_prefill_chunk)));
  }
  const std::vector<int> sizes = SizePrefillChunks(shapes, limits, cost_model_);

  // Once one admission fails for want of blocks, no later one is tried.
  bool admissions_blocked = false;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const int n = sizes[i];
    Sequence* seq = candidates[i].seq;
    if (n == 0) continue;
    if (shapes[i].started) {
      if (seq->status() != SequenceStatus::kRunning) continue;  // preempted
      if (!ReserveRunning(seq, n, step)) continue;
    } else {
      if (admissions_blocked || seq->status() != SequenceStatus::kWaiting) {
        continue;
      }
      // Looked up again: blocks taken for the chunks emitted before this
      // one may have evicted cached blocks of the first lookup.
      const std::vector<int> prefix = blocks_.FindCachedPrefix(*seq);
      const std::vector<StoredBlock> stored =
          blocks_.FindStoredPrefix(*seq, prefix);
      const int cached = static_cast<int>(prefix.size() + stored.size()) *
                         blocks_.block_size();
      std::vector<internal::KvLoad> loads;
      if (!blocks_.Admit(*seq, prefix, stored, cached + n, loads)) {
        admissions_blocked = true;
        continue;
      }
      waiting_.erase(seq);
      seq->set_status(SequenceStatus::kRunning);
      running_.insert(seq);
      if (!loads.empty()) {
        // Its chunk waits for the loads: computed from the next step on.
        for (const internal::KvLoad& load : loads) {
          *step.plan.add_kv_loads() = load;
        }
        step.loading.push_back(
            {seq, step.plan.kv_loads_size() - static_cast<int>(loads.size()),
             std::move(loads)});
        continue;
      }
    }
    step.shape += ChunkShape(seq->num_computed(), n);
    Emit(seq, n, step);
    step.prefill_tokens += n;
  }
}

void Scheduler::RecordStepTime(const ScheduledStep& step, double milliseconds) {
  if (!step.empty()) cost_model_.Observe(step.shape, milliseconds);
}

int Scheduler::num_prefilling() const {
  int n = 0;
  for (const Sequence* seq : running_) n += seq->decoding() ? 0 : 1;
  return n;
}

std::map<int, int> Scheduler::waiting_by_priority() const {
  std::map<int, int> out;
  for (const Sequence* seq : waiting_) ++out[seq->priority()];
  return out;
}

void Scheduler::OnStepDone(const ScheduledStep& step,
                           std::span<const int> failed_loads) {
  for (size_t i = 0; i < step.sequences.size(); ++i) {
    Sequence* seq = step.sequences[i];
    // A draft is not one of the sequence's tokens (yet): only the tokens it
    // has become computed, so no draft reaches the prefix cache.
    seq->set_num_computed(
        std::min(seq->num_computed() + step.num_tokens[i], seq->num_tokens()));
    blocks_.CommitFullBlocks(*seq);
  }
  for (const ScheduledStep::Loading& l : step.loading) {
    const int end = l.first_load + static_cast<int>(l.loads.size());
    std::vector<int> failed;
    for (int f : failed_loads) {
      if (f >= l.first_load && f < end) failed.push_back(f - l.first_load);
    }
    blocks_.FinishLoads(*l.seq, l.loads, failed);
  }
}

void Scheduler::AcceptDrafts(Sequence& seq, int proposed, int accepted) {
  seq.draft_policy().Record(proposed, accepted, draft_break_even_);
  seq.set_num_computed(seq.num_computed() + accepted);
  blocks_.CommitFullBlocks(seq);
  blocks_.Truncate(seq, seq.num_computed());
}

std::unique_ptr<Sequence> Scheduler::Finish(uint64_t id) {
  const auto it = all_.find(id);
  if (it == all_.end()) return nullptr;
  std::unique_ptr<Sequence> seq = std::move(it->second);
  all_.erase(it);
  waiting_.erase(seq.get());
  running_.erase(seq.get());
  blocks_.Free(*seq);
  seq->Finish();
  return seq;
}

}  // namespace hydra::scheduler
