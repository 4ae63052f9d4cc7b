// hydra-bench: a load generator for any hydra server, over GenerateStream
// (gRPC) or, with --api=openai, over the OpenAI-compatible HTTP API
// (streamed POST /v1/completions).
//
//   closed loop:  hydra-bench --target=HOST:PORT --concurrency=16
//   open loop:    hydra-bench --target=HOST:PORT --request_rate=4
//                 [--arrival=poisson]
//   sweep:        --concurrency=1,4,16,64  or  --request_rate=1,2,4,8
//   SLO search:   --slo_ttft_p95_ms=1000 [--slo_itl_p95_ms=100]
//   classes:      --mix=doc:0.1:1000-2000:32,chat:0.9:16-64:64
//
// Prints a table per run (and per sweep), and writes the summary as JSON
// (--json_out) and every request as CSV or JSONL (--requests_out). Exits 0
// when every measured request succeeded, 1 otherwise, 2 on bad flags.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/loadgen/backend.h"
#include "bench/loadgen/connection.h"
#include "bench/loadgen/grpc_backend.h"
#include "bench/loadgen/mix.h"
#include "bench/loadgen/openai_backend.h"
#include "bench/loadgen/report.h"
#include "bench/loadgen/runner.h"
#include "bench/loadgen/slo_search.h"
#include "bench/loadgen/workload.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "Server address, HOST:PORT");
ABSL_FLAG(std::string, api, "grpc",
          "grpc: hydra's GenerateStream; openai: streamed POST "
          "/v1/completions of an OpenAI-compatible HTTP server (hydra serve "
          "--http_port), --target naming its HTTP port");
ABSL_FLAG(std::string, model, "",
          "--api=openai: the \"model\" of every request (default: the first "
          "that GET /v1/models lists)");
ABSL_FLAG(std::vector<std::string>, concurrency, {"8"},
          "Closed loop: calls kept in flight; a comma-separated list sweeps");
ABSL_FLAG(std::vector<std::string>, request_rate, {},
          "Open loop: requests per second; a comma-separated list sweeps. "
          "Setting it selects the open loop");
ABSL_FLAG(std::string, arrival, "poisson",
          "Open loop inter-arrival times: poisson or constant");
ABSL_FLAG(int, max_concurrency, 0,
          "Open loop: cap on calls in flight (0 = none)");
ABSL_FLAG(int64_t, num_requests, 100,
          "Measured requests per run (0 = bounded by --duration only)");
ABSL_FLAG(double, duration, 0,
          "Seconds each run sends requests (0 = bounded by --num_requests "
          "only); calls in flight at the end are waited for");
ABSL_FLAG(int, warmup_requests, 4,
          "Requests sent before the first run and left out of every figure");
ABSL_FLAG(int, input_len, 64,
          "Prompt tokens (BOS included) of synthetic prompts");
ABSL_FLAG(std::string, input_len_dist, "fixed", "fixed, uniform or normal");
ABSL_FLAG(int, input_len_spread, 0,
          "uniform: half-width; normal: standard deviation");
ABSL_FLAG(int, output_len, 128, "max_tokens of each request");
ABSL_FLAG(std::string, output_len_dist, "fixed", "fixed, uniform or normal");
ABSL_FLAG(int, output_len_spread, 0,
          "uniform: half-width; normal: standard deviation");
ABSL_FLAG(std::string, dataset, "",
          "JSONL file of prompts, one {\"prompt\": ..., \"max_tokens\": ...} "
          "per line (max_tokens optional); replaces synthetic prompts");
ABSL_FLAG(std::string, mix, "",
          "Synthetic prompts from a weighted mix of request classes, each "
          "with its own lengths: NAME:WEIGHT:INPUT:OUTPUT[,...], INPUT and "
          "OUTPUT in tokens as N or LO-HI (uniform), weights relative "
          "(e.g. doc:0.1:1000-2000:32,chat:0.9:16-64:64). Each request draws "
          "its class from the weights and --seed; reports add per-class "
          "figures. Replaces --input_len* and --output_len*; excludes "
          "--dataset");
