// hydra.v1.Inference on gRPC's callback API: no thread per request. Each
// call becomes an engine request whose outputs the engine thread hands to
// the call's reactor, which writes them as the client reads. Requests arrive
// as raw bytes and are parsed here (wire.h), so a malformed one is refused
// with INVALID_ARGUMENT and a message.
#ifndef HYDRA_SERVER_GRPC_INFERENCE_SERVICE_H_
#define HYDRA_SERVER_GRPC_INFERENCE_SERVICE_H_

#include <atomic>
#include <string>

#include "engine/engine.h"
#include "grpcpp/support/byte_buffer.h"
#include "hydra/v1/inference.grpc.pb.h"
#include "server/observers.h"

namespace hydra::server::grpc {

struct ServiceOptions {
  std::string model_name;
  int tensor_parallel_size = 1;
  std::string api_key;  // empty: no authentication
  OutputObserver on_output;
  RejectionObserver on_rejected;
};

// Every method takes and gives raw bytes; the messages are those of
// proto/hydra/v1/inference.proto.
using RawInferenceService = v1::Inference::WithRawCallbackMethod_Generate<
    v1::Inference::WithRawCallbackMethod_GenerateStream<
        v1::Inference::WithRawCallbackMethod_Tokenize<
            v1::Inference::WithRawCallbackMethod_GetModelInfo<
                v1::Inference::WithRawCallbackMethod_WarmPrefix<
                    v1::Inference::Service>>>>>;

class InferenceService final : public RawInferenceService {
 public:
  explicit InferenceService(ServiceOptions options);

  // Until an engine is attached (the model is loading) and after draining
  // starts, calls are refused with UNAVAILABLE.
  void AttachEngine(engine::Engine* engine) { engine_.store(engine); }
  void StartDraining() { draining_.store(true); }

  ::grpc::ServerUnaryReactor* Generate(::grpc::CallbackServerContext* context,
                                       const ::grpc::ByteBuffer* request,
                                       ::grpc::ByteBuffer* response) override;
  ::grpc::ServerWriteReactor<::grpc::ByteBuffer>* GenerateStream(
      ::grpc::CallbackServerContext* context,
      const ::grpc::ByteBuffer* request) override;
  ::grpc::ServerUnaryReactor* Tokenize(::grpc::CallbackServerContext* context,
                                       const ::grpc::ByteBuffer* request,
                                       ::grpc::ByteBuffer* response) override;
  ::grpc::ServerUnaryReactor* GetModelInfo(
      ::grpc::CallbackServerContext* context, const ::grpc::ByteBuffer* request,
      ::grpc::ByteBuffer* response) override;
  ::grpc::ServerUnaryReactor* WarmPrefix(::grpc::CallbackServerContext* context,
                                         const ::grpc::ByteBuffer* request,
                                         ::grpc::ByteBuffer* response) override;

 private:
  // The engine to serve a call with, or the status to refuse it with.
  ::grpc::Status Admit(::grpc::CallbackServerContext* context,
                       engine::Engine** engine) const;
  // Admits the call and parses its request into `message`.
  ::grpc::Status Accept(::grpc::CallbackServerContext* context,
                        const ::grpc::ByteBuffer& bytes,
                        google::protobuf::Message* message,
                        engine::Engine** engine) const;
  // Reports a refusal to on_rejected and returns it.
  ::grpc::Status Reject(::grpc::Status status) const;

  ServiceOptions options_;
  std::atomic<engine::Engine*> engine_{nullptr};
  std::atomic<bool> draining_{false};
};

}  // namespace hydra::server::grpc

#endif  // HYDRA_SERVER_GRPC_INFERENCE_SERVICE_H_
