// hydra client: streams a completion from a running server to the terminal.
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "grpcpp/grpcpp.h"
#include "hydra/v1/inference.grpc.pb.h"

ABSL_DECLARE_FLAG(std::string, prompt);
ABSL_DECLARE_FLAG(int, max_tokens);
ABSL_DECLARE_FLAG(float, temperature);
ABSL_DECLARE_FLAG(int, top_k);
ABSL_DECLARE_FLAG(float, top_p);
ABSL_DECLARE_FLAG(int64_t, seed);
ABSL_DECLARE_FLAG(std::string, api_key);
ABSL_FLAG(std::string, target, "localhost:50051",
          "Server address for `hydra client`");
ABSL_FLAG(double, timeout_seconds, 60, "Deadline of the call");

namespace hydra::cli {

absl::Status RunClient() {
  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_target),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::Inference::NewStub(channel);
  v1::GenerateRequest request;
  request.set_prompt(absl::GetFlag(FLAGS_prompt));
  request.mutable_sampling()->set_temperature(absl::GetFlag(FLAGS_temperature));
  request.mutable_sampling()->set_top_k(absl::GetFlag(FLAGS_top_k));
  request.mutable_sampling()->set_top_p(absl::GetFlag(FLAGS_top_p));
  if (absl::GetFlag(FLAGS_seed) >= 0)
    request.mutable_sampling()->set_seed(absl::GetFlag(FLAGS_seed));
  request.mutable_stopping()->set_max_tokens(absl::GetFlag(FLAGS_max_tokens));

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(
                           absl::GetFlag(FLAGS_timeout_seconds) * 1000)));
  if (!absl::GetFlag(FLAGS_api_key).empty()) {
    context.AddMetadata("authorization",
                        "Bearer " + absl::GetFlag(FLAGS_api_key));
  }
  auto reader = stub->GenerateStream(&context, request);
  std::printf("%s", request.prompt().c_str());
  v1::GenerateStreamResponse message;
  v1::Usage usage;
  v1::FinishReason reason = v1::FINISH_REASON_UNSPECIFIED;
  while (reader->Read(&message)) {
    std::printf("%s", message.text().c_str());
    std::fflush(stdout);
    if (message.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      reason = message.finish_reason();
      usage = message.usage();
    }
  }
  std::printf("\n");
  const grpc::Status status = reader->Finish();
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  std::fprintf(stderr,
               "finish reason: %s, prompt tokens: %d, completion tokens: %d, "
               "cached: %d\n",
               v1::FinishReason_Name(reason).c_str(), usage.prompt_tokens(),
               usage.completion_tokens(), usage.cached_prompt_tokens());
  return absl::OkStatus();
}

}  // namespace hydra::cli