ABSL_FLAG(int, shared_prefix_len, 0,
          "The first N tokens of every synthetic prompt are the same (part of "
          "--input_len), to measure prefix caching");
ABSL_FLAG(bool, ignore_eos, true,
          "Generate past end-of-sequence, so output lengths are exact");
ABSL_FLAG(double, temperature, 0, "Sampling temperature (0 = greedy)");
ABSL_FLAG(uint64_t, seed, 1, "Seed of prompts, lengths and arrivals");
ABSL_FLAG(std::string, json_out, "", "Write the summary as JSON here");
ABSL_FLAG(std::string, requests_out, "",
          "Write every request here: .csv or .jsonl");
ABSL_FLAG(double, slo_ttft_p95_ms, 0,
          "SLO search: p95 time to first token bound (ms)");
ABSL_FLAG(double, slo_itl_p95_ms, 0,
          "SLO search: p95 inter-token latency bound (ms)");
ABSL_FLAG(double, slo_e2e_p95_ms, 0, "SLO search: p95 end-to-end bound (ms)");
ABSL_FLAG(double, slo_min_keep_up, 0.9,
          "SLO search: completions/s must reach this share of the rate sent "
          "(0 = unchecked)");
ABSL_FLAG(double, slo_start_rate, 1, "SLO search: first rate tried (req/s)");
ABSL_FLAG(double, slo_max_rate, 1000, "SLO search: highest rate tried (req/s)");
ABSL_FLAG(double, slo_tolerance, 0.05,
          "SLO search: stop when the bracket is this narrow (relative)");
ABSL_FLAG(int, slo_max_probes, 12, "SLO search: most runs made");
ABSL_FLAG(std::string, progress, "auto",
          "Progress line on stderr: auto (when a terminal), on, off");
ABSL_FLAG(int, connections, 1,
          "TCP connections gRPC calls are spread over (--api=openai: one "
          "keep-alive connection per stream in flight, whatever this says)");
ABSL_FLAG(std::string, api_key, "", "Sent as 'authorization: Bearer <key>'");
ABSL_FLAG(double, request_timeout, 300, "Deadline of each call, seconds");
ABSL_FLAG(double, connect_timeout, 30,
          "Seconds to wait for the server to accept calls");
ABSL_FLAG(
    int, server_pid, 0,
    "When the server runs here: its CPU use per run, from /proc/PID/stat");

namespace hydra::loadgen {
namespace {

constexpr int kExitFailedRequests = 1;
constexpr int kExitUsage = 2;

int Fail(int code, const absl::Status& status) {
  absl::FPrintF(stderr, "hydra-bench: %s\n", status.message());
  return code;
}

absl::StatusOr<std::vector<double>> ParseList(
    const std::string& flag, const std::vector<std::string>& v) {
  std::vector<double> out;
  for (const std::string& s : v) {
    double x;
    if (!absl::SimpleAtod(s, &x) || !(x > 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--", flag, " takes positive numbers, comma-separated (got \"", s,
          "\")"));
    }
    out.push_back(x);
  }
  return out;
}

// utime + stime of a process, from /proc/PID/stat; nullopt if unreadable.
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

// --mix's classes (empty without it), checked against the flags it
// replaces: a --input_len left in a command line with --mix would otherwise
// be silently ignored.
absl::StatusOr<std::vector<RequestClass>> MixFromFlags() {
  const std::string mix = absl::GetFlag(FLAGS_mix);
  if (mix.empty()) return std::vector<RequestClass>{};
  if (!absl::GetFlag(FLAGS_dataset).empty()) {
    return absl::InvalidArgumentError(
        "--mix and --dataset exclude each other: --mix makes synthetic "
        "prompts");
  }
  for (const char* name :
       {"input_len", "input_len_dist", "input_len_spread", "output_len",
        "output_len_dist", "output_len_spread"}) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag->CurrentValue() != flag->DefaultValue()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--mix sets every class's lengths; drop --", name,
                       " (or add a class for it)"));
    }
  }
  return ParseMix(mix);
}

