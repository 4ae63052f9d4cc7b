#include "engine/engine.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"

namespace hydra::engine {

using scheduler::Sequence;

namespace {

std::string TierName(internal::KvTier tier) {
  return tier == internal::KV_TIER_HOST ? "host" : "disk";
}

}  // namespace

Engine::Engine(const EngineConfig& config,
               std::unique_ptr<worker::StepRunner> runner,
               std::unique_ptr<model::Tokenizer> tokenizer)
    : config_(config),
      runner_(std::move(runner)),
      tokenizer_(std::move(tokenizer)),
      blocks_(config.num_blocks, config.block_size, config.enable_prefix_cache,
              config.max_pinned_blocks),
      scheduler_(config.scheduling, blocks_),
      processor_(runner_->config(),
                 config.max_model_len > 0
                     ? config.max_model_len
                     : runner_->config().max_position_embeddings) {
  if (config_.max_model_len <= 0) {
    config_.max_model_len = runner_->config().max_position_embeddings;
  }
  if (const worker::KvTierStore* tiers = runner_->kv_tiers();
      tiers != nullptr && config_.enable_prefix_cache) {
    blocks_.EnableTiers(tiers->host_capacity_blocks(),
                        tiers->disk_capacity_blocks());
    for (const worker::KvBlockFileInfo& block : tiers->DiskInventory()) {
      blocks_.RecordStored(internal::KV_TIER_DISK, block.hash,
                           block.parent_hash, block.tokens);
    }
  }
  UpdateStats();
  thread_ = std::thread([this] { Loop(); });
}

Engine::~Engine() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
  // Tensor-parallel workers leave their loop with the engine (unless the
  // world is broken, when nobody is listening).
  if (!broken()) runner_->ShutdownWorkers().IgnoreError();
}

absl::StatusOr<uint64_t> Engine::Submit(EngineRequest request,
                                        OutputCallback on_output) {
  const model::ModelConfig& model = runner_->config();
  const int prompt_len = static_cast<int>(request.prompt_ids.size());
  if (prompt_len == 0) {
    return absl::InvalidArgumentError("prompt: must not be empty");
  }
  // At least one token must be left to generate.
  if (prompt_len >= config_.max_model_len) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt: ", prompt_len, " tokens leave no room in the context of ",
        config_.max_model_len, " tokens (max_model_len)"));
  }
  for (size_t i = 0; i < request.prompt_ids.size(); ++i) {
    const int id = request.prompt_ids[i];
    if (id < 0 || id >= model.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt_token_ids[", i, "]: ", id, " is outside the vocabulary [0, ",
          model.vocab_size, ")"));
    }
  }
  if (request.stopping.max_tokens <= 0 && !request.prefill_only) {
    return absl::InvalidArgumentError("max_tokens: must be at least 1");
  }
  if (!request.seed_set) request.sampling.seed = std::random_device{}();
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the engine is shutting down");
  if (broken_) {
    return absl::UnavailableError(
        "a tensor-parallel peer failed; the server is stopping");
  }
  const int waiting = stats_.waiting + static_cast<int>(inbox_.size());
  if (waiting >= config_.max_waiting) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the queue is full: ", waiting, " requests are waiting (max_waiting = ",
        config_.max_waiting, "); retry later"));
  }
  const uint64_t id = next_id_++;
  const int token_limit =
      request.prefill_only
          ? prompt_len
          : static_cast<int>(std::min<int64_t>(
                int64_t{prompt_len} + request.stopping.max_tokens,
                config_.max_model_len));
  auto req = std::make_unique<RequestState>(id, std::move(request), *tokenizer_,
                                            std::move(on_output));
  req->sequence->set_token_limit(token_limit);
  req->times.arrival = absl::Now();
  inbox_.push_back(std::move(req));
  return id;
}

void Engine::Cancel(uint64_t request_id, FinishReason reason) {
  absl::MutexLock lock(&mu_);
  cancels_.emplace_back(request_id, reason);
}

void Engine::SetFatalErrorHandler(
    std::function<void(const absl::Status&)> handler) {
  absl::MutexLock lock(&mu_);
  fatal_handler_ = std::move(handler);
}

void Engine::SetStepObserver(StepObserver observer) {
  absl::MutexLock lock(&mu_);
  step_observer_ = std::move(observer);
}

