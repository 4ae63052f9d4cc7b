// What the load generator measures for one request, and the figures of a
// whole run computed from those records.
#ifndef HYDRA_BENCH_LOADGEN_REQUEST_RECORD_H_
#define HYDRA_BENCH_LOADGEN_REQUEST_RECORD_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/loadgen/stats.h"

namespace hydra::loadgen {

struct RequestRecord {
  int64_t index = 0;    // issue order within its run
  double start_s = 0;   // when it was sent, seconds after the run started
  double ttft_ms = -1;  // time to the first message carrying a token; -1: none
  double e2e_ms = 0;    // send to the end of the call
  // One gap per token after the first. A message carrying k tokens splits its
  // gap evenly among them, as the server's own histogram does.
  std::vector<double> itl_ms;
  int input_tokens = 0;  // as the server counted them (usage)
  int cached_input_tokens = 0;
  int output_tokens = 0;  // streamed
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string error;          // the server's message when code != OK
  std::string finish_reason;  // e.g. "length"; empty when failed
  std::string request_class;  // --mix's class; empty without one

  bool ok() const { return code == absl::StatusCode::kOk; }
  // Time per output token after the first: (e2e - ttft) / (output - 1); 0
  // when fewer than two tokens came.
  double tpot_ms() const;
};

// Figures of one run. Only successful requests contribute latencies and
// tokens, so that a burst of fast failures cannot flatter the percentiles.
struct RunSummary {
  int64_t issued = 0;
  int64_t completed = 0;  // status OK
  int64_t failed = 0;
  std::map<std::string, int64_t> errors;              // by gRPC status name
  std::map<std::string, std::string> error_examples;  // first message of each
  double duration_s = 0;  // first send to last completion
  int64_t input_tokens = 0;
  int64_t cached_input_tokens = 0;
  int64_t output_tokens = 0;
  double requests_per_s = 0;
  double output_tokens_per_s = 0;
  double total_tokens_per_s = 0;  // input + output
  // Requests sent per second over the sending span: what an open loop really
  // offered (a short Poisson run strays from its rate).
  double sent_per_s = 0;
  LatencySummary ttft_ms, itl_ms, tpot_ms, e2e_ms;
};

RunSummary SummarizeRun(const std::vector<RequestRecord>& records,
                        double duration_s);

// One request class's figures within a run; rates are over the whole run's
// duration, so the classes' requests/s add up to the run's.
struct ClassSummary {
  std::string name;
  RunSummary summary;
};

// A summary per class in `names` order, each present even when no request
// drew it (counts 0), then any class the records hold but `names` lacks.
std::vector<ClassSummary> SummarizeByClass(
    const std::vector<RequestRecord>& records, double duration_s,
    const std::vector<std::string>& names);

// "UNAVAILABLE" for kUnavailable: the gRPC spelling of a status code.
std::string StatusName(absl::StatusCode code);

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_REQUEST_RECORD_H_
