// ServerMetrics on synthetic engine outputs: the exposition names every
// documented metric, counts and sums match what was fed, summary and
// histogram quantiles agree, promtool accepts it, and /metrics is served.
#include "server/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace hydra::server {
namespace {

using engine::FinishReason;

// The exposition parsed into samples by series ("name{labels}") and the
// HELP/TYPE lines by family.
class Exposition {
 public:
  explicit Exposition(const std::string& text) {
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (line.empty()) continue;
      if (absl::ConsumePrefix(&line, "# TYPE ")) {
        std::pair<std::string, std::string> name_type =
            absl::StrSplit(line, absl::MaxSplits(' ', 1));
        types_[name_type.first] = name_type.second;
      } else if (absl::ConsumePrefix(&line, "# HELP ")) {
        std::pair<std::string, std::string> name_help =
            absl::StrSplit(line, absl::MaxSplits(' ', 1));
        helps_[name_help.first] = name_help.second;
      } else if (line[0] != '#') {
        const size_t space = line.rfind(' ');
        samples_[std::string(line.substr(0, space))] =
            std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
      }
    }
  }

  std::string Type(const std::string& family) const {
    auto it = types_.find(family);
    return it == types_.end() ? "" : it->second;
  }
  std::string Help(const std::string& family) const {
    auto it = helps_.find(family);
    return it == helps_.end() ? "" : it->second;
  }
  double Get(const std::string& series) const {
    auto it = samples_.find(series);
    if (it == samples_.end()) {
      ADD_FAILURE() << "no series " << series;
      return std::nan("");
    }
    return it->second;
  }

  // (le, cumulative count) of a histogram, ascending, ending with +Inf.
  std::vector<std::pair<double, double>> Buckets(
      const std::string& histogram) const {
    std::vector<std::pair<double, double>> buckets;
    const std::string prefix = histogram + "_bucket{le=\"";
    for (const auto& [series, value] : samples_) {
      absl::string_view le = series;
      if (!absl::ConsumePrefix(&le, prefix)) continue;
      buckets.emplace_back(std::strtod(std::string(le).c_str(), nullptr),
                           value);
    }
    std::sort(buckets.begin(), buckets.end());
    return buckets;
  }

  double SummaryQuantile(const std::string& summary, double q) const {
    const std::string prefix = summary + "{quantile=\"";
    for (const auto& [series, value] : samples_) {
      absl::string_view label = series;
      if (absl::ConsumePrefix(&label, prefix) &&
          std::abs(std::strtod(std::string(label).c_str(), nullptr) - q) <
              1e-9) {
        return value;
      }
    }
    ADD_FAILURE() << "no quantile " << q << " in " << summary;
    return std::nan("");
  }

 private:
  std::map<std::string, std::string> types_;
  std::map<std::string, std::string> helps_;
  std::map<std::string, double> samples_;
};

// Prometheus's histogram_quantile: linear interpolation inside the bucket
// holding the rank (promql/quantile.go, bucketQuantile).
double HistogramQuantile(double q,
                         const std::vector<std::pair<double, double>>& b) {
  if (b.size() < 2 || b.back().second == 0) return std::nan("");
  const double rank = q * b.back().second;
  size_t i = 0;
  while (b[i].second < rank) ++i;
  if (i == b.size() - 1) return b[b.size() - 2].first;
  if (i == 0) return b[0].first * (rank / b[0].second);
  const double in_bucket = b[i].second - b[i - 1].second;
  return b[i - 1].first +
         (b[i].first - b[i - 1].first) * ((rank - b[i - 1].second) / in_bucket);
}

// Index of the bucket a value falls in.
int BucketIndex(double value, const std::vector<std::pair<double, double>>& b) {
  int i = 0;
  while (i + 1 < static_cast<int>(b.size()) && value > b[i].first) ++i;
  return i;
}

double ExactQuantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * values.size()));
  return values[std::max<size_t>(rank, 1) - 1];
}

// The fractions of `values` below and at most `value`.
std::pair<double, double> RankRange(std::vector<double> values, double value) {
  std::sort(values.begin(), values.end());
  const double n = values.size();
  return {
      (std::lower_bound(values.begin(), values.end(), value) - values.begin()) /
          n,
      (std::upper_bound(values.begin(), values.end(), value) - values.begin()) /
          n};
}