EngineStats Engine::stats() const {
  absl::MutexLock lock(&mu_);
  EngineStats s = stats_;
  s.waiting += static_cast<int>(inbox_.size());
  return s;
}

void Engine::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto has_input = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !inbox_.empty() || !cancels_.empty();
      };
      if (requests_.empty() && !scheduler_.has_tier_traffic()) {
        mu_.Await(absl::Condition(&has_input));
      }
      if (stopping_) break;
    }
    DrainInbox();
    const absl::Time now = absl::Now();
    std::vector<uint64_t> expired;
    for (const auto& [id, req] : requests_) {
      if (req->deadline <= now) expired.push_back(id);
    }
    for (uint64_t id : expired) FinishRequest(id, FinishReason::kDeadline);
    if (scheduler_.has_work() || scheduler_.has_tier_traffic()) Step();
    UpdateStats();
  }
  DrainInbox();
  std::vector<uint64_t> left;
  for (const auto& [id, req] : requests_) left.push_back(id);
  for (uint64_t id : left) FinishRequest(id, FinishReason::kCancelled);
  // Blocks committed by the last steps still owe their saves: the disk
  // tier must hold them when the server comes back.
  if (scheduler_.has_tier_traffic()) Step();
}

void Engine::DrainInbox() {
  std::vector<std::unique_ptr<RequestState>> incoming;
  std::vector<std::pair<uint64_t, FinishReason>> cancels;
  {
    absl::MutexLock lock(&mu_);
    incoming.swap(inbox_);
    cancels.swap(cancels_);
  }
  for (auto& req : incoming) {
    req->seq = scheduler_.Add(std::move(req->sequence));
    requests_[req->id] = std::move(req);
  }
  for (const auto& [id, reason] : cancels) {
    if (requests_.contains(id)) FinishRequest(id, reason);
  }
}

void Engine::FinishRequest(uint64_t id, FinishReason reason,
                           const absl::Status& error) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  std::unique_ptr<RequestState> req = std::move(it->second);
  requests_.erase(it);
  std::unique_ptr<Sequence> seq = scheduler_.Finish(id);
  EngineOutput out;
  out.request_id = id;
  out.time = absl::Now();
  out.finished = true;
  out.finish_reason = reason;
  out.error = std::string(error.message());
  out.error_code = error.code();
  out.usage = {seq->prompt_len(), seq->num_output(), seq->num_cached_prompt()};
  req->times.finished = out.time;
  out.times = req->times;
  req->on_output(std::move(out));
}

void Engine::Step() {
  if (broken()) {
    // Requests that slipped in before the failure was known: fail them too.
    FailAll(absl::UnavailableError("a tensor-parallel peer failed"));
    return;
  }
  // The step's wall time includes scheduling (hydra_step_duration_seconds).
  const absl::Time start = absl::Now();
  scheduler::ScheduledStep step = scheduler_.Schedule();
  if (step.empty()) return;
  MarkScheduled(step, start);
  // Plain greedy rows need only the argmax: a runner that samples on its
  // device sends back token ids instead of logits rows.
  const bool device_greedy =
      runner_->can_sample_greedy() &&
      std::all_of(
          step.sampled.begin(), step.sampled.end(),
          [this](const Sequence* seq) {
            return OutputProcessor::PlainGreedy(*requests_.at(seq->id()));
          });
  if (!Run(step, device_greedy)) return;
  scheduler_.OnStepDone(step, runner_->failed_kv_loads());
  std::vector<Emission> emissions = ProcessAndCommit(step, device_greedy);
  int generated = 0;
  for (Emission& e : emissions) {
    generated += static_cast<int>(e.output.token_ids.size());
    e.request->on_output(std::move(e.output));
  }
  RecordStep(step, start, generated);
}

void Engine::MarkScheduled(const scheduler::ScheduledStep& step,
                           absl::Time start) {
  for (const Sequence* seq : step.sequences) {
    RequestState& req = *requests_.at(seq->id());
    if (req.times.first_scheduled == absl::Time()) {
      req.times.first_scheduled = start;
    }
  }
}

