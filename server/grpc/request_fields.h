// hydra.v1.GenerateRequest → the front-end-neutral fields that
// server/request_validation.h checks.
#ifndef HYDRA_SERVER_GRPC_REQUEST_FIELDS_H_
#define HYDRA_SERVER_GRPC_REQUEST_FIELDS_H_

#include "hydra/v1/inference.pb.h"
#include "server/request_validation.h"

namespace hydra::server::grpc {

RequestFields ToRequestFields(const v1::GenerateRequest& request);

}  // namespace hydra::server::grpc

#endif  // HYDRA_SERVER_GRPC_REQUEST_FIELDS_H_
