#include "server/metrics.h"

#include <chrono>
#include <exception>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace hydra::server {
namespace {

using prometheus::Histogram;
using prometheus::Summary;

// From 1 ms to 2 h: a 60 s cap would put every slow request in +Inf and make
// p99 of long generations unreadable (vLLM's lesson).
const Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new Histogram::BucketBoundaries{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,  1,    2.5,
      5,     10,     25,    50,   100,   250,  500, 1000, 1800, 3600, 7200};
  return *buckets;
}

// Collectives of one step: from 10 us (an all-reduce of a decode batch on
// one machine) to seconds (a slow network).
const Histogram::BucketBoundaries& CollectiveBuckets() {
  static const auto* buckets = new Histogram::BucketBoundaries{
      1e-5,  2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 0.001, 0.0025, 0.005, 0.01,
      0.025, 0.05,   0.1,  0.25, 0.5,    1,    2.5,   5,      10};
  return *buckets;
}

const Histogram::BucketBoundaries& BatchTokenBuckets() {
  static const auto* buckets = new Histogram::BucketBoundaries{
      1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
  return *buckets;
}

// One bucket per count up to 1 + SpeculativeConfig::kMaxTokens.
const Histogram::BucketBoundaries& DecodeTokenBuckets() {
  static const auto* buckets = new Histogram::BucketBoundaries{
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
  return *buckets;
}

// Finer than LatencyBuckets where step budgets live (tens to hundreds of
// ms), so a quantile can be compared with --max_step_ms.
const Histogram::BucketBoundaries& StepBuckets() {
  static const auto* buckets = new Histogram::BucketBoundaries{
      0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2,
      0.3,   0.5,  0.75, 1,    1.5,  2,     3,   5,    10};
  return *buckets;
}

const Summary::Quantiles& LatencyQuantiles() {
  static const auto* quantiles =
      new Summary::Quantiles{{0.5, 0.005}, {0.95, 0.005}, {0.99, 0.001}};
  return *quantiles;
}

constexpr std::chrono::seconds kSummaryWindow{60};
constexpr int kSummaryAgeBuckets = 5;

// The engine leaves a time it has not reached yet at absl::Time(); callers
// may also pass InfinitePast for "none".
bool IsSet(absl::Time t) {
  return t != absl::Time() && t != absl::InfinitePast();
}

Histogram* AddHistogram(prometheus::Registry& registry, const std::string& name,
                        const std::string& help,
                        const Histogram::BucketBoundaries& buckets) {
  return &prometheus::BuildHistogram()
              .Name(name)
              .Help(help)
              .Register(registry)
              .Add({}, buckets);
}

Summary* AddSummary(prometheus::Registry& registry, const std::string& name,
                    const std::string& help) {
  return &prometheus::BuildSummary()
              .Name(name)
              .Help(help)
              .Register(registry)
              .Add({}, LatencyQuantiles(), kSummaryWindow, kSummaryAgeBuckets);
}

prometheus::Gauge* AddGauge(prometheus::Registry& registry,
                            const std::string& name, const std::string& help) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add(
      {});
}

prometheus::Counter* AddCounter(prometheus::Registry& registry,
                                const std::string& name,
                                const std::string& help) {
  return &prometheus::BuildCounter()
              .Name(name)
              .Help(help)
              .Register(registry)
              .Add({});
}

// Skips negative spans: a wall clock stepped back must not yield bogus
// observations.
void ObserveSpan(Histogram* histogram, Summary* summary, absl::Time from,
                 absl::Time to) {
  if (!IsSet(from) || !IsSet(to) || to < from) return;
  const double seconds = absl::ToDoubleSeconds(to - from);
  histogram->Observe(seconds);
  if (summary != nullptr) summary->Observe(seconds);
}

std::string FrontEndName(FrontEnd front_end) {
  return front_end == FrontEnd::kHttp ? "http" : "grpc";
}

// The `reason` label of hydra_requests_rejected_total.
constexpr absl::StatusCode kRejectionCodes[] = {
    absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
    absl::StatusCode::kUnauthenticated, absl::StatusCode::kResourceExhausted,
    absl::StatusCode::kUnavailable,     absl::StatusCode::kDeadlineExceeded,
    absl::StatusCode::kInternal};

std::string RejectionReason(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
      return "invalid_argument";
    case absl::StatusCode::kNotFound:
      return "not_found";
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return "unauthenticated";
    case absl::StatusCode::kResourceExhausted:
      return "queue_full";
    case absl::StatusCode::kUnavailable:
      return "unavailable";
    case absl::StatusCode::kDeadlineExceeded:
      return "timeout";
    default:
      return "internal";
  }
}

