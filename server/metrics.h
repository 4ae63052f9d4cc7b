// Prometheus metrics of the server (names and meaning: docs/metrics.md).
// Histograms are the aggregatable source of truth (p95 across replicas via
// histogram_quantile); the summaries repeat the three user-facing latencies
// as sliding-window quantiles so one replica's p95 can be read without
// PromQL. All methods are thread-safe.
#ifndef HYDRA_SERVER_METRICS_H_
#define HYDRA_SERVER_METRICS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/summary.h"

namespace hydra::server {

struct MetricsOptions {
  // "host:port" to serve /metrics on; port 0 picks a free one; empty serves
  // nothing (Serialize() still works).
  std::string listen_address;
  std::string model_name;
  int tensor_parallel_size = 1;
  std::string version;
  double max_step_ms = 0;  // exported as hydra_step_budget_seconds
};

// Which API a request came through: the `front_end` label of
// hydra_requests_total.
enum class FrontEnd { kGrpc, kHttp };

class ServerMetrics {
 public:
  // Fails (naming the address) when the HTTP listener cannot bind.
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Create(
      const MetricsOptions& options);
  ~ServerMetrics();

  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // Fits hydra::StepObserver.
  void OnStep(const engine::StepReport& step);

  // Call for every engine output. `previous_token_time` is the `time` of this
  // request's previous output that carried tokens, or absl::InfinitePast()
  // before its first token.
  void OnOutput(const engine::EngineOutput& out, absl::Time previous_token_time,
                FrontEnd front_end = FrontEnd::kGrpc);

  // Call for every request refused before it ran (fits RejectionObserver).
  void OnRejected(absl::StatusCode code, FrontEnd front_end = FrontEnd::kGrpc);

  // Call periodically (and after the engine goes idle). The engine's
  // cumulative counts become counter increments, so calls may come from any
  // thread in any rhythm; a count that goes backwards (a new engine) is read
  // as a restart from zero.
  void UpdateEngineStats(const engine::EngineStats& stats,
                         int64_t kv_bytes_per_rank, int tensor_parallel_size);

  // Text exposition format, as served on /metrics.
  std::string Serialize() const;

  // The bound HTTP port (useful with port 0), or 0 without a listener.
  int port() const;

 private:
  explicit ServerMetrics(const MetricsOptions& options);

  std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Histogram* ttft_;
  prometheus::Histogram* inter_token_;
  prometheus::Histogram* e2e_;
  prometheus::Histogram* queue_time_;
  prometheus::Histogram* step_duration_;
  prometheus::Histogram* batch_tokens_;
  prometheus::Histogram* collective_;
  prometheus::Histogram* step_prefill_tokens_;
  prometheus::Histogram* step_decode_tokens_;
  prometheus::Histogram* decode_step_duration_;
  prometheus::Histogram* decode_tokens_per_step_;
  prometheus::Gauge* cost_intercept_;
  prometheus::Gauge* cost_token_;
  prometheus::Gauge* cost_key_read_;
  prometheus::Gauge* cost_logits_row_;
  prometheus::Gauge* partial_prefills_;
  prometheus::Family<prometheus::Gauge>* waiting_by_priority_;
  prometheus::Family<prometheus::Counter>* preemptions_by_priority_;
  prometheus::Summary* ttft_summary_;
  prometheus::Summary* inter_token_summary_;
  prometheus::Summary* e2e_summary_;

  prometheus::Gauge* requests_running_;
  prometheus::Gauge* requests_waiting_;
  prometheus::Gauge* kv_used_;
  prometheus::Gauge* kv_free_;
  prometheus::Gauge* kv_cached_;
  prometheus::Gauge* kv_pinned_;
  prometheus::Gauge* kv_usage_ratio_;
  prometheus::Family<prometheus::Gauge>* kv_bytes_;

  prometheus::Counter* prompt_tokens_;
  prometheus::Counter* generation_tokens_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Counter>* rejected_;
  prometheus::Counter* preemptions_;
  prometheus::Counter* prefix_queries_;
  prometheus::Counter* prefix_hits_;
  prometheus::Counter* spec_proposed_;
  prometheus::Counter* spec_accepted_;
  prometheus::Gauge* spec_acceptance_rate_;

  // The KV tiers: the pool ("memory") and the lower ones the engine has.
  struct TierSeries {
    prometheus::Counter* hits;
    prometheus::Counter* misses;
    prometheus::Counter* load_failures;
    prometheus::Gauge* bytes;
    prometheus::Gauge* capacity_bytes;
    int64_t last_hits = 0;
    int64_t last_misses = 0;
    int64_t last_load_failures = 0;
  };
  // Adds the tier's series on first use.
  TierSeries& Tier(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateTier(const std::string& name, const engine::KvTierStats& tier)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  prometheus::Family<prometheus::Counter>* tier_hits_;
  prometheus::Family<prometheus::Counter>* tier_misses_;
  prometheus::Family<prometheus::Counter>* tier_load_failures_;
  prometheus::Family<prometheus::Gauge>* tier_bytes_;
  prometheus::Family<prometheus::Gauge>* tier_capacity_bytes_;
  prometheus::Family<prometheus::Histogram>* tier_load_seconds_;

  absl::Mutex mu_;
  std::map<std::string, TierSeries> tiers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, prometheus::Histogram*> tier_load_time_
      ABSL_GUARDED_BY(mu_);
  int64_t last_preemptions_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_prefix_queries_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_prefix_hits_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_spec_proposed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_spec_accepted_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<prometheus::Gauge*> kv_bytes_by_rank_ ABSL_GUARDED_BY(mu_);
  std::map<int, prometheus::Gauge*> waiting_gauges_ ABSL_GUARDED_BY(mu_);
  std::map<int, int64_t> last_preemptions_by_priority_ ABSL_GUARDED_BY(mu_);

  // Last, so the HTTP threads stop before the metrics they read go away.
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace hydra::server

#endif  // HYDRA_SERVER_METRICS_H_
