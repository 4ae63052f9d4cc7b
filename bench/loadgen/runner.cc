#include "bench/loadgen/runner.h"

#include <sys/resource.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/loadgen/arrivals.h"
#include "bench/loadgen/stats.h"

namespace hydra::loadgen {
namespace {

constexpr absl::Duration kProgressInterval = absl::Milliseconds(250);

double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

absl::Time ToAbsl(Clock::time_point t) {
  return absl::Now() + absl::FromChrono(t - Clock::now());
}

// Shared with the calls' callbacks, which may run a moment after the phase
// has seen its last completion; hence shared ownership.
struct PhaseState {
  absl::Mutex mu;
  int64_t in_flight ABSL_GUARDED_BY(mu) = 0;
  std::vector<RequestRecord> records ABSL_GUARDED_BY(mu);
  Progress progress ABSL_GUARDED_BY(mu);
  std::vector<double> ttft_ms ABSL_GUARDED_BY(mu);
};

}  // namespace

std::string PhaseSpec::Label() const {
  if (mode == Mode::kClosedLoop)
    return absl::StrCat("concurrency ", concurrency);
  return absl::StrCat("rate ", request_rate, "/s (", arrival, ")");
}

Runner::Runner(Backend& backend, const Workload& workload,
               RequestOptions options)
    : backend_(backend), workload_(workload), options_(std::move(options)) {}

absl::StatusOr<PhaseResult> Runner::Run(
    const PhaseSpec& spec,
    const std::function<void(const Progress&)>& on_progress) {
  const bool open = spec.mode == PhaseSpec::Mode::kOpenLoop;
  if (spec.num_requests <= 0 && spec.duration_s <= 0) {
    return absl::InvalidArgumentError(
        "a run needs a bound: --num_requests > 0, --duration > 0, or both");
  }
  if (!open && spec.concurrency < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--concurrency must be >= 1 (got ", spec.concurrency, ")"));
  }
  std::optional<ArrivalProcess> arrivals;
  if (open) {
    absl::StatusOr<ArrivalProcess> a =
        ArrivalProcess::Create(spec.arrival, spec.request_rate, spec.seed);
    if (!a.ok()) return a.status();
    arrivals = *std::move(a);
  }
  const int64_t cap =
      open ? (spec.max_concurrency > 0 ? spec.max_concurrency : INT64_MAX)
           : spec.concurrency;

  auto state = std::make_shared<PhaseState>();
  const Clock::time_point start = Clock::now();
  const double cpu_start = CpuSeconds();
  std::optional<Clock::time_point> stop_at;
  if (spec.duration_s > 0) {
    stop_at = start + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(spec.duration_s));
  }
  const auto timeout = std::chrono::milliseconds(
      static_cast<int64_t>(options_.timeout_s * 1000));

  auto report = [&] {
    if (!on_progress) return;
    Progress p;
    {
      absl::MutexLock lock(&state->mu);
      p = state->progress;
      p.in_flight = state->in_flight;
      p.ttft_p95_ms = Percentile(state->ttft_ms, 95);
    }
    p.target = spec.num_requests;
    p.elapsed_s = Seconds(Clock::now() - start);
    on_progress(p);
  };
  // Blocks until `ready` holds or `until` passes, reporting progress
  // meanwhile. Returns whether `ready` held.
  auto wait = [&](auto ready, std::optional<Clock::time_point> until) {
    while (true) {
      absl::Time deadline = absl::Now() + kProgressInterval;
      if (until) deadline = std::min(deadline, ToAbsl(*until));
      bool held;
      {
        absl::MutexLock lock(&state->mu);
        held = state->mu.AwaitWithDeadline(absl::Condition(&ready), deadline);
      }
      if (held) return true;
      if (until && Clock::now() >= *until) return false;
      report();
    }
  };

  double next_arrival_s = 0;
  int64_t issued = 0;
  while (spec.num_requests <= 0 || issued < spec.num_requests) {
    if (open) {
      if (issued > 0) next_arrival_s += arrivals->NextGapSeconds();
      const Clock::time_point at =
          start + std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(next_arrival_s));
      if (stop_at && at >= *stop_at) break;
      wait([] { return false; }, at);
    }
    const bool slot = wait([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                               state->mu) { return state->in_flight < cap; },
                           stop_at);
    if (!slot || (stop_at && Clock::now() >= *stop_at)) break;

    const Prompt prompt = workload_.Make(next_prompt_++);
    const StreamRequest request{prompt.text, prompt.max_tokens,
                                options_.temperature, options_.ignore_eos,
                                timeout};
    {
      absl::MutexLock lock(&state->mu);
      ++state->in_flight;
    }
    backend_.StartStream(
        request, start, issued,
        [state, request_class = prompt.request_class](RequestRecord r) {
          r.request_class = request_class;
          absl::MutexLock lock(&state->mu);
          Progress& p = state->progress;
          ++p.done;
          if (r.ok()) {
            p.output_tokens += r.output_tokens;
            if (r.ttft_ms >= 0) state->ttft_ms.push_back(r.ttft_ms);
          } else {
            ++p.failed;
          }
          state->records.push_back(std::move(r));
          --state->in_flight;
        });
    ++issued;
  }
  wait([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(
           state->mu) { return state->in_flight == 0; },
       std::nullopt);
  report();

  PhaseResult result;
  result.spec = spec;
  result.duration_s = Seconds(Clock::now() - start);
  result.client_cpu_cores = (CpuSeconds() - cpu_start) / result.duration_s;
  {
    absl::MutexLock lock(&state->mu);
    result.records = std::move(state->records);
  }
  std::sort(result.records.begin(), result.records.end(),
            [](const RequestRecord& a, const RequestRecord& b) {
              return a.index < b.index;
            });
  result.summary = SummarizeRun(result.records, result.duration_s);
  if (const std::vector<std::string> names = workload_.ClassNames();
      !names.empty()) {
    result.classes = SummarizeByClass(result.records, result.duration_s, names);
  }
  return result;
}

}  // namespace hydra::loadgen
