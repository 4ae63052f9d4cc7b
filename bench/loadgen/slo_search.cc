#include "bench/loadgen/slo_search.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace hydra::loadgen {

std::string SloTarget::ToString() const {
  std::vector<std::string> parts;
  if (ttft_p95_ms > 0)
    parts.push_back(absl::StrCat("p95 TTFT <= ", ttft_p95_ms, " ms"));
  if (itl_p95_ms > 0)
    parts.push_back(absl::StrCat("p95 ITL <= ", itl_p95_ms, " ms"));
  if (e2e_p95_ms > 0)
    parts.push_back(absl::StrCat("p95 E2E <= ", e2e_p95_ms, " ms"));
  return absl::StrJoin(parts, ", ");
}

bool MeetsSlo(const RunSummary& run, const SloTarget& target,
              std::string* why) {
  std::vector<std::string> missed;
  if (run.failed > 0)
    missed.push_back(absl::StrCat(run.failed, " failed requests"));
  if (run.completed == 0) missed.push_back("no request completed");
  auto check = [&](const char* name, double bound, double value) {
    if (bound > 0 && value > bound) {
      missed.push_back(
          absl::StrFormat("p95 %s %.1f ms > %g ms", name, value, bound));
    }
  };
  if (run.sent_per_s > 0 &&
      run.requests_per_s < target.min_keep_up * run.sent_per_s) {
    missed.push_back(absl::StrFormat(
        "completed %.2f req/s while %.2f req/s were sent (< %g of it): the "
        "queue grows",
        run.requests_per_s, run.sent_per_s, target.min_keep_up));
  }
  check("TTFT", target.ttft_p95_ms, run.ttft_ms.p95);
  check("ITL", target.itl_p95_ms, run.itl_ms.p95);
  check("E2E", target.e2e_p95_ms, run.e2e_ms.p95);
  if (why != nullptr) *why = absl::StrJoin(missed, "; ");
  return missed.empty();
}

absl::StatusOr<SloSearchResult> SearchMaxRate(
    const SloSearchOptions& options,
    const std::function<absl::StatusOr<bool>(double rate)>& probe) {
  if (!(options.start_rate > 0) || options.max_rate < options.start_rate) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SLO search needs 0 < --slo_start_rate <= --slo_max_rate (got ",
        options.start_rate, " and ", options.max_rate, ")"));
  }
  SloSearchResult result;
  double pass = 0, fail = 0;  // 0: not known yet
  auto run = [&](double rate) -> absl::StatusOr<bool> {
    absl::StatusOr<bool> ok = probe(rate);
    if (!ok.ok()) return ok.status();
    result.probes.push_back({rate, *ok});
    (*ok ? pass : fail) = rate;
    return *ok;
  };
  auto budget_left = [&] {
    return static_cast<int>(result.probes.size()) < options.max_probes;
  };
  // Bracket: double up from the start rate until a run misses the SLO.
  for (double rate = options.start_rate; budget_left();
       rate = std::min(rate * 2, options.max_rate)) {
    absl::StatusOr<bool> ok = run(rate);
    if (!ok.ok()) return ok.status();
    if (!*ok || rate >= options.max_rate) break;
  }
  // If even the start rate failed, look below it: halve until one passes.
  while (pass == 0 && fail > 0 && budget_left() &&
         fail > options.start_rate / 64) {
    absl::StatusOr<bool> ok = run(fail / 2);
    if (!ok.ok()) return ok.status();
  }
  // Bisect between the best pass and the lowest fail.
  while (pass > 0 && fail > 0 && budget_left() &&
         (fail - pass) / fail > options.tolerance) {
    absl::StatusOr<bool> ok = run((pass + fail) / 2);
    if (!ok.ok()) return ok.status();
  }
  result.best_rate = pass;
  result.lowest_failed_rate = fail;
  return result;
}

}  // namespace hydra::loadgen
