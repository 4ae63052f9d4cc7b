// An OpenAI-compatible server over HTTP/1.1 (hydra serve --http_port, or
// any other): streamed POST /v1/completions for the runs, GET /health and
// /v1/models to wait for the model, and usage.prompt_tokens of a one-token
// completion to count a prompt's tokens. Streams run asynchronously on a
// few threads, one keep-alive connection per stream in flight.
#ifndef HYDRA_BENCH_LOADGEN_OPENAI_BACKEND_H_
#define HYDRA_BENCH_LOADGEN_OPENAI_BACKEND_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/loadgen/backend.h"
#include "bench/loadgen/http_client.h"

namespace hydra::loadgen {

struct OpenAiOptions {
  std::string target;   // HOST:PORT
  std::string api_key;  // sent as "Authorization: Bearer <key>"
  std::string model;    // "model" of every request; empty: /v1/models' first
  absl::Duration timeout = absl::Seconds(30);  // connect and model load
  int threads = 2;  // Asio threads the streams run on
};

class OpenAiBackend final : public Backend {
 public:
  // Fails on a malformed target; reaches nothing yet.
  static absl::StatusOr<std::unique_ptr<OpenAiBackend>> Create(
      OpenAiOptions options);
  // Starts the threads; Create checks the options first.
  OpenAiBackend(OpenAiOptions options, HttpTarget address);
  ~OpenAiBackend() override;

  // GET /health until it stops answering 503 (or refusing connections),
  // then GET /v1/models for the model's id and max_model_len.
  absl::StatusOr<ServerModel> WaitForModel() override;
  absl::StatusOr<int> CountPromptTokens(const std::string& text) override;
  void StartStream(const StreamRequest& request, Clock::time_point run_start,
                   int64_t index, StreamDone done) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_OPENAI_BACKEND_H_