// Turns the engine's cumulative `count` into a counter increment; a count
// below the last one means the engine started over from zero.
void AddDelta(prometheus::Counter& counter, int64_t count, int64_t& last) {
  const int64_t delta = count >= last ? count - last : count;
  if (delta > 0) counter.Increment(static_cast<double>(delta));
  last = count;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(
    const MetricsOptions& options) {
  auto metrics = absl::WrapUnique(new ServerMetrics(options));
  if (options.listen_address.empty()) return metrics;
  // civetweb reports a failed bind by throwing from the constructor.
  try {
    metrics->exposer_ =
        std::make_unique<prometheus::Exposer>(options.listen_address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on \"",
                                               options.listen_address,
                                               "\": ", e.what()));
  }
  metrics->exposer_->RegisterCollectable(metrics->registry_);
  return metrics;
}

ServerMetrics::ServerMetrics(const MetricsOptions& options)
    : registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::Registry& r = *registry_;
  ttft_ = AddHistogram(
      r, "hydra_time_to_first_token_seconds",
      "Time from a request's arrival to its first generated token.",
      LatencyBuckets());
  inter_token_ = AddHistogram(
      r, "hydra_inter_token_latency_seconds",
      "Time between consecutive generated tokens of a request; tokens that "
      "arrive together share their gap evenly.",
      LatencyBuckets());
  e2e_ = AddHistogram(r, "hydra_e2e_request_latency_seconds",
                      "Time from a request's arrival to its last output.",
                      LatencyBuckets());
  queue_time_ =
      AddHistogram(r, "hydra_request_queue_time_seconds",
                   "Time from a request's arrival to its first scheduled step.",
                   LatencyBuckets());
  step_duration_ =
      AddHistogram(r, "hydra_step_duration_seconds",
                   "Wall time of one engine step.", LatencyBuckets());
  batch_tokens_ =
      AddHistogram(r, "hydra_batch_tokens",
                   "Tokens computed in one engine step.", BatchTokenBuckets());
  auto& step_tokens =
      prometheus::BuildHistogram()
          .Name("hydra_step_tokens")
          .Help(
              "Tokens computed in one engine step, by kind: prefill "
              "(prompt chunks and recomputes) or decode (one per stream).")
          .Register(r);
  step_prefill_tokens_ =
      &step_tokens.Add({{"kind", "prefill"}}, BatchTokenBuckets());
  step_decode_tokens_ =
      &step_tokens.Add({{"kind", "decode"}}, BatchTokenBuckets());
  decode_step_duration_ = AddHistogram(
      r, "hydra_decode_step_duration_seconds",
      "Wall time of engine steps that carried decodes: what streaming "
      "requests wait between tokens, held to --max_step_ms when set.",
      StepBuckets());
  decode_tokens_per_step_ = AddHistogram(
      r, "hydra_decode_tokens_per_step",
      "Tokens one decoding request emitted in one engine step: 1 without "
      "speculative decoding, up to 1 + --spec_tokens with it.",
      DecodeTokenBuckets());
  AddGauge(r, "hydra_step_budget_seconds",
           "The step-time budget (--max_step_ms); 0 when there is none.")
      ->Set(options.max_step_ms / 1e3);
  auto& cost = prometheus::BuildGauge()
                   .Name("hydra_step_cost_coefficient")
                   .Help(
                       "The fitted step-time model, seconds per unit of "
                       "each term: intercept (per step), token, key_read "
                       "(query token x context position), sequence.")
                   .Register(r);
  cost_intercept_ = &cost.Add({{"term", "intercept"}});
  cost_token_ = &cost.Add({{"term", "token"}});
  cost_key_read_ = &cost.Add({{"term", "key_read"}});
  cost_logits_row_ = &cost.Add({{"term", "logits_row"}});
  partial_prefills_ =
      AddGauge(r, "hydra_partial_prefills",
               "Running requests whose prompt is not fully computed yet.");
  waiting_by_priority_ =
      &prometheus::BuildGauge()
           .Name("hydra_requests_waiting_by_priority")
           .Help(
               "Requests waiting for admission, by priority (lower is "
               "served first).")
           .Register(r);
  preemptions_by_priority_ =
      &prometheus::BuildCounter()
           .Name("hydra_preemptions_by_priority_total")
           .Help("Preemptions by the priority of the preempted request.")
           .Register(r);
  // The default priority's series exist from the start, so dashboards and
  // rules find both families before any request sets a priority.
  waiting_gauges_[0] = &waiting_by_priority_->Add({{"priority", "0"}});
  preemptions_by_priority_->Add({{"priority", "0"}});
  collective_ = AddHistogram(
      r, "hydra_collective_seconds",
      "Time one engine step spent in tensor-parallel collectives on rank 0 "
      "(plan broadcast, all-reduces, logit gather); observed only with "
      "more than one rank.",
      CollectiveBuckets());

  ttft_summary_ =
      AddSummary(r, "hydra_time_to_first_token_window_seconds",
                 "Time to first token; quantiles over the last 60 seconds.");
  inter_token_summary_ =
      AddSummary(r, "hydra_inter_token_latency_window_seconds",
                 "Inter-token latency; quantiles over the last 60 seconds.");
  e2e_summary_ = AddSummary(
      r, "hydra_e2e_request_latency_window_seconds",
      "End-to-end request latency; quantiles over the last 60 seconds.");

  requests_running_ =
      AddGauge(r, "hydra_requests_running", "Requests in the running batch.");
  requests_waiting_ = AddGauge(r, "hydra_requests_waiting",
                               "Requests queued and not yet running.");
  auto& blocks = prometheus::BuildGauge()
                     .Name("hydra_kv_cache_blocks")
                     .Help(
                         "KV cache blocks per state: used (referenced), "
                         "cached (reusable prefix) or free.")
                     .Register(r);
  kv_used_ = &blocks.Add({{"state", "used"}});
  kv_free_ = &blocks.Add({{"state", "free"}});
  kv_cached_ = &blocks.Add({{"state", "cached"}});
  kv_pinned_ = AddGauge(
      r, "hydra_kv_cache_pinned_blocks",
      "KV blocks of pinned prefixes (retention=pinned, WarmPrefix), held or "
      "cached; evicted last, never within --pinned_kv_fraction.");
  kv_usage_ratio_ = AddGauge(r, "hydra_kv_cache_usage_ratio",
                             "Used KV cache blocks over all blocks (0..1).");
  kv_bytes_ = &prometheus::BuildGauge()
                   .Name("hydra_kv_cache_bytes")
                   .Help("KV cache memory held by each tensor-parallel rank.")
                   .Register(r);
  for (int rank = 0; rank < options.tensor_parallel_size; ++rank) {
    kv_bytes_by_rank_.push_back(
        &kv_bytes_->Add({{"rank", absl::StrCat(rank)}}));
  }
  prometheus::BuildGauge()
      .Name("hydra_build_info")
      .Help("Always 1; labels describe the running server.")
      .Register(r)
      .Add({{"version", options.version},
            {"model", options.model_name},
            {"tensor_parallel_size",
             absl::StrCat(options.tensor_parallel_size)}})
      .Set(1);

  prompt_tokens_ = AddCounter(r, "hydra_prompt_tokens_total",
                              "Prompt tokens of finished requests.");
  generation_tokens_ = AddCounter(r, "hydra_generation_tokens_total",
                                  "Generated tokens of finished requests.");
  requests_ = &prometheus::BuildCounter()
                   .Name("hydra_requests_total")
                   .Help(
                       "Finished requests by finish reason and front end "
                       "(grpc, http).")
                   .Register(r);
  // Present from the start, so rate() sees every reason's first request.
  for (FrontEnd front_end : {FrontEnd::kGrpc, FrontEnd::kHttp}) {
    for (auto reason :
         {engine::FinishReason::kStop, engine::FinishReason::kLength,
          engine::FinishReason::kCancelled, engine::FinishReason::kDeadline,
          engine::FinishReason::kError}) {
      requests_->Add(
          {{"finish_reason", std::string(engine::FinishReasonName(reason))},
           {"front_end", FrontEndName(front_end)}});
    }
  }
  rejected_ = &prometheus::BuildCounter()
                   .Name("hydra_requests_rejected_total")
                   .Help(
                       "Requests refused before they ran, by reason "
                       "(invalid_argument, not_found, unauthenticated, "
                       "queue_full, unavailable: loading or draining, "
                       "timeout, internal) and front end.")
                   .Register(r);
  for (FrontEnd front_end : {FrontEnd::kGrpc, FrontEnd::kHttp}) {
    for (absl::StatusCode code : kRejectionCodes) {
      rejected_->Add({{"reason", RejectionReason(code)},
                      {"front_end", FrontEndName(front_end)}});
    }
  }
  preemptions_ =
      AddCounter(r, "hydra_preemptions_total",
                 "Running requests preempted (to be recomputed) for KV space "
                 "or for a more important waiting request.");
  prefix_queries_ = AddCounter(r, "hydra_prefix_cache_queries_total",
                               "Prompt tokens looked up in the prefix cache.");
  prefix_hits_ = AddCounter(r, "hydra_prefix_cache_hits_total",
                            "Prompt tokens found in the prefix cache.");
  spec_proposed_ = AddCounter(r, "hydra_spec_proposed_tokens_total",
                              "Draft tokens proposed by speculative decoding "
                              "(--speculative=ngram) and verified.");
  spec_accepted_ =
      AddCounter(r, "hydra_spec_accepted_tokens_total",
                 "Draft tokens accepted: each one a token emitted without a "
                 "step of its own.");
  spec_acceptance_rate_ = AddGauge(
      r, "hydra_spec_acceptance_rate",
      "Accepted over proposed draft tokens since start (0 before any).");
  auto counters = [&](const std::string& name, const std::string& help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(r);
  };
  auto gauges = [&](const std::string& name, const std::string& help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(r);
  };
  tier_hits_ = counters(
      "hydra_kv_tier_hits_total",
      "Prompt tokens served from each KV tier at admission (memory: the "
      "pool's prefix cache; host, disk: loaded instead of recomputed).");
  tier_misses_ = counters(
      "hydra_kv_tier_misses_total",
      "Prompt tokens looked up in each KV tier (memory, then host, then "
      "disk) and not found there.");
  tier_load_failures_ = counters(
      "hydra_kv_tier_load_failures_total",
      "KV blocks whose load from a lower tier failed on some rank (missing, "
      "corrupt or of another configuration) and were recomputed.");
  tier_bytes_ = gauges("hydra_kv_tier_bytes",
                       "Bytes of KV blocks each tier holds, per rank.");
  tier_capacity_bytes_ =
      gauges("hydra_kv_tier_capacity_bytes",
             "Bytes of KV blocks each tier may hold, per rank.");
  tier_load_seconds_ =
      &prometheus::BuildHistogram()
           .Name("hydra_kv_tier_load_seconds")
           .Help(
               "Time an engine step spent loading KV blocks from a lower "
               "tier (host, disk), per step that loaded.")
           .Register(r);
  absl::MutexLock lock(&mu_);
  Tier("memory");
}

