// Runs one measured phase against a server: a closed loop that keeps N calls
// in flight, or an open loop that sends at a request rate whatever the
// server's state. Every phase stops by itself: after its request count,
// after its duration (calls in flight then are waited for), or both.
#ifndef HYDRA_BENCH_LOADGEN_RUNNER_H_
#define HYDRA_BENCH_LOADGEN_RUNNER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/loadgen/backend.h"
#include "bench/loadgen/request_record.h"
#include "bench/loadgen/workload.h"

namespace hydra::loadgen {

struct PhaseSpec {
  enum class Mode { kClosedLoop, kOpenLoop };
  Mode mode = Mode::kClosedLoop;
  int concurrency = 1;              // closed loop: calls kept in flight
  double request_rate = 0;          // open loop: requests per second
  std::string arrival = "poisson";  // open loop: poisson or constant
  int max_concurrency = 0;   // open loop: cap on calls in flight (0: none)
  int64_t num_requests = 0;  // 0: bounded by duration only
  double duration_s = 0;     // 0: bounded by num_requests only
  uint64_t seed = 0;

  std::string Label() const;  // "concurrency 16" or "rate 4/s (poisson)"
};

// What every request carries besides its prompt.
struct RequestOptions {
  float temperature = 0;
  bool ignore_eos = true;
  double timeout_s = 300;
};

// What the progress line shows, while a phase runs.
struct Progress {
  int64_t done = 0, failed = 0, in_flight = 0, target = 0;  // target 0: none
  double elapsed_s = 0;
  int64_t output_tokens = 0;
  double ttft_p95_ms = 0;
};

struct PhaseResult {
  PhaseSpec spec;
  std::vector<RequestRecord> records;  // in issue order
  double duration_s = 0;
  double client_cpu_cores = 0;  // this process, over the phase
  RunSummary summary;
  std::vector<ClassSummary> classes;  // per --mix class; empty without one
};

class Runner {
 public:
  // Streams through `backend` (which has waited for its model), which
  // outlives the runner.
  Runner(Backend& backend, const Workload& workload, RequestOptions options);

  // `on_progress`, if set, is called about 4 times a second.
  absl::StatusOr<PhaseResult> Run(
      const PhaseSpec& spec,
      const std::function<void(const Progress&)>& on_progress = nullptr);

 private:
  Backend& backend_;
  const Workload& workload_;
  RequestOptions options_;
  uint64_t next_prompt_ = 0;  // across phases: no prompt is sent twice
};

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_RUNNER_H_