absl::StatusOr<std::unique_ptr<Workload>> BuildWorkload(
    Backend& backend, std::vector<RequestClass> mix) {
  absl::StatusOr<LengthDistribution> output = LengthDistribution::Create(
      "output_len", absl::GetFlag(FLAGS_output_len_dist),
      absl::GetFlag(FLAGS_output_len), absl::GetFlag(FLAGS_output_len_spread));
  if (!output.ok()) return output.status();
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (!absl::GetFlag(FLAGS_dataset).empty()) {
    absl::StatusOr<std::vector<DatasetEntry>> entries =
        LoadDataset(absl::GetFlag(FLAGS_dataset));
    if (!entries.ok()) return entries.status();
    return MakeDatasetWorkload(*std::move(entries), *output, seed);
  }
  absl::StatusOr<LengthDistribution> input = LengthDistribution::Create(
      "input_len", absl::GetFlag(FLAGS_input_len_dist),
      absl::GetFlag(FLAGS_input_len), absl::GetFlag(FLAGS_input_len_spread));
  if (!input.ok()) return input.status();
  absl::StatusOr<WordCosts> costs = MeasureWordCosts(backend, BuiltinWords());
  if (!costs.ok()) return costs.status();
  const int prefix = absl::GetFlag(FLAGS_shared_prefix_len);
  absl::StatusOr<std::unique_ptr<Workload>> workload =
      mix.empty()
          ? MakeSyntheticWorkload(
                *std::move(costs),
                SyntheticOptions{*input, *output, prefix, seed})
          : MakeMixedWorkload(*std::move(costs), std::move(mix), prefix, seed);
  if (!workload.ok()) return workload.status();
  // Lengths are composed from per-word costs; check a few whole prompts
  // against the server's own count (keys far from the ones runs use).
  for (uint64_t key = uint64_t{1} << 62; key < (uint64_t{1} << 62) + 3; ++key) {
    const Prompt p = (*workload)->Make(key);
    absl::StatusOr<int> n = backend.CountPromptTokens(p.text);
    if (!n.ok()) return n.status();
    if (*n != p.expected_input_tokens) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the server counts ", *n,
          " tokens in a synthetic prompt composed "
          "for ",
          p.expected_input_tokens,
          ": its tokenizer does not split at spaces; use --dataset"));
    }
  }
  return workload;
}

struct Phases {
  std::vector<PhaseResult> results;
  std::vector<nlohmann::json> json;
};

// The client of --api, before any network traffic.
absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(
    const ConnectOptions& connect) {
  const std::string api = absl::GetFlag(FLAGS_api);
  if (api == "grpc") {
    if (!absl::GetFlag(FLAGS_model).empty()) {
      return absl::InvalidArgumentError(
          "--model is for --api=openai: a gRPC server serves one model");
    }
    if (connect.connections < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--connections must be >= 1 (got ", connect.connections, ")"));
    }
    return std::make_unique<GrpcBackend>(connect);
  }
  if (api == "openai") {
    absl::StatusOr<std::unique_ptr<OpenAiBackend>> b =
        OpenAiBackend::Create(OpenAiOptions{connect.target, connect.api_key,
                                            absl::GetFlag(FLAGS_model),
                                            connect.timeout, /*threads=*/2});
    if (!b.ok()) return b.status();
    return std::unique_ptr<Backend>(*std::move(b));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--api must be grpc or openai (got \"", api, "\")"));
}

