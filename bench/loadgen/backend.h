// What a run needs from a server, whatever the API it speaks: its model, a
// prompt's token count, and streamed completions. hydra-bench's gRPC client
// (grpc_backend.h) and its OpenAI-compatible HTTP client (openai_backend.h)
// implement it; workloads, runs and reports are the same over both.
#ifndef HYDRA_BENCH_LOADGEN_BACKEND_H_
#define HYDRA_BENCH_LOADGEN_BACKEND_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/loadgen/request_record.h"
#include "bench/loadgen/workload.h"

namespace hydra::loadgen {

using Clock = std::chrono::steady_clock;

// The served model, as far as the API tells; 0 where it does not.
struct ServerModel {
  std::string name;
  std::string architecture;
  int max_context = 0;  // 0: unknown, the server judges each request
  int tensor_parallel_size = 0;
  int64_t kv_capacity_tokens = 0;
  std::string Describe() const;  // "stories15M (llama, context 256, ...)"
};

// One streamed completion: what every request carries.
struct StreamRequest {
  std::string prompt;
  int max_tokens = 0;
  float temperature = 0;
  bool ignore_eos = true;
  std::chrono::milliseconds timeout{300000};
};

using StreamDone = std::function<void(RequestRecord)>;

class Backend {
 public:
  virtual ~Backend() = default;
  // Blocks until the server has loaded its model (it may listen before),
  // at most the connect timeout.
  virtual absl::StatusOr<ServerModel> WaitForModel() = 0;
  // Tokens the server counts for `text` as a prompt (after WaitForModel).
  virtual absl::StatusOr<int> CountPromptTokens(const std::string& text) = 0;
  // Sends request `index` now, timed from `run_start`; `done` gets its
  // record from one of the backend's threads when the stream ends, whatever
  // its status. Thread-safe; many streams may be in flight. Only after
  // WaitForModel succeeded.
  virtual void StartStream(const StreamRequest& request,
                           Clock::time_point run_start, int64_t index,
                           StreamDone done) = 0;
};

// Token cost of each word and of any prompt (BOS), from CountPromptTokens:
// the overhead is 2 n(w) - n("w w") for the first word w, which needs no
// empty prompt (an OpenAI server may refuse one).
absl::StatusOr<WordCosts> MeasureWordCosts(
    Backend& backend, const std::vector<std::string>& words);

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_BACKEND_H_