std::unique_ptr<ServerMetrics> NewMetrics(std::string address = "") {
  absl::StatusOr<std::unique_ptr<ServerMetrics>> metrics =
      ServerMetrics::Create({.listen_address = std::move(address),
                             .model_name = "stories15M",
                             .tensor_parallel_size = 2,
                             .version = "0.1.0-test"});
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  return metrics.ok() ? *std::move(metrics) : nullptr;
}

// What a synthetic workload fed, to check the exposition against.
struct Fed {
  int finished = 0;
  std::map<std::string, int> by_reason;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  std::vector<double> ttft, inter_token, e2e, queue;
};

double Sum(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return sum;
}

// Streams `n` requests through OnOutput the way the server does: each
// output with tokens remembers its time as the request's previous token
// time. Durations are log-uniform (never zero) so they span many buckets;
// every 13th request is cancelled before it was ever scheduled.
Fed FeedRequests(ServerMetrics& metrics, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  auto log_uniform = [&rng](double lo, double hi) {
    std::uniform_real_distribution<double> u(std::log(lo), std::log(hi));
    return absl::Seconds(std::exp(u(rng)));
  };
  std::uniform_int_distribution<int> outputs(1, 30), burst(1, 3),
      prompt(1, 2000);
  const engine::FinishReason reasons[] = {engine::FinishReason::kStop,
                                          engine::FinishReason::kLength,
                                          engine::FinishReason::kDeadline};
  Fed fed;
  for (int i = 0; i < n; ++i) {
    const absl::Time arrival =
        absl::FromUnixSeconds(1700000000) + absl::Milliseconds(137) * i;
    engine::EngineOutput out;
    out.request_id = i + 1;
    out.usage.prompt_tokens = prompt(rng);
    out.times.arrival = arrival;
    if (i % 13 == 0) {  // cancelled while waiting: no tokens, no timings
      out.time = arrival + log_uniform(0.002, 5);
      out.finished = true;
      out.finish_reason = engine::FinishReason::kCancelled;
      out.times.finished = out.time;
      metrics.OnOutput(out, absl::InfinitePast());
    } else {
      const absl::Duration queue = log_uniform(0.001, 3);
      const absl::Duration prefill = log_uniform(0.005, 4);
      out.times.first_scheduled = arrival + queue;
      out.times.first_token = out.times.first_scheduled + prefill;
      out.finish_reason = reasons[i % 3];
      fed.ttft.push_back(absl::ToDoubleSeconds(queue + prefill));
      fed.queue.push_back(absl::ToDoubleSeconds(queue));

      absl::Time previous = absl::InfinitePast();
      absl::Time now = out.times.first_token;
      const int count = outputs(rng);
      for (int k = 0; k < count; ++k) {
        engine::EngineOutput step;
        step.request_id = out.request_id;
        const int tokens = k == 0 ? 1 : burst(rng);
        if (k > 0) {
          const absl::Duration gap = log_uniform(0.003, 0.4) * tokens;
          now += gap;
          for (int t = 0; t < tokens; ++t) {
            fed.inter_token.push_back(absl::ToDoubleSeconds(gap) / tokens);
          }
        }
        step.time = now;
        step.times = out.times;  // the times so far, as the engine sends
        step.token_ids.assign(tokens, 7);
        out.usage.completion_tokens += tokens;
        metrics.OnOutput(step, previous);
        previous = now;
      }
      // The last message: a stop id is never returned, so no tokens.
      out.time = now + log_uniform(0.003, 0.4);
      out.finished = true;
      out.times.finished = out.time;
      metrics.OnOutput(out, previous);
    }
    ++fed.finished;
    ++fed.by_reason[std::string(engine::FinishReasonName(out.finish_reason))];
    fed.prompt_tokens += out.usage.prompt_tokens;
    fed.completion_tokens += out.usage.completion_tokens;
    fed.e2e.push_back(absl::ToDoubleSeconds(out.times.finished - arrival));
  }
  return fed;
}