int Main() {
  // Flags first: every usage error before any network traffic.
  const ConnectOptions connect{
      absl::GetFlag(FLAGS_target), absl::GetFlag(FLAGS_connections),
      absl::Seconds(absl::GetFlag(FLAGS_connect_timeout)),
      absl::GetFlag(FLAGS_api_key)};
  absl::StatusOr<std::vector<double>> concurrency =
      ParseList("concurrency", absl::GetFlag(FLAGS_concurrency));
  if (!concurrency.ok()) return Fail(kExitUsage, concurrency.status());
  absl::StatusOr<std::vector<double>> rates =
      ParseList("request_rate", absl::GetFlag(FLAGS_request_rate));
  if (!rates.ok()) return Fail(kExitUsage, rates.status());
  const SloTarget slo{absl::GetFlag(FLAGS_slo_ttft_p95_ms),
                      absl::GetFlag(FLAGS_slo_itl_p95_ms),
                      absl::GetFlag(FLAGS_slo_e2e_p95_ms),
                      absl::GetFlag(FLAGS_slo_min_keep_up)};
  if (slo.any() && !rates->empty()) {
    return Fail(kExitUsage,
                absl::InvalidArgumentError(
                    "--request_rate and --slo_* exclude each other: the SLO "
                    "search chooses the rates"));
  }
  const std::string requests_out = absl::GetFlag(FLAGS_requests_out);
  if (!requests_out.empty()) {
    if (auto f = RequestsFormatOf(requests_out); !f.ok()) {
      return Fail(kExitUsage, f.status());
    }
  }
  const std::string progress_flag = absl::GetFlag(FLAGS_progress);
  if (progress_flag != "auto" && progress_flag != "on" &&
      progress_flag != "off") {
    return Fail(kExitUsage, absl::InvalidArgumentError(absl::StrCat(
                                "--progress must be auto, on or off (got \"",
                                progress_flag, "\")")));
  }
  const bool show_progress = progress_flag == "on" ||
                             (progress_flag == "auto" && isatty(STDERR_FILENO));

  PhaseSpec base;
  base.num_requests = absl::GetFlag(FLAGS_num_requests);
  base.duration_s = absl::GetFlag(FLAGS_duration);
  base.arrival = absl::GetFlag(FLAGS_arrival);
  base.max_concurrency = absl::GetFlag(FLAGS_max_concurrency);
  base.seed = absl::GetFlag(FLAGS_seed);
  if (base.num_requests <= 0 && base.duration_s <= 0) {
    return Fail(kExitUsage, absl::InvalidArgumentError(
                                "every run needs a bound: --num_requests > 0, "
                                "--duration > 0, or both"));
  }
  if (base.arrival != "poisson" && base.arrival != "constant") {
    return Fail(kExitUsage, absl::InvalidArgumentError(absl::StrCat(
                                "--arrival must be poisson or constant (got \"",
                                base.arrival, "\")")));
  }
  absl::StatusOr<std::vector<RequestClass>> mix = MixFromFlags();
  if (!mix.ok()) return Fail(kExitUsage, mix.status());
  nlohmann::json mix_json = nlohmann::json::array();
  for (const RequestClass& c : *mix) {
    mix_json.push_back({{"name", c.name},
                        {"weight", c.weight},
                        {"input_len", c.input.ToString()},
                        {"output_len", c.output.ToString()}});
  }

  absl::StatusOr<std::unique_ptr<Backend>> backend = MakeBackend(connect);
  if (!backend.ok()) return Fail(kExitUsage, backend.status());

  absl::StatusOr<ServerModel> model = (*backend)->WaitForModel();
  if (!model.ok()) return Fail(kExitFailedRequests, model.status());
  absl::StatusOr<std::unique_ptr<Workload>> workload =
      BuildWorkload(**backend, *std::move(mix));
  if (!workload.ok()) {
    return Fail(absl::IsInvalidArgument(workload.status()) ||
                        absl::IsNotFound(workload.status())
                    ? kExitUsage
                    : kExitFailedRequests,
                workload.status());
  }
  if (const int need = (*workload)->MaxTotalTokens();
      model->max_context > 0 && need > model->max_context) {
    return Fail(
        kExitUsage,
        absl::InvalidArgumentError(absl::StrCat(
            "prompt + output can reach ", need,
            mix_json.empty() ? " tokens (--input_len, --output_len and their "
                               "spreads), "
                             : " tokens (--mix's longest INPUT + OUTPUT), ",
            "more than the server's context (max_context) of ",
            model->max_context)));
  }
  std::printf("hydra-bench -> %s (%s): model %s\n%s\n", connect.target.c_str(),
              absl::GetFlag(FLAGS_api).c_str(), model->Describe().c_str(),
              (*workload)->Describe().c_str());

  Runner runner(
      **backend, **workload,
      RequestOptions{static_cast<float>(absl::GetFlag(FLAGS_temperature)),
                     absl::GetFlag(FLAGS_ignore_eos),
                     absl::GetFlag(FLAGS_request_timeout)});
  ProgressLine progress(stderr);
  Phases phases;
  // Runs one measured phase and records it; nullopt-free: errors propagate.
  auto run_phase =
      [&](const PhaseSpec& spec) -> absl::StatusOr<const PhaseResult*> {
    const int pid = absl::GetFlag(FLAGS_server_pid);
    const std::optional<double> server_cpu_before =
        pid > 0 ? ProcessCpuSeconds(pid) : std::nullopt;
    const std::string label = spec.Label();
    absl::StatusOr<PhaseResult> r = runner.Run(
        spec, show_progress
                  ? std::function<void(const Progress&)>(
                        [&](const Progress& p) { progress.Update(label, p); })
                  : nullptr);
    progress.Finish();
    if (!r.ok()) return r.status();
    nlohmann::json j = PhaseJson(*r);
    if (server_cpu_before) {
      if (std::optional<double> after = ProcessCpuSeconds(pid)) {
        const double cpu = *after - *server_cpu_before;
        const double cores = cpu / r->duration_s;
        const double ms_per_token = r->summary.output_tokens
                                        ? 1e3 * cpu / r->summary.output_tokens
                                        : 0.0;
        j["server_cpu_cores"] = cores;
        j["server_cpu_ms_per_output_token"] = ms_per_token;
        absl::PrintF("server CPU: %.2f cores, %.3f ms per output token\n",
                     cores, ms_per_token);
      }
    }
    PrintPhase(*r, stdout);
    std::fflush(stdout);
    phases.results.push_back(*std::move(r));
    phases.json.push_back(std::move(j));
    return &phases.results.back();
  };

  if (const int warmup = absl::GetFlag(FLAGS_warmup_requests); warmup > 0) {
    PhaseSpec w = base;
    w.mode = PhaseSpec::Mode::kClosedLoop;
    w.concurrency =
        std::min<int>(warmup, static_cast<int>(concurrency->front()));
    w.num_requests = warmup;
    w.duration_s = 0;
    absl::StatusOr<PhaseResult> r = runner.Run(w);
    if (!r.ok()) return Fail(kExitUsage, r.status());
    if (r->summary.completed == 0) {
      const auto& [name, example] = *r->summary.error_examples.begin();
      return Fail(kExitFailedRequests,
                  absl::UnavailableError(absl::StrCat(
                      "the server rejected all ", warmup,
                      " warm-up requests: ", name, ": ", example)));
    }
  }

  nlohmann::json summary = {
      {"tool", "hydra-bench"},
      {"target", connect.target},
      {"api", absl::GetFlag(FLAGS_api)},
      {"started_at",
       absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone())},
      {"model",
       {{"name", model->name},
        {"architecture", model->architecture},
        {"max_context", model->max_context},
        {"tensor_parallel_size", model->tensor_parallel_size},
        {"kv_capacity_tokens", model->kv_capacity_tokens}}},
      {"workload",
       {{"description", (*workload)->Describe()},
        {"dataset", absl::GetFlag(FLAGS_dataset)},
        {"mix", mix_json},
        {"input_len", absl::GetFlag(FLAGS_input_len)},
        {"input_len_dist", absl::GetFlag(FLAGS_input_len_dist)},
        {"input_len_spread", absl::GetFlag(FLAGS_input_len_spread)},
        {"output_len", absl::GetFlag(FLAGS_output_len)},
        {"output_len_dist", absl::GetFlag(FLAGS_output_len_dist)},
        {"output_len_spread", absl::GetFlag(FLAGS_output_len_spread)},
        {"shared_prefix_len", absl::GetFlag(FLAGS_shared_prefix_len)},
        {"ignore_eos", absl::GetFlag(FLAGS_ignore_eos)},
        {"temperature", absl::GetFlag(FLAGS_temperature)},
        {"seed", absl::GetFlag(FLAGS_seed)},
        {"warmup_requests", absl::GetFlag(FLAGS_warmup_requests)}}},
  };

  bool all_ok = true;
  if (slo.any()) {
    absl::PrintF("SLO search: %s\n", slo.ToString());
    nlohmann::json probes = nlohmann::json::array();
    absl::StatusOr<SloSearchResult> result = SearchMaxRate(
        SloSearchOptions{absl::GetFlag(FLAGS_slo_start_rate),
                         absl::GetFlag(FLAGS_slo_max_rate),
                         absl::GetFlag(FLAGS_slo_tolerance),
                         absl::GetFlag(FLAGS_slo_max_probes)},
        [&](double rate) -> absl::StatusOr<bool> {
          PhaseSpec spec = base;
          spec.mode = PhaseSpec::Mode::kOpenLoop;
          spec.request_rate = rate;
          absl::StatusOr<const PhaseResult*> r = run_phase(spec);
          if (!r.ok()) return r.status();
          std::string why;
          const bool met = MeetsSlo((*r)->summary, slo, &why);
          absl::PrintF("SLO %s at %g req/s%s\n", met ? "met" : "MISSED", rate,
                       met ? "" : absl::StrCat(": ", why));
          phases.json.back()["slo"] = {{"met", met}, {"missed", why}};
          probes.push_back({{"rate", rate},
                            {"met", met},
                            {"run", phases.results.size() - 1}});
          return met;
        });
    if (!result.ok()) return Fail(kExitUsage, result.status());
    PrintSweep(phases.results, stdout);
    if (result->best_rate > 0) {
      absl::PrintF("\nhighest rate meeting %s: %.3g req/s", slo.ToString(),
                   result->best_rate);
      if (result->lowest_failed_rate > 0) {
        absl::PrintF(" (%.3g req/s missed it)", result->lowest_failed_rate);
      } else {
        absl::PrintF(" (the highest tried; raise --slo_max_rate)");
      }
      absl::PrintF("\n");
    } else {
      absl::PrintF("\nno rate tried met %s\n", slo.ToString());
      all_ok = false;
    }
    summary["slo_search"] = {{"target",
                              {{"ttft_p95_ms", slo.ttft_p95_ms},
                               {"itl_p95_ms", slo.itl_p95_ms},
                               {"e2e_p95_ms", slo.e2e_p95_ms},
                               {"min_keep_up", slo.min_keep_up}}},
                             {"best_rate", result->best_rate},
                             {"lowest_failed_rate", result->lowest_failed_rate},
                             {"probes", probes}};
  } else {
    const bool open = !rates->empty();
    for (double x : open ? *rates : *concurrency) {
      PhaseSpec spec = base;
      spec.mode =
          open ? PhaseSpec::Mode::kOpenLoop : PhaseSpec::Mode::kClosedLoop;
      if (open) {
        spec.request_rate = x;
      } else {
        spec.concurrency = static_cast<int>(x);
      }
      absl::StatusOr<const PhaseResult*> r = run_phase(spec);
      if (!r.ok()) return Fail(kExitUsage, r.status());
      all_ok =
          all_ok && (*r)->summary.failed == 0 && (*r)->summary.completed > 0;
    }
    if (phases.results.size() > 1) PrintSweep(phases.results, stdout);
  }

  summary["runs"] = phases.json;
  if (const std::string path = absl::GetFlag(FLAGS_json_out); !path.empty()) {
    if (absl::Status s = WriteJson(path, summary); !s.ok()) {
      return Fail(kExitFailedRequests, s);
    }
  }
  if (!requests_out.empty()) {
    if (absl::Status s = WriteRequests(requests_out, phases.results); !s.ok()) {
      return Fail(kExitFailedRequests, s);
    }
  }
  std::fflush(stdout);
  if (!all_ok) {
    absl::FPrintF(stderr,
                  "hydra-bench: some requests failed (see errors above)\n");
    return kExitFailedRequests;
  }
  return 0;
}

}  // namespace
}  // namespace hydra::loadgen

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "load generator for a hydra server; see the header of "
      "bench/hydra_bench.cc or docs/benchmarks.md");
  absl::ParseCommandLine(argc, argv);
  return hydra::loadgen::Main();
}