ServerMetrics::TierSeries& ServerMetrics::Tier(const std::string& name) {
  auto [it, added] = tiers_.try_emplace(name);
  TierSeries& t = it->second;
  if (added) {
    const prometheus::Labels labels = {{"tier", name}};
    t.hits = &tier_hits_->Add(labels);
    t.misses = &tier_misses_->Add(labels);
    t.load_failures = &tier_load_failures_->Add(labels);
    t.bytes = &tier_bytes_->Add(labels);
    t.capacity_bytes = &tier_capacity_bytes_->Add(labels);
  }
  return t;
}

void ServerMetrics::UpdateTier(const std::string& name,
                               const engine::KvTierStats& tier) {
  TierSeries& t = Tier(name);
  AddDelta(*t.hits, tier.hits, t.last_hits);
  AddDelta(*t.misses, tier.queries - tier.hits, t.last_misses);
  AddDelta(*t.load_failures, tier.load_failures, t.last_load_failures);
  t.bytes->Set(static_cast<double>(tier.stored_bytes));
  t.capacity_bytes->Set(static_cast<double>(tier.capacity_bytes));
}

ServerMetrics::~ServerMetrics() = default;

void ServerMetrics::OnStep(const engine::StepReport& step) {
  const double seconds = absl::ToDoubleSeconds(step.duration);
  step_duration_->Observe(seconds);
  if (step.decode_tokens > 0) decode_step_duration_->Observe(seconds);
  batch_tokens_->Observe(step.prefill_tokens + step.decode_tokens);
  step_prefill_tokens_->Observe(step.prefill_tokens);
  step_decode_tokens_->Observe(step.decode_tokens);
  for (int n : step.tokens_per_decode) decode_tokens_per_step_->Observe(n);
  if (step.collective_time > absl::ZeroDuration()) {
    collective_->Observe(absl::ToDoubleSeconds(step.collective_time));
  }
  if (step.kv_load_time.empty()) return;
  absl::MutexLock lock(&mu_);
  for (const auto& [tier, time] : step.kv_load_time) {
    prometheus::Histogram*& h = tier_load_time_[tier];
    if (h == nullptr) {
      h = &tier_load_seconds_->Add({{"tier", tier}}, StepBuckets());
    }
    h->Observe(absl::ToDoubleSeconds(time));
  }
}

