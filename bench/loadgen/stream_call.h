// One GenerateStream call, timed on arrival of each message. Calls run on
// gRPC's callback threads, so thousands can be in flight without a thread
// each; a call owns itself from Start until gRPC reports it done.
#ifndef HYDRA_BENCH_LOADGEN_STREAM_CALL_H_
#define HYDRA_BENCH_LOADGEN_STREAM_CALL_H_

#include <chrono>
#include <functional>
#include <memory>

#include "bench/loadgen/request_record.h"
#include "bench/loadgen/token_timeline.h"
#include "grpcpp/grpcpp.h"
#include "hydra/v1/inference.grpc.pb.h"

namespace hydra::loadgen {

using Clock = std::chrono::steady_clock;

class StreamCall final
    : public grpc::ClientReadReactor<v1::GenerateStreamResponse> {
 public:
  using DoneCallback = std::function<void(RequestRecord)>;

  // Sends `request` now; `done` gets the record from a gRPC thread when the
  // call ends, whatever its status.
  static void Start(v1::Inference::Stub& stub,
                    const v1::GenerateRequest& request,
                    std::chrono::milliseconds timeout,
                    const std::string& api_key, Clock::time_point run_start,
                    int64_t index, DoneCallback done);

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  StreamCall(v1::GenerateRequest request, int64_t index, DoneCallback done)
      : request_(std::move(request)), done_(std::move(done)) {
    record_.index = index;
  }

  std::unique_ptr<StreamCall> self_;  // released in OnDone
  grpc::ClientContext context_;
  v1::GenerateRequest request_;
  v1::GenerateStreamResponse message_;
  DoneCallback done_;
  RequestRecord record_;
  Clock::time_point start_;
  TokenTimeline timeline_{Clock::time_point()};
};

}  // namespace hydra::loadgen

#endif  // HYDRA_BENCH_LOADGEN_STREAM_CALL_H_