TEST(ServerMetricsTest, EveryDocumentedMetricIsExposedWithHelp) {
  auto metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  const Exposition e(metrics->Serialize());
  const std::pair<const char*, const char*> documented[] = {
      {"hydra_time_to_first_token_seconds", "histogram"},
      {"hydra_inter_token_latency_seconds", "histogram"},
      {"hydra_e2e_request_latency_seconds", "histogram"},
      {"hydra_request_queue_time_seconds", "histogram"},
      {"hydra_step_duration_seconds", "histogram"},
      {"hydra_collective_seconds", "histogram"},
      {"hydra_batch_tokens", "histogram"},
      {"hydra_time_to_first_token_window_seconds", "summary"},
      {"hydra_inter_token_latency_window_seconds", "summary"},
      {"hydra_e2e_request_latency_window_seconds", "summary"},
      {"hydra_requests_running", "gauge"},
      {"hydra_requests_waiting", "gauge"},
      {"hydra_kv_cache_blocks", "gauge"},
      {"hydra_kv_cache_usage_ratio", "gauge"},
      {"hydra_kv_cache_bytes", "gauge"},
      {"hydra_build_info", "gauge"},
      {"hydra_prompt_tokens_total", "counter"},
      {"hydra_generation_tokens_total", "counter"},
      {"hydra_requests_total", "counter"},
      {"hydra_preemptions_total", "counter"},
      {"hydra_prefix_cache_queries_total", "counter"},
      {"hydra_prefix_cache_hits_total", "counter"},
      {"hydra_spec_proposed_tokens_total", "counter"},
      {"hydra_spec_accepted_tokens_total", "counter"},
      {"hydra_spec_acceptance_rate", "gauge"},
      {"hydra_decode_tokens_per_step", "histogram"},
  };
  for (const auto& [name, type] : documented) {
    EXPECT_EQ(e.Type(name), type) << name;
    EXPECT_FALSE(e.Help(name).empty()) << name;
  }
  EXPECT_EQ(e.Get("hydra_build_info{model=\"stories15M\","
                  "tensor_parallel_size=\"2\",version=\"0.1.0-test\"}"),
            1);
  // Every reason exists before its first request, so rate() sees it.
  for (const char* reason :
       {"stop", "length", "cancelled", "deadline", "error"}) {
    for (const char* front_end : {"grpc", "http"}) {
      EXPECT_EQ(
          e.Get(absl::StrCat("hydra_requests_total{finish_reason=\"", reason,
                             "\",front_end=\"", front_end, "\"}")),
          0);
    }
  }
  EXPECT_EQ(e.Get("hydra_kv_cache_bytes{rank=\"1\"}"), 0);
  // The latency buckets reach hours: a 60 s cap would break p99.
  const auto buckets = e.Buckets("hydra_e2e_request_latency_seconds");
  ASSERT_GE(buckets.size(), 3u);
  EXPECT_DOUBLE_EQ(buckets.front().first, 0.001);
  EXPECT_GE(buckets[buckets.size() - 2].first, 3600);
  EXPECT_TRUE(std::isinf(buckets.back().first));
}

TEST(ServerMetricsTest, CountsAndSumsMatchWhatWasFed) {
  auto metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  const Fed fed = FeedRequests(*metrics, 600, 1234);
  const Exposition e(metrics->Serialize());

  const std::pair<const char*, const std::vector<double>*> latencies[] = {
      {"hydra_time_to_first_token_seconds", &fed.ttft},
      {"hydra_inter_token_latency_seconds", &fed.inter_token},
      {"hydra_e2e_request_latency_seconds", &fed.e2e},
      {"hydra_request_queue_time_seconds", &fed.queue},
  };
  for (const auto& [name, values] : latencies) {
    SCOPED_TRACE(name);
    const std::string n = name;
    EXPECT_EQ(e.Get(n + "_count"), values->size());
    EXPECT_EQ(e.Get(n + "_bucket{le=\"+Inf\"}"), values->size());
    EXPECT_NEAR(e.Get(n + "_sum"), Sum(*values), 1e-9 * Sum(*values));
  }
  EXPECT_EQ(e.Get("hydra_e2e_request_latency_seconds_count"), fed.finished);
  for (const char* summary : {"hydra_time_to_first_token_window_seconds",
                              "hydra_e2e_request_latency_window_seconds",
                              "hydra_inter_token_latency_window_seconds"}) {
    const std::string histogram =
        absl::StrReplaceAll(summary, {{"_window_seconds", "_seconds"}});
    EXPECT_EQ(e.Get(absl::StrCat(summary, "_count")),
              e.Get(histogram + "_count"))
        << summary;
    EXPECT_NEAR(e.Get(absl::StrCat(summary, "_sum")), e.Get(histogram + "_sum"),
                1e-6)
        << summary;
  }

  EXPECT_EQ(e.Get("hydra_prompt_tokens_total"), fed.prompt_tokens);
  EXPECT_EQ(e.Get("hydra_generation_tokens_total"), fed.completion_tokens);
  int counted = 0;
  for (const auto& [reason, count] : fed.by_reason) {
    EXPECT_EQ(e.Get(absl::StrCat("hydra_requests_total{finish_reason=\"",
                                 reason, "\",front_end=\"grpc\"}")),
              count)
        << reason;
    counted += count;
  }
  EXPECT_EQ(counted, fed.finished);
  EXPECT_EQ(
      e.Get("hydra_requests_total{finish_reason=\"error\",front_end=\"grpc\"}"),
      0);
}

