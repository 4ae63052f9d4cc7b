// hydra.v1.GenerateRequest from untrusted bytes, as the gRPC service gets
// it: parsed, turned into RequestFields (server/grpc/request_fields) and
// checked by ValidateRequest against a small model; what passes must be
// safe for the engine to run (request_checks.h).
#include <cstddef>
#include <cstdint>

#include "hydra/v1/inference.pb.h"
#include "server/grpc/request_fields.h"
#include "server/request_validation.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/request_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hydra;
  const fuzz::SmallModel& model = fuzz::LoadSmallModel();
  v1::GenerateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  const server::RequestFields fields = server::grpc::ToRequestFields(request);
  fuzz::CheckValidated(
      server::ValidateRequest(fields, server::kGrpcFieldNames, model.config,
                              *model.tokenizer, model.max_model_len),
      model);
  return 0;
}