void ServerMetrics::OnRejected(absl::StatusCode code, FrontEnd front_end) {
  rejected_
      ->Add({{"reason", RejectionReason(code)},
             {"front_end", FrontEndName(front_end)}})
      .Increment();
}

void ServerMetrics::OnOutput(const engine::EngineOutput& out,
                             absl::Time previous_token_time,
                             FrontEnd front_end) {
  const int n = static_cast<int>(out.token_ids.size());
  if (n > 0 && IsSet(previous_token_time) && out.time >= previous_token_time) {
    // One observation per token keeps the count equal to tokens streamed.
    const double gap =
        absl::ToDoubleSeconds(out.time - previous_token_time) / n;
    for (int i = 0; i < n; ++i) {
      inter_token_->Observe(gap);
      inter_token_summary_->Observe(gap);
    }
  }
  const engine::RequestTimes& t = out.times;
  // TTFT and queue time are known at a request's first output (its first
  // token, or the end of a request that produced none): observed then, so a
  // long generation does not hold them back for its whole length.
  if (!IsSet(previous_token_time)) {
    ObserveSpan(ttft_, ttft_summary_, t.arrival, t.first_token);
    ObserveSpan(queue_time_, nullptr, t.arrival, t.first_scheduled);
  }
  if (!out.finished) return;
  ObserveSpan(e2e_, e2e_summary_, t.arrival, t.finished);
  requests_
      ->Add({{"finish_reason",
              std::string(engine::FinishReasonName(out.finish_reason))},
             {"front_end", FrontEndName(front_end)}})
      .Increment();
  prompt_tokens_->Increment(out.usage.prompt_tokens);
  generation_tokens_->Increment(out.usage.completion_tokens);
}