TEST(ServerMetricsTest, RejectionsAreCountedByReasonAndFrontEnd) {
  auto metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  // Every series exists at 0 before the first refusal.
  EXPECT_EQ(Exposition(metrics->Serialize())
                .Get("hydra_requests_rejected_total{front_end=\"http\","
                     "reason=\"queue_full\"}"),
            0);
  for (int i = 0; i < 3; ++i)
    metrics->OnRejected(absl::StatusCode::kInvalidArgument);
  metrics->OnRejected(absl::StatusCode::kOutOfRange);
  metrics->OnRejected(absl::StatusCode::kResourceExhausted,
                      server::FrontEnd::kHttp);
  metrics->OnRejected(absl::StatusCode::kUnauthenticated,
                      server::FrontEnd::kHttp);
  metrics->OnRejected(absl::StatusCode::kUnavailable);
  const Exposition e(metrics->Serialize());
  auto get = [&](const char* front_end, const char* reason) {
    return e.Get(absl::StrCat("hydra_requests_rejected_total{front_end=\"",
                              front_end, "\",reason=\"", reason, "\"}"));
  };
  EXPECT_EQ(get("grpc", "invalid_argument"), 4);
  EXPECT_EQ(get("http", "invalid_argument"), 0);
  EXPECT_EQ(get("http", "queue_full"), 1);
  EXPECT_EQ(get("http", "unauthenticated"), 1);
  EXPECT_EQ(get("grpc", "unavailable"), 1);
  EXPECT_EQ(get("grpc", "not_found"), 0);
}

TEST(ServerMetricsTest, SummaryAndHistogramP95AgreeWithinOneBucket) {
  auto metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  const Fed fed = FeedRequests(*metrics, 800, 99);
  const Exposition e(metrics->Serialize());
  const std::pair<const char*, const std::vector<double>*> latencies[] = {
      {"hydra_time_to_first_token_seconds", &fed.ttft},
      {"hydra_inter_token_latency_seconds", &fed.inter_token},
      {"hydra_e2e_request_latency_seconds", &fed.e2e},
  };
  for (const auto& [name, values] : latencies) {
    SCOPED_TRACE(name);
    const auto buckets = e.Buckets(name);
    ASSERT_GE(buckets.size(), 2u);
    for (double q : {0.5, 0.95, 0.99}) {
      const double from_histogram = HistogramQuantile(q, buckets);
      const double from_summary = e.SummaryQuantile(
          absl::StrReplaceAll(name, {{"_seconds", "_window_seconds"}}), q);
      const double exact = ExactQuantile(*values, q);
      SCOPED_TRACE(absl::StrCat("q=", q, " histogram=", from_histogram,
                                " summary=", from_summary, " exact=", exact));
      EXPECT_LE(std::abs(BucketIndex(from_histogram, buckets) -
                         BucketIndex(from_summary, buckets)),
                1);
      // The histogram interpolates inside the true quantile's bucket.
      EXPECT_EQ(BucketIndex(from_histogram, buckets),
                BucketIndex(exact, buckets));
      // CKMS (as prometheus-cpp implements it) keeps the rank within
      // 2·error·n of the target, plus an item or two on samples this small.
      const double error = q == 0.99 ? 0.001 : 0.005;
      const double slack = 2 * error + 2.0 / values->size();
      const auto [below, at_most] = RankRange(*values, from_summary);
      EXPECT_GE(at_most, q - slack);
      EXPECT_LE(below, q + slack);
    }
  }
}

