#include "bench/loadgen/grpc_backend.h"

#include <utility>

#include "bench/loadgen/stream_call.h"

namespace hydra::loadgen {

absl::StatusOr<ServerModel> GrpcBackend::WaitForModel() {
  if (stubs_.empty()) {
    absl::StatusOr<std::vector<std::unique_ptr<v1::Inference::Stub>>> stubs =
        Connect(options_);
    if (!stubs.ok()) return stubs.status();
    stubs_ = *std::move(stubs);
  }
  absl::StatusOr<v1::ModelInfo> info =
      loadgen::WaitForModel(*stubs_.front(), options_);
  if (!info.ok()) return info.status();
  return ServerModel{info->model_name(), info->architecture(),
                     info->max_context(), info->tensor_parallel_size(),
                     info->kv_capacity_tokens()};
}

absl::StatusOr<int> GrpcBackend::CountPromptTokens(const std::string& text) {
  if (stubs_.empty()) {
    return absl::FailedPreconditionError("WaitForModel first: not connected");
  }
  return loadgen::CountPromptTokens(*stubs_.front(), text, options_);
}

void GrpcBackend::StartStream(const StreamRequest& request,
                              Clock::time_point run_start, int64_t index,
                              StreamDone done) {
  v1::GenerateRequest r;
  r.set_prompt(request.prompt);
  r.mutable_sampling()->set_temperature(request.temperature);
  r.mutable_stopping()->set_max_tokens(request.max_tokens);
  r.mutable_stopping()->set_ignore_eos(request.ignore_eos);
  v1::Inference::Stub& stub = *stubs_[next_stub_++ % stubs_.size()];
  StreamCall::Start(stub, r, request.timeout, options_.api_key, run_start,
                    index, std::move(done));
}

}  // namespace hydra::loadgen