void ServerMetrics::UpdateEngineStats(const engine::EngineStats& stats,
                                      int64_t kv_bytes_per_rank,
                                      int tensor_parallel_size) {
  requests_running_->Set(stats.running);
  requests_waiting_->Set(stats.waiting);
  kv_used_->Set(stats.kv_used);
  kv_free_->Set(stats.kv_free);
  kv_cached_->Set(stats.kv_cached);
  kv_pinned_->Set(stats.kv_pinned);
  kv_usage_ratio_->Set(stats.kv_total > 0
                           ? static_cast<double>(stats.kv_used) / stats.kv_total
                           : 0.0);

  absl::MutexLock lock(&mu_);
  while (static_cast<int>(kv_bytes_by_rank_.size()) > tensor_parallel_size) {
    kv_bytes_->Remove(kv_bytes_by_rank_.back());
    kv_bytes_by_rank_.pop_back();
  }
  while (static_cast<int>(kv_bytes_by_rank_.size()) < tensor_parallel_size) {
    kv_bytes_by_rank_.push_back(
        &kv_bytes_->Add({{"rank", absl::StrCat(kv_bytes_by_rank_.size())}}));
  }
  for (prometheus::Gauge* gauge : kv_bytes_by_rank_) {
    gauge->Set(static_cast<double>(kv_bytes_per_rank));
  }
  AddDelta(*preemptions_, stats.preemptions, last_preemptions_);
  partial_prefills_->Set(stats.partial_prefills);
  cost_intercept_->Set(stats.step_cost.intercept_ms / 1e3);
  cost_token_->Set(stats.step_cost.per_token_ms / 1e3);
  cost_key_read_->Set(stats.step_cost.per_key_read_ms / 1e3);
  cost_logits_row_->Set(stats.step_cost.per_logits_row_ms / 1e3);
  // A priority seen once keeps its series (at 0 when none wait), so a
  // graph does not show gaps; validation bounds how many there can be.
  for (auto& [priority, gauge] : waiting_gauges_) gauge->Set(0);
  for (const auto& [priority, count] : stats.waiting_by_priority) {
    prometheus::Gauge*& gauge = waiting_gauges_[priority];
    if (gauge == nullptr) {
      gauge =
          &waiting_by_priority_->Add({{"priority", absl::StrCat(priority)}});
    }
    gauge->Set(count);
  }
  for (const auto& [priority, count] : stats.preemptions_by_priority) {
    AddDelta(
        preemptions_by_priority_->Add({{"priority", absl::StrCat(priority)}}),
        count, last_preemptions_by_priority_[priority]);
  }
  AddDelta(*prefix_queries_, stats.prefix_queries, last_prefix_queries_);
  AddDelta(*prefix_hits_, stats.prefix_hits, last_prefix_hits_);
  AddDelta(*spec_proposed_, stats.spec_proposed_tokens, last_spec_proposed_);
  AddDelta(*spec_accepted_, stats.spec_accepted_tokens, last_spec_accepted_);
  spec_acceptance_rate_->Set(stats.spec_proposed_tokens > 0
                                 ? double(stats.spec_accepted_tokens) /
                                       stats.spec_proposed_tokens
                                 : 0.0);
  const int64_t block_bytes =
      stats.kv_total > 0 ? kv_bytes_per_rank / stats.kv_total : 0;
  UpdateTier("memory", {stats.prefix_queries, stats.prefix_hits, 0,
                        (stats.kv_used + stats.kv_cached) * block_bytes,
                        kv_bytes_per_rank});
  for (const auto& [name, tier] : stats.kv_tiers) UpdateTier(name, tier);
}

std::string ServerMetrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

int ServerMetrics::port() const {
  if (exposer_ == nullptr) return 0;
  const std::vector<int> ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace hydra::server
