#include "bench/loadgen/stream_call.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"

namespace hydra::loadgen {
namespace {

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// "length" for FINISH_REASON_LENGTH: the proto's own names, as the server's
// metrics spell them.
std::string FinishReasonName(v1::FinishReason reason) {
  return absl::AsciiStrToLower(
      absl::StripPrefix(v1::FinishReason_Name(reason), "FINISH_REASON_"));
}

}  // namespace

void StreamCall::Start(v1::Inference::Stub& stub,
                       const v1::GenerateRequest& request,
                       std::chrono::milliseconds timeout,
                       const std::string& api_key, Clock::time_point run_start,
                       int64_t index, DoneCallback done) {
  std::unique_ptr<StreamCall> call(
      new StreamCall(request, index, std::move(done)));
  StreamCall* raw = call.get();
  raw->self_ = std::move(call);
  raw->context_.set_deadline(std::chrono::system_clock::now() + timeout);
  if (!api_key.empty()) {
    raw->context_.AddMetadata("authorization", "Bearer " + api_key);
  }
  stub.async()->GenerateStream(&raw->context_, &raw->request_, raw);
  raw->StartRead(&raw->message_);
  raw->start_ = Clock::now();
  raw->timeline_ = TokenTimeline(raw->start_);
  raw->record_.start_s = Ms(raw->start_ - run_start) / 1e3;
  raw->StartCall();
}

void StreamCall::OnReadDone(bool ok) {
  if (!ok) return;  // the stream ended; OnDone follows
  const Clock::time_point now = Clock::now();
  if (message_.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
    record_.finish_reason = FinishReasonName(message_.finish_reason());
    record_.input_tokens = message_.usage().prompt_tokens();
    record_.cached_input_tokens = message_.usage().cached_prompt_tokens();
  }
  timeline_.Add(now, message_.token_ids_size());
  StartRead(&message_);
}

void StreamCall::OnDone(const grpc::Status& status) {
  std::unique_ptr<StreamCall> self = std::move(self_);
  record_.e2e_ms = Ms(Clock::now() - start_);
  timeline_.Fill(record_);
  record_.code = static_cast<absl::StatusCode>(status.error_code());
  if (!status.ok()) {
    record_.error = status.error_message();
    record_.finish_reason.clear();
  }
  done_(std::move(record_));
}

}  // namespace hydra::loadgen
