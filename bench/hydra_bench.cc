// hydra-bench: closed-loop load generator against a running hydra server.
// --concurrency threads each keep one GenerateStream call in flight, back to
// back, until --requests calls have been made (or --duration_seconds have
// passed). Reports requests/s, output tokens/s and exact p50/p95/p99 of time
// to first token (TTFT), inter-token latency (ITL) and end-to-end latency;
// with --server_pid, the server's CPU time per output token.
//
// Usage: hydra-bench --target=127.0.0.1:50051 --concurrency=32
//            [--server_pid=PID] [--json]
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "bench/latency_stats.h"
#include "grpcpp/grpcpp.h"
#include "hydra/v1/inference.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "Server address host:port");
ABSL_FLAG(int, concurrency, 8, "Streams in flight (one thread each)");
ABSL_FLAG(int, requests, 0, "Measured requests; 0 = 4 x --concurrency");
ABSL_FLAG(double, duration_seconds, 0,
          "When > 0, issue requests for this long instead of --requests "
          "(calls in flight at the end are still waited for and counted)");
ABSL_FLAG(int, warmup_requests, 8, "Unmeasured requests run first");
ABSL_FLAG(std::string, prompt, "Once upon a time", "Prompt of every request");
ABSL_FLAG(int, max_tokens, 128, "New tokens per request");
ABSL_FLAG(float, temperature, 0, "Sampling temperature; 0 = greedy");
ABSL_FLAG(bool, ignore_eos, true,
          "Generate past end-of-sequence, so every request makes max_tokens");
ABSL_FLAG(std::string, api_key, "", "Sent as 'authorization: Bearer <key>'");
ABSL_FLAG(int, connections, 1,
          "TCP connections the streams are spread over (round robin)");
ABSL_FLAG(double, request_timeout_seconds, 300, "Deadline of each call");
ABSL_FLAG(int, server_pid, 0,
          "When set, the server's CPU time is read from /proc/PID/stat before "
          "and after the measured run");
ABSL_FLAG(bool, json, false, "Also print the summary as one JSON line");

namespace hydra::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// What one worker records; merged after the run so the hot loop takes no
// lock.
struct Samples {
  std::vector<double> ttft_ms, itl_ms, e2e_ms;
  int64_t ok = 0;
  int64_t output_tokens = 0;
  // Calls whose usage.completion_tokens differs from the tokens streamed: a
  // server bug, not a latency figure, so only counted.
  int64_t usage_mismatches = 0;
  std::map<grpc::StatusCode, int64_t> errors;
  std::map<v1::FinishReason, int64_t> finish_reasons;

  void Merge(const Samples& o) {
    ttft_ms.insert(ttft_ms.end(), o.ttft_ms.begin(), o.ttft_ms.end());
    itl_ms.insert(itl_ms.end(), o.itl_ms.begin(), o.itl_ms.end());
    e2e_ms.insert(e2e_ms.end(), o.e2e_ms.begin(), o.e2e_ms.end());
    ok += o.ok;
    output_tokens += o.output_tokens;
    usage_mismatches += o.usage_mismatches;
    for (const auto& [code, n] : o.errors) errors[code] += n;
    for (const auto& [reason, n] : o.finish_reasons)
      finish_reasons[reason] += n;
  }
};

// One streaming call. Only successful calls contribute latencies and tokens,
// so that a burst of fast failures cannot flatter the percentiles.
void RunOne(v1::Inference::Stub& stub, const v1::GenerateRequest& request,
            Samples& out) {
  grpc::ClientContext context;
  context.set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(
          absl::GetFlag(FLAGS_request_timeout_seconds) * 1000)));
  if (!absl::GetFlag(FLAGS_api_key).empty()) {
    context.AddMetadata("authorization",
                        "Bearer " + absl::GetFlag(FLAGS_api_key));
  }
  const Clock::time_point start = Clock::now();
  Clock::time_point last = start;
  std::optional<double> ttft;
  std::vector<double> itl;
  itl.reserve(request.stopping().max_tokens());
  int64_t tokens = 0, usage_tokens = -1;
  v1::FinishReason reason = v1::FINISH_REASON_UNSPECIFIED;

  auto reader = stub.GenerateStream(&context, request);
  v1::GenerateStreamResponse message;
  while (reader->Read(&message)) {
    if (message.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      reason = message.finish_reason();
      usage_tokens = message.usage().completion_tokens();
    }
    const int n = message.token_ids_size();
    if (n == 0) continue;  // e.g. held-back text only: no new token
    const Clock::time_point now = Clock::now();
    if (!ttft) {
      ttft = Ms(now - start);
    } else {
      // A message carries every token of the steps since the previous one;
      // each gets an equal share of the gap, so percentiles are per token.
      const double per_token = Ms(now - last) / n;
      itl.insert(itl.end(), n, per_token);
    }
    last = now;
    tokens += n;
  }
  const grpc::Status status = reader->Finish();
  const double e2e = Ms(Clock::now() - start);
  if (!status.ok()) {
    ++out.errors[status.error_code()];
    return;
  }
  ++out.ok;
  ++out.finish_reasons[reason];
  out.output_tokens += tokens;
  if (usage_tokens != tokens) ++out.usage_mismatches;
  if (ttft) out.ttft_ms.push_back(*ttft);
  out.itl_ms.insert(out.itl_ms.end(), itl.begin(), itl.end());
  out.e2e_ms.push_back(e2e);
}

