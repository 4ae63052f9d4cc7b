#include "bench/loadgen/connection.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"

namespace hydra::loadgen {
namespace {

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  return absl::Status(
      static_cast<absl::StatusCode>(s.error_code()),
      absl::StrCat(what, " failed: ",
                   absl::StatusCodeToString(
                       static_cast<absl::StatusCode>(s.error_code())),
                   ": ", s.error_message()));
}

void PrepareContext(grpc::ClientContext& context, const ConnectOptions& options,
                    absl::Duration timeout) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  if (!options.api_key.empty()) {
    context.AddMetadata("authorization", "Bearer " + options.api_key);
  }
}

}  // namespace

absl::StatusOr<std::vector<std::unique_ptr<v1::Inference::Stub>>> Connect(
    const ConnectOptions& options) {
  if (options.connections < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--connections must be >= 1 (got ", options.connections, ")"));
  }
  std::vector<std::unique_ptr<v1::Inference::Stub>> stubs;
  const absl::Time deadline = absl::Now() + options.timeout;
  for (int i = 0; i < options.connections; ++i) {
    // A local subchannel pool per channel gives each its own TCP
    // connection; gRPC would otherwise share one among identical channels.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(64 << 20);
    auto channel = grpc::CreateCustomChannel(
        options.target, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(absl::ToChronoTime(deadline))) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to ", options.target, " within ",
                       absl::FormatDuration(options.timeout),
                       " (is a hydra server listening there? see --target)"));
    }
    stubs.push_back(v1::Inference::NewStub(channel));
  }
  return stubs;
}

absl::StatusOr<v1::ModelInfo> WaitForModel(v1::Inference::Stub& stub,
                                           const ConnectOptions& options) {
  const absl::Time deadline = absl::Now() + options.timeout;
  while (true) {
    grpc::ClientContext context;
    PrepareContext(context, options, absl::Seconds(10));
    v1::ModelInfo info;
    const grpc::Status s =
        stub.GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
    if (s.ok()) return info;
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE ||
        absl::Now() > deadline) {
      return FromGrpc(s, absl::StrCat("GetModelInfo on ", options.target));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

absl::StatusOr<int> CountPromptTokens(v1::Inference::Stub& stub,
                                      const std::string& text,
                                      const ConnectOptions& options) {
  grpc::ClientContext context;
  PrepareContext(context, options, absl::Seconds(10));
  v1::TokenizeRequest request;
  request.set_text(text);
  v1::TokenizeResponse response;
  const grpc::Status s = stub.Tokenize(&context, request, &response);
  if (!s.ok()) return FromGrpc(s, "Tokenize");
  return response.token_ids_size();
}

}  // namespace hydra::loadgen
