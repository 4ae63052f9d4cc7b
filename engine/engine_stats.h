// What the engine reports about itself: counters read from any thread
// (EngineStats) and one report per step (StepReport), for metrics.
#ifndef HYDRA_ENGINE_ENGINE_STATS_H_
#define HYDRA_ENGINE_ENGINE_STATS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "scheduler/step_cost_model.h"

namespace hydra::engine {

// One KV tier below the pool (host memory or disk), on each rank.
struct KvTierStats {
  int64_t queries = 0;        // prompt tokens looked up in the tier
  int64_t hits = 0;           // of those, tokens it served
  int64_t load_failures = 0;  // blocks whose load failed (then recomputed)
  int64_t stored_bytes = 0;
  int64_t capacity_bytes = 0;
};

struct EngineStats {
  int running = 0;
  int waiting = 0;
  int kv_used = 0;
  int kv_free = 0;
  int kv_cached = 0;
  int kv_pinned = 0;  // pinned blocks, held or cached (within kv_used/cached)
  int kv_total = 0;
  int64_t steps = 0;
  int64_t preemptions = 0;
  int64_t prefix_queries = 0;  // tokens
  int64_t prefix_hits = 0;     // tokens
  int64_t prompt_tokens_computed = 0;
  int64_t generation_tokens = 0;
  // Speculative decoding: draft tokens proposed and accepted; tokens
  // emitted by, and steps of, sequences that were decoding (with or without
  // drafts). Emitted = accepted + decoding steps, less the steps that ended
  // a request without a token (an end-of-sequence token is not emitted).
  int64_t spec_proposed_tokens = 0;
  int64_t spec_accepted_tokens = 0;
  int64_t decode_tokens_emitted = 0;
  int64_t decoding_sequence_steps = 0;
  int peak_kv_used = 0;
  // Allocated slots not holding a token, at peak.
  int64_t peak_kv_waste_slots = 0;
  int partial_prefills = 0;  // running sequences still in prefill
  std::map<int, int> waiting_by_priority;
  std::map<int, int64_t> preemptions_by_priority;
  scheduler::StepCostModel::Coefficients step_cost;  // the fitted model
  // The enabled lower tiers, by name ("host", "disk").
  std::map<std::string, KvTierStats> kv_tiers;
};

struct StepReport {
  absl::Duration duration{};  // scheduling to emitted tokens
  int prefill_tokens = 0;
  int decode_tokens = 0;       // draft tokens included
  absl::Duration predicted{};  // the cost model's forecast
  // Time in tensor-parallel collectives (zero in a world of one).
  absl::Duration collective_time{};
  // Time spent loading blocks from each lower tier, by name ("host",
  // "disk"); only tiers the step loaded from.
  std::map<std::string, absl::Duration> kv_load_time{};
  int draft_tokens = 0;  // of decode_tokens
  // Tokens emitted by each sequence that was decoding (had output before
  // the step): 1 without speculation, up to 1 + drafts with it.
  std::vector<int> tokens_per_decode{};
};
using StepObserver = std::function<void(const StepReport&)>;

}  // namespace hydra::engine

#endif  // HYDRA_ENGINE_ENGINE_STATS_H_
