// Reaching a gRPC server before a run: channels (one TCP connection each),
// its model, and what a prompt costs in its tokenizer.
#ifndef HYDRA_BENCH_LOADGEN_CONNECTION_H_
#define HYDRA_BENCH_LOADGEN_CONNECTION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "hydra/v1/inference.grpc.pb.h"

namespace hydra::loadgen {

struct ConnectOptions {
  std::string target;
  int connections = 1;
  absl::Duration timeout = absl::Seconds(30);  // connect and model load
  std::string api_key;
};

// `connections` stubs, each on its own TCP connection; fails with a message
// naming the target when it cannot be reached within the timeout.
absl::StatusOr<std::vector<std::unique_ptr<v1::Inference::Stub>>> Connect(
    const ConnectOptions& options);

// GetModelInfo, retried while the server answers UNAVAILABLE (it listens
// before its model is loaded) until the timeout.
absl::StatusOr<v1::ModelInfo> WaitForModel(v1::Inference::Stub& stub,
                                           const ConnectOptions& options);

// Tokens the server counts for `text` as a prompt.
absl::StatusOr<int> CountPromptTokens(v1::Inference::Stub& stub,
                                      const std::string& text,
                                      const ConnectOptions& options);

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_CONNECTION_H_
