// hydra's own API: GenerateStream over gRPC, calls spread round robin over
// --connections channels (one TCP connection each, many calls on each).
#ifndef HYDRA_BENCH_LOADGEN_GRPC_BACKEND_H_
#define HYDRA_BENCH_LOADGEN_GRPC_BACKEND_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "bench/loadgen/backend.h"
#include "bench/loadgen/connection.h"
#include "hydra/v1/inference.grpc.pb.h"

namespace hydra::loadgen {

class GrpcBackend final : public Backend {
 public:
  explicit GrpcBackend(ConnectOptions options) : options_(std::move(options)) {}

  // Connects (failing with a message naming the target when it cannot
  // within the timeout), then waits for GetModelInfo.
  absl::StatusOr<ServerModel> WaitForModel() override;
  absl::StatusOr<int> CountPromptTokens(const std::string& text) override;
  void StartStream(const StreamRequest& request, Clock::time_point run_start,
                   int64_t index, StreamDone done) override;

 private:
  ConnectOptions options_;
  std::vector<std::unique_ptr<v1::Inference::Stub>> stubs_;
  std::atomic<uint64_t> next_stub_{0};
};

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_GRPC_BACKEND_H_
