// The API key check of a gRPC call, for every hydra service that asks for
// one (health does not): "authorization: Bearer <key>" in its metadata.
#ifndef HYDRA_SERVER_GRPC_CALL_AUTH_H_
#define HYDRA_SERVER_GRPC_CALL_AUTH_H_

#include <string_view>

#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"
#include "server/api_key.h"

namespace hydra::server::grpc {

// OK when `key` is empty or the call carries it; else UNAUTHENTICATED.
inline ::grpc::Status CheckApiKey(const ::grpc::CallbackServerContext& context,
                                  std::string_view key) {
  if (key.empty()) return ::grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  if (it != metadata.end() &&
      AuthorizationMatches(
          std::string_view(it->second.data(), it->second.size()), key)) {
    return ::grpc::Status::OK;
  }
  return ::grpc::Status(
      ::grpc::StatusCode::UNAUTHENTICATED,
      "missing or wrong API key: send 'authorization: Bearer <key>'");
}

}  // namespace hydra::server::grpc

#endif  // HYDRA_SERVER_GRPC_CALL_AUTH_H_
