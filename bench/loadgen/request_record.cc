#include "bench/loadgen/request_record.h"

#include <algorithm>
#include <utility>

namespace hydra::loadgen {

double RequestRecord::tpot_ms() const {
  if (output_tokens < 2 || ttft_ms < 0) return 0;
  return (e2e_ms - ttft_ms) / (output_tokens - 1);
}

std::string StatusName(absl::StatusCode code) {
  // absl::StatusCode shares gRPC's numbering and its names.
  return absl::StatusCodeToString(code);
}

RunSummary SummarizeRun(const std::vector<RequestRecord>& records,
                        double duration_s) {
  RunSummary s;
  s.issued = static_cast<int64_t>(records.size());
  s.duration_s = duration_s;
  std::vector<double> ttft, itl, tpot, e2e;
  double last_start_s = 0;
  for (const RequestRecord& r : records) {
    last_start_s = std::max(last_start_s, r.start_s);
    if (!r.ok()) {
      ++s.failed;
      const std::string name = StatusName(r.code);
      if (s.errors[name]++ == 0) s.error_examples[name] = r.error;
      continue;
    }
    ++s.completed;
    s.input_tokens += r.input_tokens;
    s.cached_input_tokens += r.cached_input_tokens;
    s.output_tokens += r.output_tokens;
    if (r.ttft_ms >= 0) ttft.push_back(r.ttft_ms);
    itl.insert(itl.end(), r.itl_ms.begin(), r.itl_ms.end());
    if (r.output_tokens >= 2) tpot.push_back(r.tpot_ms());
    e2e.push_back(r.e2e_ms);
  }
  if (last_start_s > 0) s.sent_per_s = (s.issued - 1) / last_start_s;
  if (duration_s > 0) {
    s.requests_per_s = s.completed / duration_s;
    s.output_tokens_per_s = s.output_tokens / duration_s;
    s.total_tokens_per_s = (s.input_tokens + s.output_tokens) / duration_s;
  }
  s.ttft_ms = Summarize(std::move(ttft));
  s.itl_ms = Summarize(std::move(itl));
  s.tpot_ms = Summarize(std::move(tpot));
  s.e2e_ms = Summarize(std::move(e2e));
  return s;
}

std::vector<ClassSummary> SummarizeByClass(
    const std::vector<RequestRecord>& records, double duration_s,
    const std::vector<std::string>& names) {
  std::vector<std::string> order = names;
  std::map<std::string, std::vector<RequestRecord>> by_class;
  for (const std::string& name : names) by_class[name];
  for (const RequestRecord& r : records) {
    if (by_class.count(r.request_class) == 0) order.push_back(r.request_class);
    by_class[r.request_class].push_back(r);
  }
  std::vector<ClassSummary> out;
  for (const std::string& name : order) {
    out.push_back(ClassSummary{name, SummarizeRun(by_class[name], duration_s)});
  }
  return out;
}

}  // namespace hydra::loadgen
