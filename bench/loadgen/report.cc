#include "bench/loadgen/report.h"

#include <algorithm>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace hydra::loadgen {
namespace {

bool IsOpenLoop(const PhaseSpec& s) {
  return s.mode == PhaseSpec::Mode::kOpenLoop;
}

std::string ErrorsText(const RunSummary& s) {
  std::vector<std::string> parts;
  for (const auto& [name, n] : s.errors) {
    parts.push_back(absl::StrCat(name, " ", n, " (e.g. \"",
                                 s.error_examples.at(name), "\")"));
  }
  return absl::StrJoin(parts, ", ");
}

// RFC 4180: quote a field holding a comma, quote or newline.
std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  return absl::StrCat("\"", absl::StrReplaceAll(s, {{"\"", "\"\""}}), "\"");
}

// One row per --mix class, with the percentiles SLOs are usually set on.
void PrintClasses(const std::vector<ClassSummary>& classes, std::FILE* out) {
  int width = 5;  // "class"
  for (const ClassSummary& c : classes) {
    width = std::max(width, static_cast<int>(c.name.size()));
  }
  absl::FPrintF(out,
                "| %-*s |     ok | failed | TTFT p50 |      p95 |      p99 |"
                "  ITL p50 |      p95 |      p99 |  E2E p50 |      p95 |"
                "      p99 |\n",
                width, "class");
  absl::FPrintF(out,
                "|%s|-------:|-------:|---------:|---------:|---------:|"
                "---------:|---------:|---------:|---------:|---------:|"
                "---------:|\n",
                std::string(width + 2, '-'));
  for (const ClassSummary& c : classes) {
    const RunSummary& s = c.summary;
    absl::FPrintF(out, "| %-*s | %6d | %6d |", width, c.name, s.completed,
                  s.failed);
    for (const LatencySummary* l : {&s.ttft_ms, &s.itl_ms, &s.e2e_ms}) {
      absl::FPrintF(out, " %8.1f | %8.1f | %8.1f |", l->p50, l->p95, l->p99);
    }
    absl::FPrintF(out, "\n");
  }
}

// The figures a run and each of its classes share.
nlohmann::json SummaryJson(const RunSummary& s) {
  return {
      {"issued", s.issued},
      {"completed", s.completed},
      {"failed", s.failed},
      {"errors", s.errors},
      {"error_examples", s.error_examples},
      {"duration_s", s.duration_s},
      {"requests_per_s", s.requests_per_s},
      {"input_tokens", s.input_tokens},
      {"cached_input_tokens", s.cached_input_tokens},
      {"output_tokens", s.output_tokens},
      {"output_tokens_per_s", s.output_tokens_per_s},
      {"total_tokens_per_s", s.total_tokens_per_s},
      {"ttft_ms", LatencyJson(s.ttft_ms)},
      {"itl_ms", LatencyJson(s.itl_ms)},
      {"tpot_ms", LatencyJson(s.tpot_ms)},
      {"e2e_ms", LatencyJson(s.e2e_ms)},
  };
}

}  // namespace

void PrintPhase(const PhaseResult& phase, std::FILE* out) {
  const RunSummary& s = phase.summary;
  absl::FPrintF(out, "\n== %s: %d ok, %d failed of %d sent, in %.2f s ==\n",
                phase.spec.Label(), s.completed, s.failed, s.issued,
                s.duration_s);
  absl::FPrintF(out,
                "throughput: %.2f requests/s, %.1f output tokens/s, %.1f "
                "total tokens/s\n",
                s.requests_per_s, s.output_tokens_per_s, s.total_tokens_per_s);
  absl::FPrintF(out,
                "tokens: %d in (%d from the prefix cache), %d out; load "
                "generator CPU %.2f cores\n",
                s.input_tokens, s.cached_input_tokens, s.output_tokens,
                phase.client_cpu_cores);
  absl::FPrintF(out,
                "| ms   |     mean |      p50 |      p90 |      p95 |"
                "      p99 |      max |  samples |\n");
  absl::FPrintF(out,
                "|------|---------:|---------:|---------:|---------:|"
                "---------:|---------:|---------:|\n");
  for (const auto& [name, l] :
       {std::pair{"TTFT", &s.ttft_ms}, std::pair{"ITL", &s.itl_ms},
        std::pair{"TPOT", &s.tpot_ms}, std::pair{"E2E", &s.e2e_ms}}) {
    absl::FPrintF(
        out, "| %-4s | %8.1f | %8.1f | %8.1f | %8.1f | %8.1f | %8.1f | %8d |\n",
        name, l->mean, l->p50, l->p90, l->p95, l->p99, l->max, l->count);
  }
  if (!phase.classes.empty()) PrintClasses(phase.classes, out);
  if (s.failed > 0) absl::FPrintF(out, "errors: %s\n", ErrorsText(s));
}

void PrintSweep(const std::vector<PhaseResult>& phases, std::FILE* out) {
  if (phases.empty()) return;
  const bool open = IsOpenLoop(phases.front().spec);
  absl::FPrintF(out,
                "\n| %s | req/s | out tok/s | p95 TTFT ms | p95 ITL ms |"
                " p95 E2E ms | failed |\n",
                open ? "rate/s" : "concurrency");
  absl::FPrintF(out, "|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const PhaseResult& p : phases) {
    const RunSummary& s = p.summary;
    absl::FPrintF(out, "| %s | %.2f | %.1f | %.1f | %.1f | %.1f | %d |\n",
                  open ? absl::StrCat(p.spec.request_rate)
                       : absl::StrCat(p.spec.concurrency),
                  s.requests_per_s, s.output_tokens_per_s, s.ttft_ms.p95,
                  s.itl_ms.p95, s.e2e_ms.p95, s.failed);
  }
}