// TTFT and queue time are observed when the first token streams, not when
// the request ends: a dashboard sees a slow first token at once.
TEST(ServerMetricsTest, FirstTokenLatencyIsObservedAtTheFirstToken) {
  auto metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  const absl::Time arrival = absl::FromUnixSeconds(1700000000);
  engine::EngineOutput first;
  first.request_id = 1;
  first.times.arrival = arrival;
  first.times.first_scheduled = arrival + absl::Milliseconds(30);
  first.times.first_token = arrival + absl::Milliseconds(250);
  first.time = first.times.first_token;
  first.token_ids = {42};
  metrics->OnOutput(first, absl::InfinitePast());
  {
    const Exposition e(metrics->Serialize());
    EXPECT_EQ(e.Get("hydra_time_to_first_token_seconds_count"), 1);
    EXPECT_NEAR(e.Get("hydra_time_to_first_token_seconds_sum"), 0.25, 1e-12);
    EXPECT_EQ(e.Get("hydra_time_to_first_token_window_seconds_count"), 1);
    EXPECT_EQ(e.Get("hydra_request_queue_time_seconds_count"), 1);
    EXPECT_NEAR(e.Get("hydra_request_queue_time_seconds_sum"), 0.03, 1e-12);
    EXPECT_EQ(e.Get("hydra_e2e_request_latency_seconds_count"), 0);
  }
  // Later outputs, the last one included, observe neither again.
  engine::EngineOutput next = first;
  next.time = first.time + absl::Milliseconds(10);
  metrics->OnOutput(next, first.time);
  engine::EngineOutput last = next;
  last.token_ids.clear();
  last.finished = true;
  last.finish_reason = engine::FinishReason::kStop;
  last.time = next.time + absl::Milliseconds(10);
  last.times.finished = last.time;
  metrics->OnOutput(last, next.time);
  const Exposition e(metrics->Serialize());
  EXPECT_EQ(e.Get("hydra_time_to_first_token_seconds_count"), 1);
  EXPECT_EQ(e.Get("hydra_request_queue_time_seconds_count"), 1);
  EXPECT_EQ(e.Get("hydra_e2e_request_latency_seconds_count"), 1);
  EXPECT_NEAR(e.Get("hydra_e2e_request_latency_seconds_sum"), 0.27, 1e-12);
}

TEST(ServerMetricsTest, StepsFeedDurationAndBatchHistograms) {
  auto metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  // Installed exactly as the engine's observer would be.
  engine::StepObserver observer = [&metrics](const engine::StepReport& step) {
    metrics->OnStep(step);
  };
  // Duration, prefill tokens, decode tokens.
  const std::tuple<absl::Duration, int, int> steps[] = {
      {absl::Microseconds(750), 0, 1},
      {absl::Milliseconds(3), 2, 1},
      {absl::Milliseconds(42), 60, 4},
      {absl::Seconds(1.5), 5000, 0}};  // prefill alone
  double seconds = 0;
  for (const auto& [time, prefill, decode] : steps) {
    observer({.duration = time,
              .prefill_tokens = prefill,
              .decode_tokens = decode});  // a world of one
    seconds += absl::ToDoubleSeconds(time);
  }
  // Two tensor-parallel steps: only these feed the collective histogram.
  observer({.duration = absl::Milliseconds(5),
            .decode_tokens = 8,
            .collective_time = absl::Microseconds(300)});
  observer({.duration = absl::Milliseconds(5),
            .decode_tokens = 8,
            .collective_time = absl::Microseconds(700)});
  seconds += 0.010;
  const Exposition e(metrics->Serialize());
  EXPECT_EQ(e.Get("hydra_collective_seconds_count"), 2);
  EXPECT_NEAR(e.Get("hydra_collective_seconds_sum"), 0.001, 1e-12);
  EXPECT_EQ(e.Get("hydra_step_duration_seconds_count"), 6);
  EXPECT_NEAR(e.Get("hydra_step_duration_seconds_sum"), seconds, 1e-12);
  EXPECT_EQ(e.Get("hydra_batch_tokens_count"), 6);
  EXPECT_EQ(e.Get("hydra_batch_tokens_sum"), 1 + 3 + 64 + 5000 + 16);
  const auto batch = e.Buckets("hydra_batch_tokens");
  ASSERT_EQ(batch.size(), 15u);  // 1, 2, ..., 8192, +Inf
  EXPECT_EQ(batch[0], std::make_pair(1.0, 1.0));
  EXPECT_EQ(batch[2], std::make_pair(4.0, 2.0));
  EXPECT_EQ(batch[6], std::make_pair(64.0, 5.0));
  EXPECT_EQ(batch[13], std::make_pair(8192.0, 6.0));
  const auto step = e.Buckets("hydra_step_duration_seconds");
  EXPECT_EQ(step[0].second, 1);  // 750 µs ≤ 1 ms
  // Split by kind; every step observes both.
  EXPECT_EQ(e.Get("hydra_step_tokens_sum{kind=\"prefill\"}"), 5062);
  EXPECT_EQ(e.Get("hydra_step_tokens_sum{kind=\"decode\"}"), 22);
  EXPECT_EQ(e.Get("hydra_step_tokens_count{kind=\"decode\"}"), 6);
  // Only steps with decodes: not the 1.5 s prefill.
  EXPECT_EQ(e.Get("hydra_decode_step_duration_seconds_count"), 5);
  EXPECT_NEAR(e.Get("hydra_decode_step_duration_seconds_sum"), seconds - 1.5,
              1e-12);
}

