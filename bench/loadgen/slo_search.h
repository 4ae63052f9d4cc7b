// "How many requests per second does this deployment hold at p95 TTFT under
// X ms?": the highest open-loop request rate whose run meets a latency SLO,
// found by doubling until a run fails, then bisecting.
#ifndef HYDRA_BENCH_LOADGEN_SLO_SEARCH_H_
#define HYDRA_BENCH_LOADGEN_SLO_SEARCH_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/loadgen/request_record.h"

namespace hydra::loadgen {

// p95 bounds in milliseconds; 0 leaves that figure unchecked. A run with any
// failed request never meets the SLO, nor one whose server fell behind: a
// rate above capacity fills the queue, and a short run would see only the
// start of that growth, so completions per second must reach
// `min_keep_up` x the rate requests were sent at.
struct SloTarget {
  double ttft_p95_ms = 0;
  double itl_p95_ms = 0;
  double e2e_p95_ms = 0;
  double min_keep_up = 0.9;

  bool any() const {
    return ttft_p95_ms > 0 || itl_p95_ms > 0 || e2e_p95_ms > 0;
  }
  std::string ToString() const;
};

// Whether `run` meets `target`; when not, `why` says which bound it missed.
bool MeetsSlo(const RunSummary& run, const SloTarget& target, std::string* why);

struct SloSearchOptions {
  double start_rate = 1;    // first rate tried, requests/s
  double max_rate = 1000;   // never tried above this
  double tolerance = 0.05;  // stop when (fail - pass) / fail is below this
  int max_probes = 12;
};

struct SloProbe {
  double rate = 0;
  bool passed = false;
};

struct SloSearchResult {
  double best_rate = 0;           // highest rate that passed; 0 if none did
  double lowest_failed_rate = 0;  // 0 if every probe passed
  std::vector<SloProbe> probes;
};

// `probe(rate)` runs the server at `rate` and says whether it met the SLO;
// an error from it ends the search. Assumes that meeting the SLO is monotone
// in the rate, as queueing makes it.
absl::StatusOr<SloSearchResult> SearchMaxRate(
    const SloSearchOptions& options,
    const std::function<absl::StatusOr<bool>(double rate)>& probe);

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_SLO_SEARCH_H_
