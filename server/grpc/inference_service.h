// hydra.v1.Inference on gRPC's callback API: no thread per request. Each
// call becomes an engine request whose outputs the engine thread hands to
// the call's reactor, which writes them as the client reads.
#ifndef HYDRA_SERVER_GRPC_INFERENCE_SERVICE_H_
#define HYDRA_SERVER_GRPC_INFERENCE_SERVICE_H_

#include <atomic>
#include <functional>
#include <string>

#include "engine/engine.h"
#include "hydra/v1/inference.grpc.pb.h"

namespace hydra::server::grpc {

struct ServiceOptions {
  std::string model_name;
  int tensor_parallel_size = 1;
  std::string api_key;  // empty: no authentication
};

// Sees every engine output (for metrics); called on the engine thread.
// `previous` is the time of the request's previous tokens (InfinitePast()
// for the first).
using OutputObserver =
    std::function<void(const engine::EngineOutput& out, absl::Time previous)>;

class InferenceService final : public v1::Inference::CallbackService {
 public:
  InferenceService(ServiceOptions options, OutputObserver observer);

  // Until an engine is attached (the model is loading) and after draining
  // starts, calls are refused with UNAVAILABLE.
  void AttachEngine(engine::Engine* engine) { engine_.store(engine); }
  void StartDraining() { draining_.store(true); }

  ::grpc::ServerUnaryReactor* Generate(::grpc::CallbackServerContext* context,
                                       const v1::GenerateRequest* request,
                                       v1::GenerateResponse* response) override;
  ::grpc::ServerWriteReactor<v1::GenerateStreamResponse>* GenerateStream(
      ::grpc::CallbackServerContext* context,
      const v1::GenerateRequest* request) override;
  ::grpc::ServerUnaryReactor* Tokenize(::grpc::CallbackServerContext* context,
                                       const v1::TokenizeRequest* request,
                                       v1::TokenizeResponse* response) override;
  ::grpc::ServerUnaryReactor* GetModelInfo(
      ::grpc::CallbackServerContext* context,
      const v1::GetModelInfoRequest* request, v1::ModelInfo* response) override;

 private:
  // The engine to serve a call with, or the status to refuse it with.
  ::grpc::Status Admit(::grpc::CallbackServerContext* context,
                       engine::Engine** engine) const;

  ServiceOptions options_;
  OutputObserver observer_;
  std::atomic<engine::Engine*> engine_{nullptr};
  std::atomic<bool> draining_{false};
};

}  // namespace hydra::server::grpc

#endif  // HYDRA_SERVER_GRPC_INFERENCE_SERVICE_H_