// Runs `threads` workers, each making calls back to back until `total` calls
// have been started (total 0: no limit) or `stop_at` has passed.
Samples RunPhase(const std::vector<std::unique_ptr<v1::Inference::Stub>>& stubs,
                 const v1::GenerateRequest& request, int threads, int64_t total,
                 std::optional<Clock::time_point> stop_at) {
  std::atomic<int64_t> next{0};
  absl::Mutex mu;
  Samples all;
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&, i] {
      v1::Inference::Stub& stub = *stubs[i % stubs.size()];
      Samples mine;
      while (true) {
        if (stop_at && Clock::now() >= *stop_at) break;
        if (total > 0 && next.fetch_add(1) >= total) break;
        RunOne(stub, request, mine);
      }
      absl::MutexLock lock(&mu);
      all.Merge(mine);
    });
  }
  for (std::thread& t : workers) t.join();
  return all;
}

// utime + stime of every thread of a process, from /proc/PID/stat.
std::optional<double> ProcessCpuSeconds(int pid) {
  std::ifstream file(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(file, line)) return std::nullopt;
  // The command name (field 2) may hold spaces; fields restart after ')'.
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(paren + 1));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

double SelfCpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

std::string Json(const LatencySummary& s) {
  char buf[160];
  std::snprintf(buf, sizeof(buf),
                "{\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"mean\":%.3f,"
                "\"max\":%.3f,\"n\":%zu}",
                s.p50, s.p95, s.p99, s.mean, s.max, s.count);
  return buf;
}