TEST(ServerMetricsTest, SpeculativeDecodingFollowsTheEngine) {
  auto metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  engine::StepReport step{.duration = absl::Milliseconds(4),
                          .decode_tokens = 9};
  step.draft_tokens = 6;
  step.tokens_per_decode = {1, 3, 5};
  metrics->OnStep(step);
  engine::EngineStats stats;
  stats.spec_proposed_tokens = 100;
  stats.spec_accepted_tokens = 40;
  metrics->UpdateEngineStats(stats, 0, 1);
  const Exposition e(metrics->Serialize());
  EXPECT_EQ(e.Get("hydra_spec_proposed_tokens_total"), 100);
  EXPECT_EQ(e.Get("hydra_spec_accepted_tokens_total"), 40);
  EXPECT_DOUBLE_EQ(e.Get("hydra_spec_acceptance_rate"), 0.4);
  EXPECT_EQ(e.Get("hydra_decode_tokens_per_step_count"), 3);
  EXPECT_EQ(e.Get("hydra_decode_tokens_per_step_sum"), 9);
  const auto buckets = e.Buckets("hydra_decode_tokens_per_step");
  ASSERT_EQ(buckets.size(), 18u);  // 1 ... 17, +Inf
  EXPECT_EQ(buckets[0], std::make_pair(1.0, 1.0));
  EXPECT_EQ(buckets[2], std::make_pair(3.0, 2.0));
}

TEST(ServerMetricsTest, SchedulingStatsByPriorityAndCostModel) {
  MetricsOptions options;
  options.max_step_ms = 120;
  auto metrics = ServerMetrics::Create(options);
  ASSERT_TRUE(metrics.ok());
  engine::EngineStats stats;
  stats.partial_prefills = 3;
  stats.waiting_by_priority = {{-2, 4}, {5, 1}};
  stats.preemptions_by_priority = {{5, 2}};
  stats.step_cost = {30.0, 0.5, 2e-4, 0.1};
  (*metrics)->UpdateEngineStats(stats, 1, 1);
  stats.waiting_by_priority = {{5, 2}};  // priority -2 no longer waits
  stats.preemptions_by_priority = {{5, 3}, {0, 1}};
  (*metrics)->UpdateEngineStats(stats, 1, 1);
  const Exposition e((*metrics)->Serialize());
  EXPECT_DOUBLE_EQ(e.Get("hydra_step_budget_seconds"), 0.12);
  EXPECT_EQ(e.Get("hydra_partial_prefills"), 3);
  EXPECT_EQ(e.Get("hydra_requests_waiting_by_priority{priority=\"-2\"}"), 0);
  EXPECT_EQ(e.Get("hydra_requests_waiting_by_priority{priority=\"5\"}"), 2);
  EXPECT_EQ(e.Get("hydra_preemptions_by_priority_total{priority=\"5\"}"), 3);
  EXPECT_EQ(e.Get("hydra_preemptions_by_priority_total{priority=\"0\"}"), 1);
  EXPECT_DOUBLE_EQ(e.Get("hydra_step_cost_coefficient{term=\"intercept\"}"),
                   0.030);
  EXPECT_DOUBLE_EQ(e.Get("hydra_step_cost_coefficient{term=\"key_read\"}"),
                   2e-7);
}