bool Engine::Run(const scheduler::ScheduledStep& step, bool device_greedy) {
  const absl::Status status =
      device_greedy ? runner_->StepGreedy(step.plan, greedy_tokens_)
                    : runner_->Step(step.plan, logits_);
  if (status.ok()) return true;
  if (status.code() == absl::StatusCode::kUnavailable) {
    // A peer or a collective failed: the ranks no longer agree on the step,
    // so nothing can run any more. Fail everything and say so.
    std::function<void(const absl::Status&)> handler;
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
      handler = fatal_handler_;
    }
    FailAll(status);
    if (handler) handler(status);
    return false;
  }
  for (const Sequence* seq : step.sequences) {
    FinishRequest(seq->id(), FinishReason::kError, status);
  }
  return false;
}

std::vector<Engine::Emission> Engine::ProcessAndCommit(
    const scheduler::ScheduledStep& step, bool device_greedy) {
  const absl::Time now = absl::Now();
  tally_ = {};
  std::vector<Emission> emissions;
  emissions.reserve(step.sampled.size());
  int row = 0;
  for (size_t r = 0; r < step.sampled.size(); ++r) {
    RequestState& req = *requests_.at(step.sampled[r]->id());
    const std::span<const int> drafts = step.drafts[r];
    const bool decoding = req.seq->num_output() > 0;
    emissions.push_back(VerifyAndCommit(req, drafts, row, device_greedy, now));
    if (decoding) {
      tally_.tokens_per_decode.push_back(
          static_cast<int>(emissions.back().output.token_ids.size()));
    }
    row += 1 + static_cast<int>(drafts.size());
  }
  return emissions;
}

// Row i was computed with drafts 0..i-1 in the context, so its token is
// the one plain decoding would sample next only while every draft before
// it was the token sampled at its place: verification stops at the first
// mismatch, and that row's token is the correction (docs/architecture.md,
// "Speculative decoding", for why the distribution is unchanged).
Engine::Emission Engine::VerifyAndCommit(RequestState& req,
                                         std::span<const int> drafts, int row,
                                         bool device_greedy, absl::Time now) {
  Emission e;
  int accepted = 0;
  for (size_t i = 0;; ++i) {
    TokenDecision decision =
        Decide(req, row + static_cast<int>(i), device_greedy, now);
    const int token = decision.token_id;
    Commit(req, std::move(decision), e);
    if (e.finished != nullptr || i == drafts.size() || token != drafts[i]) {
      break;
    }
    ++accepted;
  }
  if (!drafts.empty()) {
    tally_.proposed += static_cast<int64_t>(drafts.size());
    tally_.accepted += accepted;
    if (e.finished == nullptr) {
      scheduler_.AcceptDrafts(*req.seq, static_cast<int>(drafts.size()),
                              accepted);
    }
  }
  return e;
}

TokenDecision Engine::Decide(RequestState& req, int row, bool device_greedy,
                             absl::Time now) {
  if (req.prefill_only) return processor_.EndPrefill(req, now);
  if (device_greedy) {
    SampledToken picked;
    picked.token_id = greedy_tokens_[row];
    return processor_.Accept(req, std::move(picked), now);
  }
  const int vocab = runner_->config().vocab_size;
  return processor_.Sample(
      req, std::span(logits_.data() + size_t(row) * vocab, vocab), now);
}

void Engine::Commit(RequestState& req, TokenDecision decision, Emission& e) {
  e.request = &req;
  EngineOutput& out = e.output;
  out.request_id = decision.output.request_id;
  out.time = decision.output.time;
  out.token_ids.insert(out.token_ids.end(), decision.output.token_ids.begin(),
                       decision.output.token_ids.end());
  out.text += decision.output.text;
  for (SampledToken& t : decision.output.logprobs) {
    out.logprobs.push_back(std::move(t));
  }
  if (decision.append) req.seq->AppendToken(decision.token_id);
  if (decision.finish.has_value()) {
    std::unique_ptr<Sequence> done = scheduler_.Finish(req.id);
    out.finished = true;
    out.finish_reason = *decision.finish;
    out.usage = {done->prompt_len(), done->num_output(),
                 done->num_cached_prompt()};
    req.times.finished = out.time;
    auto it = requests_.find(req.id);
    e.finished = std::move(it->second);
    requests_.erase(it);
  }
  out.times = req.times;
}

