// The OpenAI completions API as hydra-bench speaks it: request bodies, the
// chunks of a streamed response (server-sent events), and the request
// record they make, timed like the gRPC stream's (token_timeline.h).
#ifndef HYDRA_BENCH_LOADGEN_OPENAI_STREAM_H_
#define HYDRA_BENCH_LOADGEN_OPENAI_STREAM_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bench/loadgen/backend.h"
#include "bench/loadgen/request_record.h"
#include "bench/loadgen/token_timeline.h"

namespace hydra::loadgen {

// POST /v1/completions: the prompt as text, max_tokens, temperature, and
// ignore_eos when set (an extension OpenAI's own API lacks; hydra and vLLM
// take it). `stream` adds "stream": true and stream_options.include_usage,
// so that the last chunk carries the server's token counts.
std::string CompletionRequestJson(const std::string& model,
                                  const StreamRequest& request, bool stream);

// The gRPC status code closest to an HTTP status (400 INVALID_ARGUMENT,
// 401 UNAUTHENTICATED, 429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE, ...), so
// that reports count failures alike over both APIs.
absl::StatusCode FromHttpStatus(int status);

// The message of an error body ({"error": {"message": ...}}), else the body.
std::string ErrorMessageOf(absl::string_view body);

struct CompletionUsage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;  // usage.prompt_tokens_details.cached_tokens
};

// One `data:` payload of a completion stream.
struct CompletionChunk {
  bool done = false;          // "[DONE]"
  std::string text;           // choices[0].text
  std::string finish_reason;  // empty while generating
  std::optional<CompletionUsage> usage;
  // {"error": {...}} instead of a chunk: its status and message.
  std::optional<absl::Status> error;
};

// Fails on data that is neither JSON of a chunk or an error nor "[DONE]".
absl::StatusOr<CompletionChunk> ParseCompletionChunk(absl::string_view data);

// Builds the record of one streamed completion from its events. TTFT is the
// first chunk with text; a chunk counts one token, or its growth of
// usage.completion_tokens when the server reports usage in every chunk;
// the last chunk's usage then sets the output count (TokenTimeline::
// SetTotal) and the prompt's.
class CompletionRecorder {
 public:
  explicit CompletionRecorder(Clock::time_point start) : timeline_(start) {}

  // One event's data, arrived at `at`.
  void OnEvent(absl::string_view data, Clock::time_point at);
  // [DONE] or an error event came: nothing after it counts.
  bool ended() const { return ended_; }
  // The request failed outside the stream (HTTP status, connection,
  // deadline); the first failure wins.
  void Fail(absl::Status status);

  // Fills `record` (everything but index and start_s); `end` is when the
  // response ended. A stream that ends without [DONE], a finish reason or
  // a failure counts as UNAVAILABLE: the server went away mid-stream.
  void Finish(Clock::time_point end, Clock::time_point start,
              RequestRecord& record);

 private:
  TokenTimeline timeline_;
  absl::Status status_;
  bool ended_ = false, said_done_ = false;
  std::string finish_reason_;
  std::optional<CompletionUsage> usage_;
  int last_completion_tokens_ = 0;
};

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_OPENAI_STREAM_H_