nlohmann::json LatencyJson(const LatencySummary& s) {
  return {{"mean", s.mean}, {"p50", s.p50}, {"p90", s.p90}, {"p95", s.p95},
          {"p99", s.p99},   {"max", s.max}, {"n", s.count}};
}

nlohmann::json PhaseJson(const PhaseResult& phase) {
  const PhaseSpec& spec = phase.spec;
  const RunSummary& s = phase.summary;
  nlohmann::json j = SummaryJson(s);
  j["label"] = spec.Label();
  j["mode"] = IsOpenLoop(spec) ? "open_loop" : "closed_loop";
  j["num_requests_bound"] = spec.num_requests;
  j["duration_bound_s"] = spec.duration_s;
  j["client_cpu_cores"] = phase.client_cpu_cores;
  if (!phase.classes.empty()) {
    nlohmann::json classes = nlohmann::json::array();
    for (const ClassSummary& c : phase.classes) {
      nlohmann::json one = SummaryJson(c.summary);
      one["name"] = c.name;
      one["label"] = absl::StrCat(spec.Label(), ", class ", c.name);
      one["share"] = s.issued > 0 ? static_cast<double>(c.summary.issued) /
                                        static_cast<double>(s.issued)
                                  : 0.0;
      classes.push_back(std::move(one));
    }
    j["classes"] = std::move(classes);
  }
  if (IsOpenLoop(spec)) {
    j["request_rate"] = spec.request_rate;
    j["sent_per_s"] = s.sent_per_s;
    j["arrival"] = spec.arrival;
    j["max_concurrency"] = spec.max_concurrency;
  } else {
    j["concurrency"] = spec.concurrency;
  }
  return j;
}

absl::StatusOr<RequestsFormat> RequestsFormatOf(const std::string& path) {
  if (absl::EndsWith(path, ".csv")) return RequestsFormat::kCsv;
  if (absl::EndsWith(path, ".jsonl")) return RequestsFormat::kJsonl;
  return absl::InvalidArgumentError(absl::StrCat(
      "--requests_out must end in .csv or .jsonl (got \"", path, "\")"));
}

absl::Status WriteRequests(const std::string& path,
                           const std::vector<PhaseResult>& phases) {
  absl::StatusOr<RequestsFormat> format = RequestsFormatOf(path);
  if (!format.ok()) return format.status();
  std::ofstream out(path);
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  if (*format == RequestsFormat::kCsv) {
    out << "run,index,start_s,status,finish_reason,input_tokens,"
           "cached_input_tokens,output_tokens,ttft_ms,tpot_ms,e2e_ms,itl_ms,"
           "error,class\n";
  }
  for (size_t run = 0; run < phases.size(); ++run) {
    for (const RequestRecord& r : phases[run].records) {
      if (*format == RequestsFormat::kCsv) {
        // Inter-token gaps in one field, space-separated.
        out << absl::StrFormat(
            "%d,%d,%.6f,%s,%s,%d,%d,%d,%.4f,%.4f,%.4f,%s,%s,%s\n", run, r.index,
            r.start_s, StatusName(r.code), r.finish_reason, r.input_tokens,
            r.cached_input_tokens, r.output_tokens, r.ttft_ms, r.tpot_ms(),
            r.e2e_ms,
            absl::StrJoin(r.itl_ms, " ",
                          [](std::string* o, double v) {
                            absl::StrAppendFormat(o, "%.4f", v);
                          }),
            CsvField(r.error), CsvField(r.request_class));
      } else {
        const nlohmann::json j = {
            {"run", run},
            {"index", r.index},
            {"start_s", r.start_s},
            {"status", StatusName(r.code)},
            {"finish_reason", r.finish_reason},
            {"input_tokens", r.input_tokens},
            {"cached_input_tokens", r.cached_input_tokens},
            {"output_tokens", r.output_tokens},
            {"ttft_ms", r.ttft_ms},
            {"tpot_ms", r.tpot_ms()},
            {"e2e_ms", r.e2e_ms},
            {"itl_ms", r.itl_ms},
            {"error", r.error},
            {"class", r.request_class},
        };
        out << j.dump() << "\n";
      }
    }
  }
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::Status WriteJson(const std::string& path, const nlohmann::json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

void ProgressLine::Update(const std::string& label, const Progress& p) {
  const double rate = p.elapsed_s > 0 ? p.done / p.elapsed_s : 0;
  const double tps = p.elapsed_s > 0 ? p.output_tokens / p.elapsed_s : 0;
  const std::string of = p.target > 0 ? absl::StrCat("/", p.target) : "";
  absl::FPrintF(out_,
                "\r\033[K[%s] %d%s done, %d failed, %d in flight | %.1f req/s, "
                "%.0f tok/s | p95 TTFT %.0f ms | %.0f s",
                label, p.done, of, p.failed, p.in_flight, rate, tps,
                p.ttft_p95_ms, p.elapsed_s);
  std::fflush(out_);
  drawn_ = true;
}

void ProgressLine::Finish() {
  if (drawn_) absl::FPrintF(out_, "\n");
  drawn_ = false;
}

}  // namespace hydra::loadgen