TEST(ServerMetricsTest, GaugesFollowTheLastStatsAndCountersNeverDecrease) {
  auto metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  engine::EngineStats busy;
  busy.running = 12;
  busy.waiting = 5;
  busy.kv_used = 300;
  busy.kv_cached = 40;
  busy.kv_free = 60;
  busy.kv_total = 400;
  busy.preemptions = 3;
  busy.prefix_queries = 1000;
  busy.prefix_hits = 250;
  metrics->UpdateEngineStats(busy, 123456789, 2);
  {
    const Exposition e(metrics->Serialize());
    EXPECT_EQ(e.Get("hydra_requests_running"), 12);
    EXPECT_EQ(e.Get("hydra_requests_waiting"), 5);
    EXPECT_EQ(e.Get("hydra_kv_cache_blocks{state=\"used\"}"), 300);
    EXPECT_EQ(e.Get("hydra_kv_cache_blocks{state=\"cached\"}"), 40);
    EXPECT_EQ(e.Get("hydra_kv_cache_blocks{state=\"free\"}"), 60);
    EXPECT_DOUBLE_EQ(e.Get("hydra_kv_cache_usage_ratio"), 0.75);
    EXPECT_EQ(e.Get("hydra_kv_cache_bytes{rank=\"0\"}"), 123456789);
    EXPECT_EQ(e.Get("hydra_kv_cache_bytes{rank=\"1\"}"), 123456789);
    EXPECT_EQ(e.Get("hydra_preemptions_total"), 3);
    EXPECT_EQ(e.Get("hydra_prefix_cache_queries_total"), 1000);
    EXPECT_EQ(e.Get("hydra_prefix_cache_hits_total"), 250);
  }

  // Idle: everything finished, blocks released (full ones stay cached).
  engine::EngineStats idle = busy;
  idle.running = 0;
  idle.waiting = 0;
  idle.kv_used = 0;
  idle.kv_cached = 180;
  idle.kv_free = 220;
  idle.preemptions = 7;
  idle.prefix_queries = 1500;
  idle.prefix_hits = 400;
  metrics->UpdateEngineStats(idle, 123456789, 2);
  metrics->UpdateEngineStats(idle, 123456789, 2);  // no change, no increment
  {
    const Exposition e(metrics->Serialize());
    EXPECT_EQ(e.Get("hydra_requests_running"), 0);
    EXPECT_EQ(e.Get("hydra_requests_waiting"), 0);
    EXPECT_EQ(e.Get("hydra_kv_cache_blocks{state=\"used\"}"), 0);
    EXPECT_EQ(e.Get("hydra_kv_cache_blocks{state=\"cached\"}"), 180);
    EXPECT_EQ(e.Get("hydra_kv_cache_usage_ratio"), 0);
    EXPECT_EQ(e.Get("hydra_preemptions_total"), 7);
    EXPECT_EQ(e.Get("hydra_prefix_cache_queries_total"), 1500);
    EXPECT_EQ(e.Get("hydra_prefix_cache_hits_total"), 400);
  }

  // A new engine counts from zero again: its counts add, none subtract.
  engine::EngineStats restarted;
  restarted.preemptions = 2;
  restarted.prefix_queries = 10;
  restarted.prefix_hits = 0;
  metrics->UpdateEngineStats(restarted, 0, 2);
  const Exposition e(metrics->Serialize());
  EXPECT_EQ(e.Get("hydra_preemptions_total"), 9);
  EXPECT_EQ(e.Get("hydra_prefix_cache_queries_total"), 1510);
  EXPECT_EQ(e.Get("hydra_prefix_cache_hits_total"), 400);
  EXPECT_EQ(e.Get("hydra_kv_cache_usage_ratio"), 0);  // kv_total 0: no NaN
}

