// gRPC server reflection (grpc.reflection.v1alpha, what grpcurl and the
// Python client use), hydra's own rather than gRPC's plugin so that it can
// ask for the API key: with --api_key set, reflection needs it like every
// hydra.v1 call (health alone stays open, for probes). Descriptors come from
// the generated pool of the linked protos.
#ifndef HYDRA_SERVER_GRPC_REFLECTION_SERVICE_H_
#define HYDRA_SERVER_GRPC_REFLECTION_SERVICE_H_

#include <string>
#include <vector>

#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace hydra::server::grpc {

namespace reflection = ::grpc::reflection::v1alpha;

class ReflectionService final
    : public reflection::ServerReflection::CallbackService {
 public:
  // `services`: the full names list_services answers with. `api_key`: empty
  // for none.
  ReflectionService(std::vector<std::string> services, std::string api_key);

  ::grpc::ServerBidiReactor<reflection::ServerReflectionRequest,
                            reflection::ServerReflectionResponse>*
  ServerReflectionInfo(::grpc::CallbackServerContext* context) override;

  // The answer to one request (exposed for tests).
  reflection::ServerReflectionResponse Answer(
      const reflection::ServerReflectionRequest& request) const;

 private:
  const std::vector<std::string> services_;
  const std::string api_key_;
};

}  // namespace hydra::server::grpc

#endif  // HYDRA_SERVER_GRPC_REFLECTION_SERVICE_H_