void Engine::RecordStep(const scheduler::ScheduledStep& step, absl::Time start,
                        int generated) {
  const absl::Duration step_time = absl::Now() - start;
  // The cost model predicts compute: a step that also waited for loads
  // would teach it the disk's speed.
  if (step.plan.kv_loads().empty()) {
    scheduler_.RecordStepTime(step, absl::ToDoubleMilliseconds(step_time));
  }
  StepObserver observer;
  {
    absl::MutexLock lock(&mu_);
    ++stats_.steps;
    stats_.generation_tokens += generated;
    stats_.spec_proposed_tokens += tally_.proposed;
    stats_.spec_accepted_tokens += tally_.accepted;
    stats_.decode_tokens_emitted +=
        std::accumulate(tally_.tokens_per_decode.begin(),
                        tally_.tokens_per_decode.end(), int64_t{0});
    stats_.decoding_sequence_steps +=
        static_cast<int64_t>(tally_.tokens_per_decode.size());
    stats_.prompt_tokens_computed += step.prefill_tokens;
    observer = step_observer_;
  }
  if (!observer) return;
  StepReport report;
  report.duration = step_time;
  report.prefill_tokens = step.prefill_tokens;
  report.decode_tokens = step.decode_tokens;
  report.predicted = absl::Milliseconds(step.predicted_ms);
  report.collective_time = runner_->last_collective_time();
  report.draft_tokens = step.draft_tokens;
  report.tokens_per_decode = std::move(tally_.tokens_per_decode);
  if (const worker::KvTierStore* tiers = runner_->kv_tiers()) {
    for (const internal::KvLoad& load : step.plan.kv_loads()) {
      const std::string name = TierName(load.tier());
      if (!report.kv_load_time.contains(name)) {
        report.kv_load_time[name] = tiers->last_load_time(load.tier());
      }
    }
  }
  observer(report);
}

bool Engine::broken() const {
  absl::MutexLock lock(&mu_);
  return broken_;
}

void Engine::FailAll(const absl::Status& error) {
  std::vector<uint64_t> all;
  for (const auto& [id, req] : requests_) all.push_back(id);
  for (uint64_t id : all) FinishRequest(id, FinishReason::kError, error);
}

void Engine::UpdateStats() {
  int64_t waste = 0;
  for (const Sequence* seq : scheduler_.live()) {
    waste += int64_t(seq->block_table().size()) * blocks_.block_size() -
             seq->num_computed();
  }
  absl::MutexLock lock(&mu_);
  stats_.running = scheduler_.num_running();
  stats_.waiting = scheduler_.num_waiting();  // stats() adds the inbox
  stats_.kv_used = blocks_.num_used();
  stats_.kv_free = blocks_.num_free();
  stats_.kv_cached = blocks_.num_cached();
  stats_.kv_pinned = blocks_.num_pinned();
  stats_.kv_total = blocks_.num_blocks();
  stats_.preemptions = scheduler_.preemptions();
  stats_.partial_prefills = scheduler_.num_prefilling();
  stats_.waiting_by_priority = scheduler_.waiting_by_priority();
  stats_.preemptions_by_priority = scheduler_.preemptions_by_priority();
  stats_.step_cost = scheduler_.cost_model().coefficients();
  stats_.prefix_queries = blocks_.prefix_queries();
  stats_.prefix_hits = blocks_.prefix_hits();
  if (const worker::KvTierStore* tiers = runner_->kv_tiers()) {
    const int64_t block_bytes = static_cast<int64_t>(tiers->block_bytes());
    for (scheduler::KvTier tier : scheduler::kLowerTiers) {
      const scheduler::KvTierIndex& index = blocks_.tiers();
      if (!index.enabled(tier)) continue;
      stats_.kv_tiers[TierName(tier)] = {
          blocks_.tier_queries(tier), blocks_.tier_hits(tier),
          blocks_.tier_load_failures(tier), index.size(tier) * block_bytes,
          index.capacity(tier) * block_bytes};
    }
  }
  if (stats_.kv_used > stats_.peak_kv_used) {
    stats_.peak_kv_used = stats_.kv_used;
    stats_.peak_kv_waste_slots = waste;
  }
}

}  // namespace hydra::engine