TEST(ServerMetricsTest, ConcurrentUpdatesLoseNothing) {
  auto metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  constexpr int kThreads = 4, kRequests = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics, t] {
      FeedRequests(*metrics, kRequests, t);
      for (int i = 0; i < 100; ++i) {
        metrics->OnStep({absl::Milliseconds(1 + i), 0, 1 + i});
        engine::EngineStats stats;
        stats.preemptions = i;  // shared baseline: only checked for no crash
        metrics->UpdateEngineStats(stats, 1, 2);
        if (i % 10 == 0) metrics->Serialize();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const Exposition e(metrics->Serialize());
  EXPECT_EQ(e.Get("hydra_e2e_request_latency_seconds_count"),
            kThreads * kRequests);
  EXPECT_EQ(e.Get("hydra_step_duration_seconds_count"), kThreads * 100);
}

// Finds an executable on PATH, or "".
std::string FindOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", program);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

TEST(ServerMetricsTest, PromtoolAcceptsTheExposition) {
  const std::string promtool = FindOnPath("promtool");
  if (promtool.empty()) {
    GTEST_SKIP() << "promtool is not on PATH (Debian package `prometheus`); "
                    "the exposition was not linted";
  }
  auto fresh = NewMetrics();
  auto fed = NewMetrics();
  ASSERT_NE(fresh, nullptr);
  ASSERT_NE(fed, nullptr);
  FeedRequests(*fed, 50, 7);
  fed->OnStep({absl::Milliseconds(12), 90, 6});
  engine::EngineStats stats;
  stats.kv_used = 3;
  stats.kv_total = 10;
  fed->UpdateEngineStats(stats, 1 << 20, 2);

  // promtool must have nothing to say.
  const std::vector<std::string> accepted;
  for (ServerMetrics* metrics : {fresh.get(), fed.get()}) {
    const std::string file = testing::TempDir() + "/hydra_metrics.prom";
    std::ofstream(file) << metrics->Serialize();
    const std::string command =
        absl::StrCat(promtool, " check metrics < ", file, " 2>&1");
    FILE* pipe = popen(command.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string output;
    char buffer[4096];
    for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) {
      output.append(buffer, n);
    }
    const int status = pclose(pipe);
    ASSERT_TRUE(WIFEXITED(status)) << output;
    int problems = 0;
    for (absl::string_view line :
         absl::StrSplit(output, '\n', absl::SkipEmpty())) {
      EXPECT_NE(std::find(accepted.begin(), accepted.end(), line),
                accepted.end())
          << "promtool: " << line;
      ++problems;
    }
    // promtool exits 3 for lint problems only, other failures differ.
    EXPECT_EQ(WEXITSTATUS(status), problems == 0 ? 0 : 3) << output;
  }
}

// GET over a plain socket; returns the whole response ("" on failure).
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  absl::Cleanup closer = [fd] { close(fd); };
  const timeval timeout = {.tv_sec = 10, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
    return "";
  // HTTP/1.0: the server closes the connection after the response.
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n =
        send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return "";
    sent += n;
  }
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof(buffer), 0)) > 0;) {
    response.append(buffer, n);
  }
  return response;
}

TEST(ServerMetricsTest, ServesMetricsOverHttpOnAnEphemeralPort) {
  auto metrics = NewMetrics("127.0.0.1:0");
  ASSERT_NE(metrics, nullptr);
  const int port = metrics->port();
  ASSERT_GT(port, 0);
  metrics->OnStep({absl::Milliseconds(5), 16, 1});
  const std::string response = HttpGet(port, "/metrics");
  EXPECT_TRUE(absl::StartsWith(response, "HTTP/1.1 200") ||
              absl::StartsWith(response, "HTTP/1.0 200"))
      << response.substr(0, 200);
  EXPECT_TRUE(absl::StrContains(response, "\nhydra_build_info{")) << response;
  EXPECT_TRUE(absl::StrContains(response, "hydra_batch_tokens_count 1"));
}

TEST(ServerMetricsTest, BindFailureNamesTheAddress) {
  auto first = NewMetrics("127.0.0.1:0");
  ASSERT_NE(first, nullptr);
  const std::string taken = absl::StrCat("127.0.0.1:", first->port());
  absl::StatusOr<std::unique_ptr<ServerMetrics>> second =
      ServerMetrics::Create({.listen_address = taken,
                             .model_name = "m",
                             .tensor_parallel_size = 1,
                             .version = "v"});
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::StrContains(second.status().message(), taken))
      << second.status();
}

}  // namespace
}  // namespace hydra::server