int Main() {
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const double duration = absl::GetFlag(FLAGS_duration_seconds);
  const int64_t requests = duration > 0 ? 0
                                        : (absl::GetFlag(FLAGS_requests) > 0
                                               ? absl::GetFlag(FLAGS_requests)
                                               : int64_t{4} * concurrency);
  if (concurrency < 1 || absl::GetFlag(FLAGS_connections) < 1) {
    std::fprintf(stderr, "--concurrency and --connections must be >= 1\n");
    return 2;
  }

  // Each channel gets its own subchannel pool, hence its own TCP connection;
  // otherwise gRPC would share one connection among identical channels.
  std::vector<std::unique_ptr<v1::Inference::Stub>> stubs;
  for (int i = 0; i < absl::GetFlag(FLAGS_connections); ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel(
        absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                   std::chrono::seconds(10))) {
      std::fprintf(stderr, "cannot connect to %s\n",
                   absl::GetFlag(FLAGS_target).c_str());
      return 1;
    }
    stubs.push_back(v1::Inference::NewStub(channel));
  }

  v1::GenerateRequest request;
  request.set_prompt(absl::GetFlag(FLAGS_prompt));
  request.mutable_sampling()->set_temperature(absl::GetFlag(FLAGS_temperature));
  request.mutable_stopping()->set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  request.mutable_stopping()->set_ignore_eos(absl::GetFlag(FLAGS_ignore_eos));

  const int warmup = absl::GetFlag(FLAGS_warmup_requests);
  if (warmup > 0) {
    const Samples w =
        RunPhase(stubs, request, std::min(warmup, concurrency), warmup, {});
    if (w.ok == 0) {
      std::fprintf(stderr, "every warm-up request failed (%lld)\n",
                   static_cast<long long>(warmup));
      return 1;
    }
  }

  const int pid = absl::GetFlag(FLAGS_server_pid);
  const std::optional<double> server_cpu_before =
      pid > 0 ? ProcessCpuSeconds(pid) : std::nullopt;
  if (pid > 0 && !server_cpu_before) {
    std::fprintf(stderr, "cannot read /proc/%d/stat\n", pid);
    return 1;
  }
  const double self_cpu_before = SelfCpuSeconds();
  const Clock::time_point start = Clock::now();
  std::optional<Clock::time_point> stop_at;
  if (duration > 0) {
    stop_at =
        start + std::chrono::microseconds(static_cast<int64_t>(duration * 1e6));
  }
  Samples s = RunPhase(stubs, request, concurrency, requests, stop_at);
  const double seconds = Ms(Clock::now() - start) / 1e3;
  const double client_cores = (SelfCpuSeconds() - self_cpu_before) / seconds;
  std::optional<double> server_cpu;
  if (pid > 0) {
    const std::optional<double> after = ProcessCpuSeconds(pid);
    if (after) server_cpu = *after - *server_cpu_before;
  }

  const LatencySummary ttft = Summarize(s.ttft_ms), itl = Summarize(s.itl_ms),
                       e2e = Summarize(s.e2e_ms);
  int64_t failed = 0;
  std::vector<std::string> error_text, error_json;
  for (const auto& [code, n] : s.errors) {
    failed += n;
    error_text.push_back(absl::StrCat(
        absl::StatusCodeToString(static_cast<absl::StatusCode>(code)), " ", n));
    error_json.push_back(absl::StrCat(
        "\"", absl::StatusCodeToString(static_cast<absl::StatusCode>(code)),
        "\":", n));
  }
  std::vector<std::string> reasons;
  for (const auto& [reason, n] : s.finish_reasons) {
    reasons.push_back(absl::StrCat(v1::FinishReason_Name(reason), " ", n));
  }
  const double rps = s.ok / seconds, tps = s.output_tokens / seconds;

  std::printf(
      "target %s, concurrency %d, prompt \"%s\", max_tokens %d, "
      "temperature %g, ignore_eos %s\n",
      absl::GetFlag(FLAGS_target).c_str(), concurrency,
      absl::GetFlag(FLAGS_prompt).c_str(), absl::GetFlag(FLAGS_max_tokens),
      absl::GetFlag(FLAGS_temperature),
      absl::GetFlag(FLAGS_ignore_eos) ? "true" : "false");
  std::printf("%lld ok, %lld failed in %.2f s (finish: %s)\n",
              static_cast<long long>(s.ok), static_cast<long long>(failed),
              seconds, absl::StrJoin(reasons, ", ").c_str());
  std::printf("throughput: %.2f requests/s, %.0f output tokens/s\n", rps, tps);
  std::printf("| ms | p50 | p95 | p99 | mean | max | samples |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& [name, l] : {std::pair{"TTFT", ttft}, std::pair{"ITL", itl},
                                std::pair{"e2e", e2e}}) {
    std::printf("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %zu |\n", name,
                l.p50, l.p95, l.p99, l.mean, l.max, l.count);
  }
  if (server_cpu) {
    std::printf(
        "server CPU: %.1f s = %.2f cores, %.3f CPU-ms per output token\n",
        *server_cpu, *server_cpu / seconds,
        s.output_tokens ? 1e3 * *server_cpu / s.output_tokens : 0.0);
  }
  // This process competes with the server when both share a machine.
  std::printf("load generator CPU: %.2f cores\n", client_cores);
  if (failed > 0) {
    std::printf("errors: %s\n", absl::StrJoin(error_text, ", ").c_str());
  }
  if (s.usage_mismatches > 0) {
    std::printf("WARNING: %lld calls streamed a token count != usage\n",
                static_cast<long long>(s.usage_mismatches));
  }

  if (absl::GetFlag(FLAGS_json)) {
    std::string line = absl::StrCat(
        "{\"concurrency\":", concurrency, ",\"ok\":", s.ok,
        ",\"failed\":", failed, ",\"errors\":{", absl::StrJoin(error_json, ","),
        "},\"seconds\":", seconds, ",\"requests_per_s\":", rps,
        ",\"output_tokens\":", s.output_tokens,
        ",\"output_tokens_per_s\":", tps, ",\"ttft_ms\":", Json(ttft),
        ",\"itl_ms\":", Json(itl), ",\"e2e_ms\":", Json(e2e),
        ",\"client_cpu_cores\":", client_cores);
    if (server_cpu) {
      absl::StrAppend(
          &line, ",\"server_cpu_cores\":", *server_cpu / seconds,
          ",\"server_cpu_ms_per_token\":",
          s.output_tokens ? 1e3 * *server_cpu / s.output_tokens : 0.0);
    }
    absl::StrAppend(&line, ",\"usage_mismatches\":", s.usage_mismatches, "}");
    std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
  // Nonzero on any failed call, so a script cannot mistake a partly failed
  // run for a clean one.
  return failed > 0 || s.ok == 0 ? 1 : 0;
}

}  // namespace
}  // namespace hydra::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return hydra::bench::Main();
}
