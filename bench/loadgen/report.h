// The load generator's outputs: a readable table per run and per sweep, the
// summary as JSON, and one line per request as CSV or JSONL.
#ifndef HYDRA_BENCH_LOADGEN_REPORT_H_
#define HYDRA_BENCH_LOADGEN_REPORT_H_

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/loadgen/runner.h"
#include "nlohmann/json.hpp"

namespace hydra::loadgen {

void PrintPhase(const PhaseResult& phase, std::FILE* out);
// One row per phase: the sweep at a glance.
void PrintSweep(const std::vector<PhaseResult>& phases, std::FILE* out);

nlohmann::json LatencyJson(const LatencySummary& s);
nlohmann::json PhaseJson(const PhaseResult& phase);

// Which per-request format a path asks for, by its extension.
enum class RequestsFormat { kCsv, kJsonl };
absl::StatusOr<RequestsFormat> RequestsFormatOf(const std::string& path);

// Every request of every phase; the `run` column indexes `phases` as the
// summary's "runs" array does.
absl::Status WriteRequests(const std::string& path,
                           const std::vector<PhaseResult>& phases);

absl::Status WriteJson(const std::string& path, const nlohmann::json& j);

// A one-line progress display on a terminal, redrawn in place.
class ProgressLine {
 public:
  explicit ProgressLine(std::FILE* out) : out_(out) {}
  void Update(const std::string& label, const Progress& p);
  void Finish();  // ends the line, if one was drawn

 private:
  std::FILE* out_;
  bool drawn_ = false;
};

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_REPORT_H_
